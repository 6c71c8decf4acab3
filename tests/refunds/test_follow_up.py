"""Refunds that do not end at once: Stripe's `pending` followed up by Celery until final,
a refund in doubt (Stripe did not answer) found or canceled by the follow-up, and Stripe's
webhooks (`refund.updated`, `charge.refunded`) moving a refund on. Pending refunds come
from recorded Stripe JSON (localstripe's refunds always succeed at once, docs/testing.md)."""

import json
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import responses
from django.utils import timezone

from payments.refunds import services, tasks
from payments.refunds.models import Refund
from payments.sessions.models import PaySession
from tenants.models import AuditEvent
from tests.reconciliation.conftest import FAKE_STRIPE, make_event, paid_session, post_event, reconcile
from tests.refunds.conftest import error, paid, refund_rows, refund_via_api, stripe_refunds

pytestmark = pytest.mark.django_db
PENDING = json.loads((Path(__file__).parent / "fixtures" / "refund_pending.json").read_text())


def due_now(refund: Refund) -> None:
    """Move the refund's next look at Stripe to now (instead of waiting for it)."""
    Refund.objects.filter(pk=refund.pk).update(next_check_at=timezone.now() - timedelta(seconds=1))


@pytest.fixture
def recorded_stripe(settings):
    """Stripe's refund endpoints over recorded JSON: POST answers `pending`; each GET of
    the refund answers the next state in `states`."""
    settings.STRIPE_API_BASE_URL = FAKE_STRIPE
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        stripe = {"states": [], "created": None, "gets": 0}

        def create(request):
            body_text = request.body.decode() if isinstance(request.body, bytes) else request.body
            form = dict(parse_qsl(body_text))
            body = PENDING | {
                "amount": int(form["amount"]),
                "metadata": {"paydesk_refund": form["metadata[paydesk_refund]"]},
            }
            stripe["created"] = body
            return 200, {"Request-Id": "req_rec"}, json.dumps(body)

        def retrieve(request):
            stripe["gets"] += 1
            status = stripe["states"].pop(0) if stripe["states"] else "pending"
            extra = {"failure_reason": "expired_or_canceled_card"} if status == "failed" else {}
            return 200, {"Request-Id": "req_rec"}, json.dumps(stripe["created"] | {"status": status} | extra)

        rsps.add_callback(responses.POST, f"{FAKE_STRIPE}/v1/refunds", callback=create)
        rsps.add_callback(responses.GET, f"{FAKE_STRIPE}/v1/refunds/{PENDING['id']}", callback=retrieve)
        yield stripe


@pytest.fixture
def pending_refund(world, acme_api, recorded_stripe):
    session = paid_session(world.acme.connectors["Stripe_Dev"], code=PENDING["payment_intent"], amount_minor=2000)
    response = refund_via_api(acme_api, session, amount="5.00")
    assert response.status_code == 201 and response.json()["status"] == "pending"
    return Refund.objects.get(uuid=response.json()["id"])


def test_a_pending_refund_is_followed_up_until_stripe_says_it_succeeded(pending_refund, recorded_stripe):
    assert pending_refund.next_check_at > timezone.now()  # first look in a minute
    assert tasks.follow_up_due_refunds() == 0 and recorded_stripe["gets"] == 0

    recorded_stripe["states"] = ["pending", "succeeded"]
    due_now(pending_refund)
    assert tasks.follow_up_due_refunds() == 1
    pending_refund.refresh_from_db()
    assert (pending_refund.status, pending_refund.checks) == ("pending", 1)
    assert pending_refund.next_check_at - timezone.now() > timedelta(seconds=100)  # backing off

    due_now(pending_refund)
    tasks.follow_up_due_refunds()
    pending_refund.refresh_from_db()

    assert pending_refund.status == "succeeded" and pending_refund.next_check_at is None
    assert recorded_stripe["gets"] == 2
    assert AuditEvent.objects.filter(action="refund.succeeded", actor="stripe").count() == 1
    assert tasks.follow_up_due_refunds() == 0


def test_a_pending_refund_that_fails_frees_its_amount(acme_api, pending_refund, recorded_stripe):
    session = pending_refund.session
    assert acme_api.get(f"/api/v1/pay-sessions/{session.uuid}/").json()["refundable_amount"] == "15.00"
    recorded_stripe["states"] = ["failed"]
    due_now(pending_refund)

    tasks.follow_up_due_refunds()

    pending_refund.refresh_from_db()
    assert (pending_refund.status, pending_refund.failure_reason) == ("failed", "expired_or_canceled_card")
    assert acme_api.get(f"/api/v1/pay-sessions/{session.uuid}/").json()["refundable_amount"] == "20.00"


