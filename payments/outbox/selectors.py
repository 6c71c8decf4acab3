import json
from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from payments.outbox.models import Event
from tenants.models import Tenant


def retention() -> timedelta:
    return timedelta(days=settings.PAYDESK_WEBHOOKS_EVENT_RETENTION_DAYS)


def event_list(*, tenant: Tenant, types: list[str]) -> QuerySet[Event]:
    """The tenant's events of `types` from the retention period, newest first."""
    return Event.objects.filter(tenant=tenant, type__in=types, created_at__gte=timezone.now() - retention())


def event_data(event: Event) -> dict:
    return json.loads(event.payload)["data"]
