"""Refunds in the reconciliation: a refunded session reconciles as refunded or
partially_refunded; a refund made in Stripe's dashboard is recorded in Paydesk, marked as
made outside Paydesk; a refund Paydesk recorded that Stripe lacks is an exception."""

from datetime import timedelta

import pytest
from django.utils import timezone

from payments.reconciliation.models import ReconciliationItem, SessionReconciliation, State
from payments.refunds.models import Refund
from tenants.models import AuditEvent
from tests.reconciliation.conftest import make_item, reconcile
from tests.refunds.conftest import paid, refund_rows, refund_via_api, stripe_refunds

pytestmark = pytest.mark.django_db


def state_of(session) -> SessionReconciliation:
    return SessionReconciliation.objects.get(session=session)


def test_a_session_refunded_through_paydesk_reconciles_as_refunded_without_an_exception(acme_api, dev, stripe_objects):
    full, _ = paid(dev, stripe_objects, amount=2000)
    part, _ = paid(dev, stripe_objects, amount=2000)
    refund_via_api(acme_api, full)
    refund_via_api(acme_api, part, amount="5.00")

    reconcile(dev)

    assert (state_of(full).state, state_of(full).amount_refunded) == (State.REFUNDED, 2000)
    assert (state_of(part).state, state_of(part).amount_refunded) == (State.PARTIALLY_REFUNDED, 500)
    assert not ReconciliationItem.objects.exists()
    assert Refund.objects.count() == 2 and not Refund.objects.filter(origin="stripe").exists()


def test_a_refund_made_in_stripes_dashboard_is_recorded_as_made_outside_paydesk(acme_api, dev, stripe_objects):
    session, intent = paid(dev, stripe_objects, amount=2000)
    refund_via_api(acme_api, session, amount="2.00")
    outside = stripe_objects.post("refunds", {"charge": intent["charge_id"], "amount": "700", "reason": "duplicate"})

    reconcile(dev)
    reconcile(dev, full=True)  # seen again: recorded once

    mine, theirs = refund_rows(session)
    assert (mine.origin, mine.amount_minor) == ("paydesk", 200)
    assert (theirs.origin, theirs.amount_minor, theirs.status, theirs.reason) == (
        "stripe",
        700,
        "succeeded",
        "duplicate",
    )
    assert theirs.stripe_refund_id == outside["id"] and theirs.requested_by == "made outside Paydesk"
    assert theirs.refunded_at.timestamp() == outside["created"]
    assert state_of(session).state == State.PARTIALLY_REFUNDED and not ReconciliationItem.objects.exists()
    audit = AuditEvent.objects.get(action="refund.created", target_id=str(theirs.uuid))
    assert audit.actor == "stripe" and audit.changes["origin"] == "stripe"
    listed = acme_api.get("/api/v1/refunds/", {"origin": "stripe"}).json()["results"]
    assert [(r["id"], r["made_outside_paydesk"]) for r in listed] == [(str(theirs.uuid), True)]
    shown = acme_api.get(f"/api/v1/pay-sessions/{session.uuid}/").json()
    assert (shown["amount_refunded"], shown["refundable_amount"]) == ("9.00", "11.00")


def test_a_refund_paydesk_recorded_that_stripe_lacks_is_an_exception(acme_api, dev, stripe_objects, settings):
    session, intent = paid(dev, stripe_objects, amount=2000)
    made = refund_via_api(acme_api, session, amount="5.00").json()
    lost = Refund.objects.create(  # Paydesk says Stripe made it; Stripe has no such refund
        tenant=session.tenant,
        session=session,
        connector=dev,
        amount_minor=300,
        currency="USD",
        status="succeeded",
        stripe_refund_id="re_3QNeverInStripe",
        idempotency_key="lost",
    )
    Refund.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(hours=1))

    settings.PAYDESK_RECONCILIATION_GRACE_SECONDS = 7200  # asked 1 h ago: too recent to judge yet
    reconcile(dev)
    assert state_of(session).state == State.PARTIALLY_REFUNDED

    settings.PAYDESK_RECONCILIATION_GRACE_SECONDS = 0
    reconcile(dev, full=True)

    record = state_of(session)
    assert record.state == State.REFUND_MISSING_IN_STRIPE
    assert "Stripe has no refund re_3QNeverInStripe (3.00 USD, succeeded in Paydesk" in record.detail
    item = ReconciliationItem.objects.get(session=session, reason=State.REFUND_MISSING_IN_STRIPE)
    assert item.is_open and item.stripe_data["amount_refunded"] == 500
    assert item.paydesk_data["missing_refunds"] == [
        {
            "refund": str(lost.uuid),
            "stripe_refund_id": "re_3QNeverInStripe",
            "amount_minor": 300,
            "currency": "USD",
            "status": "succeeded",
        }
    ]
    assert [r["id"] for r in stripe_refunds(stripe_objects, intent)] == [made["stripe_refund_id"]]


def test_a_refund_whose_answer_was_lost_is_linked_by_its_metadata_not_recorded_twice(
    acme_api, dev, stripe_proxy, stripe_objects
):
    session, intent = paid(dev, stripe_objects, amount=2000)
    stripe_proxy.drop.append(("POST", "/v1/refunds", True))
    assert refund_via_api(acme_api, session, amount="4.00").status_code == 503

    reconcile(dev)

    [refund] = refund_rows(session)  # not a second, "outside Paydesk" one
    [made] = stripe_refunds(stripe_objects, intent)
    assert (refund.origin, refund.status, refund.stripe_refund_id) == ("paydesk", "succeeded", made["id"])


def test_an_exception_opened_for_a_refund_before_paydesk_recorded_refunds_closes_by_itself(dev, stripe_objects):
    session, intent = paid(dev, stripe_objects, amount=2000)
    stripe_objects.refund(intent["charge_id"], amount=500)
    old = make_item(dev, reason="refunded", session=session, stripe_object_id=intent["id"])

    reconcile(dev)

    old.refresh_from_db()
    assert not old.is_open and "Closed automatically" in old.resolution_note
    assert state_of(session).state == State.PARTIALLY_REFUNDED
