"""Helpers to set up endpoints and deliver at a chosen time (the receiver is in tests/peers.py)."""

from datetime import datetime

from payments.partner_webhooks import delivery
from payments.partner_webhooks.models import WebhookEndpoint
from payments.partner_webhooks.services import webhook_endpoint_create
from tenants.services import Actor
from tests.peers import HANG, Receiver  # noqa: F401 - re-exported for the tests


def endpoint_for(tenant, url: str, **kwargs) -> tuple[WebhookEndpoint, str]:
    return webhook_endpoint_create(tenant=tenant, url=url, actor=Actor.system("test"), **kwargs)


def pump(*, now: datetime | None = None) -> int:
    """Fan out every recorded event and send what is due at `now`, as the tasks would."""
    sent = 0
    while delivery.events_dispatch().events:
        pass
    for _tenant_id, endpoint_id in delivery.endpoints_due(now=now):
        sent += delivery.endpoint_send_due(endpoint_id=endpoint_id, now=now).sent
    return sent
