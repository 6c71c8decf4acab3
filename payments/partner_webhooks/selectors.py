from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from payments.partner_webhooks.models import WebhookDelivery, WebhookEndpoint
from tenants.models import Tenant


def endpoint_list(*, tenant: Tenant) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(tenant=tenant).select_related("tenant")


def endpoint_get(*, tenant: Tenant, uuid) -> WebhookEndpoint:
    """The tenant's endpoint, or 404: another tenant's does not exist for it."""
    return get_object_or_404(endpoint_list(tenant=tenant), uuid=uuid)


def delivery_list(*, tenant: Tenant, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(tenant=tenant, endpoint=endpoint).select_related("event", "endpoint")


def delivery_get(*, tenant: Tenant, endpoint: WebhookEndpoint, uuid) -> WebhookDelivery:
    return get_object_or_404(delivery_list(tenant=tenant, endpoint=endpoint), uuid=uuid)
