"""The partner webhooks admin: scoped to the user's tenants, the secret shown once,
"send test", "rotate secret" and "retry" through the services."""

import pytest
from django.contrib.messages import get_messages
from django.db import transaction
from django.urls import reverse

from payments.outbox.services import NewEvent, events_record
from payments.partner_webhooks.models import WebhookDelivery, WebhookEndpoint
from tenants.models import AuditEvent, Role
from tests.factories import MembershipFactory, UserFactory
from tests.partner_webhooks.conftest import endpoint_for, pump

pytestmark = pytest.mark.django_db


def url(model: str, name: str, *args) -> str:
    return reverse(f"admin:partner_webhooks_{model}_{name}", args=args)


def member(tenant, role: str):
    user = UserFactory()
    MembershipFactory(user=user, tenant=tenant, role=role)
    return user


def action(name: str, *pks) -> dict:
    return {"action": name, "_selected_action": [str(pk) for pk in pks], "index": "0"}


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_an_owner_adds_an_endpoint_and_sees_its_secret_once(client, world, receiver):
    client.force_login(world.acme.owner)
    response = client.post(
        url("webhookendpoint", "add"),
        {"tenant": world.acme.tenant.pk, "url": receiver.url, "description": "CRM", "enabled": "on"},
        follow=True,
    )
    endpoint = WebhookEndpoint.objects.get()
    (shown,) = [m for m in messages_of(response) if "whsec_" in m]
    secret = shown.split("secret is ")[1].split(" ")[0]
    assert secret.startswith("whsec_") and secret.endswith(endpoint.secret_last4)
    page = client.get(url("webhookendpoint", "change", endpoint.pk)).content.decode()
    assert secret not in page and f"…{endpoint.secret_last4}" in page


def test_a_private_url_is_refused_on_the_form(client, world, settings):
    settings.PAYDESK_WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    client.force_login(world.acme.owner)
    response = client.post(
        url("webhookendpoint", "add"), {"tenant": world.acme.tenant.pk, "url": "http://10.0.0.5/hook", "enabled": "on"}
    )
    assert response.status_code == 200 and "private address" in str(response.context["adminform"].form.errors)
    assert not WebhookEndpoint.objects.exists()


def test_another_tenants_endpoints_and_deliveries_do_not_exist_for_a_member(client, world, receiver):
    theirs, _ = endpoint_for(world.globex.tenant, receiver.url)
    with transaction.atomic():
        events_record([NewEvent(tenant_id=world.globex.tenant.pk, type="pay_session.updated", data={})])
    pump()
    delivery = WebhookDelivery.objects.get()
    client.force_login(world.acme.owner)
    assert client.get(url("webhookendpoint", "change", theirs.pk)).status_code == 404
    assert client.get(url("webhookdelivery", "change", delivery.pk)).status_code == 404
    assert str(theirs.url) not in client.get(url("webhookendpoint", "changelist")).content.decode()
    listed = client.get(url("webhookdelivery", "changelist")).content.decode()
    assert "pay_session.updated" not in listed and theirs.url not in listed
    # Actions on their rows, smuggled into a post, do nothing.
    client.post(url("webhookendpoint", "changelist"), action("rotate_secret", theirs.pk))
    client.post(url("webhookdelivery", "changelist"), action("retry", delivery.pk))
    assert not AuditEvent.objects.filter(action__in=["webhook_endpoint.secret_rotated", "webhook_delivery.retried"])


def test_a_viewer_sees_but_cannot_change_send_or_retry(client, world, receiver):
    endpoint, _ = endpoint_for(world.acme.tenant, receiver.url)
    client.force_login(member(world.acme.tenant, Role.VIEWER))
    assert client.get(url("webhookendpoint", "change", endpoint.pk)).status_code == 200
    assert client.get(url("webhookendpoint", "add")).status_code == 403
    listed = client.get(url("webhookendpoint", "changelist"))
    assert "send_test" not in listed.content.decode()
    assert "retry" not in client.get(url("webhookdelivery", "changelist")).content.decode()


def test_send_test_and_retry_from_the_admin(client, world, receiver, django_capture_on_commit_callbacks):
    endpoint, secret = endpoint_for(world.acme.tenant, receiver.url)
    client.force_login(world.acme.owner)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url("webhookendpoint", "changelist"), action("send_test", endpoint.pk))
    (ping,) = receiver.verify_all(secret)
    assert ping["type"] == "ping"

    delivery = WebhookDelivery.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("webhookdelivery", "changelist"), action("retry", delivery.pk), follow=True)
    assert "1 delivery queued again." in messages_of(response)
    assert len(receiver.received) == 2 and len({r.headers["webhook-id"] for r in receiver.received}) == 1


def test_rotating_from_the_admin_shows_the_new_secret(client, world, receiver):
    endpoint, old = endpoint_for(world.acme.tenant, receiver.url)
    client.force_login(world.acme.owner)
    response = client.post(url("webhookendpoint", "changelist"), action("rotate_secret", endpoint.pk), follow=True)
    (shown,) = [m for m in messages_of(response) if "whsec_" in m]
    endpoint.refresh_from_db()
    assert old not in shown and endpoint.secret_last4 in shown and endpoint.previous_secret_expires_at
