"""The webhook endpoints and events API: secrets shown once, scopes, another tenant's
objects answer 404, the delivery log, retry and test."""

import base64
import uuid
from datetime import timedelta

import pytest
import yaml
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook

from payments.outbox.models import Event
from payments.outbox.services import NewEvent, events_record
from payments.partner_webhooks.models import WebhookDelivery, WebhookEndpoint
from tenants.models import Scope
from tenants.services import Actor, api_key_create
from tests.partner_webhooks.conftest import endpoint_for, pump

pytestmark = pytest.mark.django_db
BASE = "/api/v1/webhook-endpoints/"


@pytest.fixture
def acme(world, api_for):
    return api_for(world.acme.raw_key)


def key_with(api_for, tenant, *scopes):
    _, raw = api_key_create(tenant=tenant, name="limited", scopes=list(scopes), actor=Actor.system("test"))
    return api_for(raw)


def test_creating_an_endpoint_shows_its_secret_once(acme, receiver):
    response = acme.post(BASE, {"url": receiver.url, "description": "CRM"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    secret = body["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert body["event_types"] == [] and body["enabled"] is True and body["secret_last4"] == secret[-4:]

    shown = acme.get(f"{BASE}{body['id']}/").json()
    listed = acme.get(BASE).json()["results"]
    assert "secret" not in shown and secret not in str(shown) and secret not in str(listed)
    with connection.cursor() as cursor:  # encrypted at rest
        cursor.execute("SELECT secret_ciphertext FROM partner_webhooks_webhookendpoint")
        (stored,) = cursor.fetchone()
    assert secret not in stored and secret.removeprefix("whsec_") not in stored


def test_an_endpoint_is_changed_and_deleted(acme, receiver):
    endpoint_id = acme.post(BASE, {"url": receiver.url}, format="json").json()["id"]
    changed = acme.patch(
        f"{BASE}{endpoint_id}/", {"event_types": ["pay_session.succeeded"], "enabled": False}, format="json"
    )
    assert changed.status_code == 200
    assert changed.json()["event_types"] == ["pay_session.succeeded"] and changed.json()["enabled"] is False
    assert acme.put(f"{BASE}{endpoint_id}/", {"url": receiver.url}, format="json").status_code == 405
    assert acme.delete(f"{BASE}{endpoint_id}/").status_code == 204
    assert not WebhookEndpoint.objects.exists()


def test_an_unknown_event_type_is_refused(acme, receiver):
    response = acme.post(BASE, {"url": receiver.url, "event_types": ["pay_session.paid"]}, format="json")
    assert response.status_code == 400 and "event_types" in response.json()["error"]["fields"]


def test_a_key_subscribes_only_to_events_it_may_read(world, api_for, receiver):
    webhooks_and_payments = key_with(
        api_for, world.acme.tenant, Scope.WEBHOOKS_WRITE, Scope.WEBHOOKS_READ, Scope.PAYMENTS_READ
    )
    ok = webhooks_and_payments.post(BASE, {"url": receiver.url, "event_types": ["pay_session.failed"]}, format="json")
    export = webhooks_and_payments.post(BASE, {"url": receiver.url, "event_types": ["export.ready"]}, format="json")
    everything = webhooks_and_payments.post(BASE, {"url": receiver.url}, format="json")
    assert ok.status_code == 201
    assert export.status_code == 400 and "reports:read" in export.json()["error"]["fields"]["event_types"][0]
    assert everything.status_code == 400
    assert "every read scope" in everything.json()["error"]["fields"]["event_types"][0]


def test_scopes_guard_reads_and_writes(world, api_for, receiver):
    endpoint, _ = endpoint_for(world.acme.tenant, receiver.url)
    reader = key_with(api_for, world.acme.tenant, Scope.WEBHOOKS_READ, Scope.PAYMENTS_READ)
    nobody = key_with(api_for, world.acme.tenant, Scope.PAYMENTS_READ)
    detail = f"{BASE}{endpoint.uuid}/"

    assert reader.get(BASE).status_code == 200 and reader.get(detail).status_code == 200
    assert reader.get(f"{detail}deliveries/").status_code == 200 and reader.get("/api/v1/events/").status_code == 200
    for method, path in [
        ("post", BASE),
        ("patch", detail),
        ("delete", detail),
        ("post", f"{detail}rotate-secret/"),
        ("post", f"{detail}test/"),
        ("post", f"{detail}deliveries/{uuid.uuid4()}/retry/"),
    ]:
        response = getattr(reader, method)(path, {"url": receiver.url}, format="json")
        assert response.status_code == 403 and response.json()["error"]["code"] == "missing_scope", (method, path)
    for path in (BASE, detail, f"{detail}deliveries/", "/api/v1/events/"):
        assert nobody.get(path).status_code == 403
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).exists()


def test_another_tenants_endpoint_delivery_and_event_answer_404(world, acme, receiver):
    theirs, _ = endpoint_for(world.globex.tenant, receiver.url)
    with transaction.atomic():
        (event,) = events_record([NewEvent(tenant_id=world.globex.tenant.pk, type="pay_session.updated", data={})])
    pump()
    their_delivery = WebhookDelivery.objects.get(endpoint=theirs)
    detail = f"{BASE}{theirs.uuid}/"
    for method, path in [
        ("get", detail),
        ("patch", detail),
        ("delete", detail),
        ("post", f"{detail}rotate-secret/"),
        ("post", f"{detail}test/"),
        ("get", f"{detail}deliveries/"),
        ("post", f"{detail}deliveries/{their_delivery.uuid}/retry/"),
        ("get", f"/api/v1/events/{event.public_id}/"),
    ]:
        response = getattr(acme, method)(path, {"enabled": False}, format="json")
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "not_found"
    assert acme.get(BASE).json()["results"] == [] and acme.get("/api/v1/events/").json()["results"] == []
    # Nor is a delivery of theirs reachable through an endpoint of ours.
    ours, _ = endpoint_for(world.acme.tenant, receiver.url)
    assert acme.post(f"{BASE}{ours.uuid}/deliveries/{their_delivery.uuid}/retry/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.enabled


def test_the_test_action_sends_a_signed_ping(acme, receiver, django_capture_on_commit_callbacks):
    created = acme.post(BASE, {"url": receiver.url}, format="json").json()
    with django_capture_on_commit_callbacks(execute=True):
        response = acme.post(f"{BASE}{created['id']}/test/")
    assert response.status_code == 202 and response.json()["event_type"] == "ping"
    (payload,) = receiver.verify_all(created["secret"])
    assert payload["type"] == "ping" and payload["data"]["endpoint"] == created["id"]
    log = acme.get(f"{BASE}{created['id']}/deliveries/").json()["results"]
    assert [(d["event_type"], d["status"], d["attempts"], d["last_status_code"]) for d in log] == [
        ("ping", "succeeded", 1, 200)
    ]


def test_the_delivery_log_and_a_retry(acme, world, receiver, django_capture_on_commit_callbacks):
    created = acme.post(BASE, {"url": receiver.url}, format="json").json()
    receiver.answer(*[500] * 30)
    with transaction.atomic():
        events_record([NewEvent(tenant_id=world.acme.tenant.pk, type="pay_session.updated", data={"n": 1})])
    pump()
    WebhookDelivery.objects.update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)  # retries ran out
    receiver.script.clear()
    (entry,) = acme.get(f"{BASE}{created['id']}/deliveries/?status=failed").json()["results"]
    assert (entry["status"], entry["attempts"], entry["last_status_code"]) == ("failed", 1, 500)
    assert entry["last_response_body"] == '{"ok":true}' and entry["event"].startswith("evt_")

    with django_capture_on_commit_callbacks(execute=True):
        retried = acme.post(f"{BASE}{created['id']}/deliveries/{entry['id']}/retry/")
    assert retried.status_code == 202
    assert [r.answered for r in receiver.received] == [500, 200]
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.SUCCEEDED
    pending = acme.post(f"{BASE}{created['id']}/deliveries/{entry['id']}/retry/")
    assert pending.status_code == 202  # a succeeded delivery may be sent again
    WebhookDelivery.objects.update(status=WebhookDelivery.Status.PENDING)
    again = acme.post(f"{BASE}{created['id']}/deliveries/{entry['id']}/retry/")
    assert again.status_code == 409 and again.json()["error"]["code"] == "delivery_pending"


def test_rotating_shows_the_new_secret_once(acme, receiver):
    created = acme.post(BASE, {"url": receiver.url}, format="json").json()
    rotated = acme.post(f"{BASE}{created['id']}/rotate-secret/").json()
    assert rotated["secret"] != created["secret"] and rotated["secret"].startswith("whsec_")
    assert rotated["previous_secret_expires_at"] is not None
    assert "secret" not in acme.get(f"{BASE}{created['id']}/").json()
    Webhook(rotated["secret"])  # a valid Standard Webhooks secret


def test_a_disabled_endpoint_refuses_a_test_until_enabled(acme, receiver):
    created = acme.post(BASE, {"url": receiver.url, "enabled": False}, format="json").json()
    refused = acme.post(f"{BASE}{created['id']}/test/")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "endpoint_disabled"


def test_events_list_the_last_30_days_of_what_the_key_may_read(world, api_for, acme):
    with transaction.atomic():
        old, paid, export = events_record(
            [
                NewEvent(tenant_id=world.acme.tenant.pk, type="pay_session.updated", data={"n": 0}),
                NewEvent(tenant_id=world.acme.tenant.pk, type="pay_session.succeeded", data={"n": 1}),
                NewEvent(tenant_id=world.acme.tenant.pk, type="export.ready", data={"n": 2}),
            ]
        )
    Event.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))

    listed = acme.get("/api/v1/events/").json()["results"]
    assert [(e["id"], e["type"], e["data"]) for e in listed] == [
        (export.public_id, "export.ready", {"n": 2}),
        (paid.public_id, "pay_session.succeeded", {"n": 1}),
    ]
    assert [e["type"] for e in acme.get("/api/v1/events/?type=export.ready").json()["results"]] == ["export.ready"]
    assert acme.get(f"/api/v1/events/{paid.public_id}/").json()["data"] == {"n": 1}
    payments_only = key_with(api_for, world.acme.tenant, Scope.WEBHOOKS_READ, Scope.PAYMENTS_READ)
    assert [e["type"] for e in payments_only.get("/api/v1/events/").json()["results"]] == ["pay_session.succeeded"]
    assert payments_only.get(f"/api/v1/events/{export.public_id}/").status_code == 404


def test_the_openapi_document_describes_the_webhook_routes(client):
    schema = yaml.safe_load(client.get("/api/schema/").content)
    for path in (
        "/api/v1/webhook-endpoints/",
        "/api/v1/webhook-endpoints/{id}/rotate-secret/",
        "/api/v1/webhook-endpoints/{id}/deliveries/{delivery_id}/retry/",
        "/api/v1/webhook-endpoints/{id}/test/",
        "/api/v1/events/",
    ):
        assert path in schema["paths"], path