def test_a_refund_in_doubt_that_stripe_never_got_is_canceled_after_the_wait(acme_api, dev, stripe_objects, settings):
    session, intent = paid(dev, stripe_objects, amount=2000)
    settings.STRIPE_API_BASE_URL = "http://127.0.0.1:9"
    assert refund_via_api(acme_api, session, key="lost", amount="5.00").status_code == 503
    [refund] = refund_rows(session)
    settings.STRIPE_API_BASE_URL = stripe_objects.url
    created = refund.created_at

    early = services.refund_follow_up(
        tenant_id=refund.tenant_id, refund_id=refund.pk, now=created + timedelta(minutes=5)
    )
    late = services.refund_follow_up(
        tenant_id=refund.tenant_id,
        refund_id=refund.pk,
        now=created + timedelta(seconds=settings.PAYDESK_REFUND_IN_DOUBT_SECONDS + 1),
    )

    assert early == "in doubt: waiting for a retry with the same key"
    assert late == "canceled"
    refund.refresh_from_db()
    assert refund.status == "canceled" and "nothing was refunded" in refund.failure_reason
    assert stripe_refunds(stripe_objects, intent) == []
    assert acme_api.get(f"/api/v1/pay-sessions/{session.uuid}/").json()["refundable_amount"] == "20.00"
    replay = refund_via_api(acme_api, session, key="lost", amount="5.00")
    assert replay.status_code == 200 and replay.json()["status"] == "canceled"


def test_a_refund_in_doubt_that_stripe_made_is_found_by_the_follow_up(
    acme_api, dev, stripe_proxy, stripe_objects, settings
):
    session, intent = paid(dev, stripe_objects, amount=2000)
    stripe_proxy.drop.append(("POST", "/v1/refunds", True))
    assert refund_via_api(acme_api, session, amount="5.00").status_code == 503
    [refund] = refund_rows(session)

    services.refund_follow_up(
        tenant_id=refund.tenant_id,
        refund_id=refund.pk,
        now=refund.created_at + timedelta(seconds=settings.PAYDESK_REFUND_IN_DOUBT_SECONDS + 1),
    )

    refund.refresh_from_db()
    [made] = stripe_refunds(stripe_objects, intent)
    assert (refund.status, refund.stripe_refund_id) == ("succeeded", made["id"])
    assert len(stripe_proxy.posts("/v1/refunds")) == 1


def test_a_refund_updated_webhook_records_that_stripe_failed_it(
    client, acme_api, dev, stripe_proxy, stripe_objects, django_capture_on_commit_callbacks
):
    session, intent = paid(dev, stripe_objects, amount=2000)
    made = refund_via_api(acme_api, session, amount="5.00").json()
    reconcile(dev)
    refund = stripe_objects.get(f"refunds/{made['stripe_refund_id']}")
    failed = refund | {"status": "failed", "failure_reason": "lost_or_stolen_card"}
    later = int(time.time()) + 5  # after the sync read it succeeded (Stripe's clock is in seconds)

    with django_capture_on_commit_callbacks(execute=True):
        assert post_event(client, dev, make_event(failed, "refund.updated", created=later)).status_code == 200

    row = Refund.objects.get(uuid=made["id"])
    assert (row.status, row.failure_reason) == ("failed", "lost_or_stolen_card")
    assert AuditEvent.objects.filter(action="refund.failed", target_id=made["id"], actor="stripe").exists()
    shown = acme_api.get(f"/api/v1/pay-sessions/{session.uuid}/").json()
    assert (shown["amount_refunded"], shown["refundable_amount"]) == ("0.00", "20.00")


def test_a_charge_refunded_webhook_makes_the_follow_up_ask_stripe_at_once(
    client, world, pending_refund, recorded_stripe, django_capture_on_commit_callbacks
):
    dev = world.acme.connectors["Stripe_Dev"]
    charge = {
        "id": PENDING["charge"],
        "object": "charge",
        "amount": 2000,
        "amount_refunded": 500,
        "currency": "usd",
        "status": "succeeded",
        "payment_intent": PENDING["payment_intent"],
        "created": PENDING["created"] - 60,
        "refunded": False,
    }
    recorded_stripe["states"] = ["succeeded"]
    assert pending_refund.next_check_at > timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        assert post_event(client, dev, make_event(charge, "charge.refunded")).status_code == 200

    pending_refund.refresh_from_db()
    assert pending_refund.status == "succeeded" and recorded_stripe["gets"] == 1


def test_a_failed_session_without_result_is_not_refundable_even_with_a_code(acme_api, world):
    session = paid_session(world.acme.connectors["Stripe_Dev"], code="pi_x", result="payment-connector-error")
    assert PaySession.objects.get(pk=session.pk).status == "failed"
    response = refund_via_api(acme_api, session)
    assert response.status_code == 409 and error(response)["code"] == "not_refundable"
