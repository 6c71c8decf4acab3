"""Each reconciliation state, produced by a test built for it (localstripe holds the
Stripe side; sessions come from the factory, made the way Twilio would report them)."""

from datetime import timedelta

import pytest

from payments.reconciliation.models import ReconciliationItem, SessionReconciliation, State
from tests.reconciliation.conftest import paid_session, reconcile, set_code

pytestmark = pytest.mark.django_db


def state_of(session) -> SessionReconciliation:
    return SessionReconciliation.objects.get(session=session)


def item_of(session, reason) -> ReconciliationItem:
    return ReconciliationItem.objects.get(session=session, reason=reason)


def test_a_payment_intent_code_matches_its_charge(dev, stripe_objects):
    session = paid_session(dev)
    intent = stripe_objects.payment(session)
    set_code(session, intent["id"])

    reconcile(dev)

    record = state_of(session)
    assert record.state == State.MATCHED and record.matched_at is not None
    assert (record.charge_id, record.payment_intent_id, record.stripe_amount, record.stripe_currency) == (
        intent["charge_id"],
        intent["id"],
        1250,
        "USD",
    )
    assert (record.fee, record.net) == (0, 1250)  # localstripe charges no fee; see test_recorded_stripe.py
    assert not ReconciliationItem.objects.exists()


def test_a_charge_code_matches_the_charge(dev, stripe_objects):
    session = paid_session(dev, amount_minor=990)
    charge = stripe_objects.charge(amount=990, description=f"Paydesk {session.uuid}")
    set_code(session, charge["id"])

    reconcile(dev)

    assert state_of(session).state == State.MATCHED
    assert state_of(session).charge_id == charge["id"]


def test_a_different_amount_is_an_amount_mismatch_with_both_sides(dev, stripe_objects):
    session = paid_session(dev, amount_minor=1250)
    intent = stripe_objects.payment(session, amount=1200)
    set_code(session, intent["id"])

    reconcile(dev)

    assert state_of(session).state == State.AMOUNT_MISMATCH
    item = item_of(session, State.AMOUNT_MISMATCH)
    assert item.is_open and item.stripe_object_id == intent["id"]
    assert item.paydesk_data["amount_minor"] == 1250 and item.paydesk_data["currency"] == "USD"
    assert item.stripe_data["amount"] == 1200 and item.stripe_data["charge"] == intent["charge_id"]


def test_a_different_currency_is_a_currency_mismatch(dev, stripe_objects):
    session = paid_session(dev, currency="EUR")
    intent = stripe_objects.payment(session, currency="usd")
    set_code(session, intent["id"])

    reconcile(dev)

    assert state_of(session).state == State.CURRENCY_MISMATCH
    item = item_of(session, State.CURRENCY_MISMATCH)
    assert (item.paydesk_data["currency"], item.stripe_data["currency"]) == ("EUR", "USD")


def test_amounts_are_compared_in_minor_units_for_zero_decimal_currencies(dev, stripe_objects):
    session = paid_session(dev, amount_minor=1250, currency="JPY")
    intent = stripe_objects.payment(session, amount=1250, currency="jpy")
    set_code(session, intent["id"])

    reconcile(dev)

    assert state_of(session).state == State.MATCHED


def test_a_code_stripe_does_not_have_is_missing_in_stripe(dev, stripe_objects):
    session = paid_session(dev, code="pi_3QNotInStripeAtAll")

    reconcile(dev)

    assert state_of(session).state == State.MISSING_IN_STRIPE
    item = item_of(session, State.MISSING_IN_STRIPE)
    assert item.stripe_data == {"object": "pi_3QNotInStripeAtAll"} and "no pi_3QNotInStripeAtAll" in item.detail


def test_a_session_too_recent_to_judge_is_pending_not_missing(dev, stripe_objects, settings):
    settings.PAYDESK_RECONCILIATION_GRACE_SECONDS = 600
    recent = paid_session(dev, code="pi_3QNotInStripeYet", ago=timedelta(minutes=2))
    old = paid_session(dev, code="pi_3QNotInStripeEver", ago=timedelta(hours=2))

    reconcile(dev)

    assert state_of(recent).state == State.PENDING
    assert state_of(old).state == State.MISSING_IN_STRIPE
    assert not ReconciliationItem.objects.filter(session=recent).exists()


def test_nothing_is_judged_missing_before_a_complete_sync(dev, fake_stripe):
    session = paid_session(dev, code="pi_3QNotInStripeAtAll")
    fake_stripe.faults = [("charges", 401)]  # the sync fails: the mirror cannot be trusted

    reconcile(dev)

    assert not SessionReconciliation.objects.filter(session=session).exists()


def test_a_partial_refund_and_then_a_full_refund(dev, stripe_objects):
    session = paid_session(dev, amount_minor=2000)
    intent = stripe_objects.payment(session, amount=2000)
    set_code(session, intent["id"])
    stripe_objects.refund(intent["charge_id"], amount=500)

    reconcile(dev)

    record = state_of(session)
    assert (record.state, record.amount_refunded) == (State.PARTIALLY_REFUNDED, 500)
    assert record.detail == "Partly refunded: 5.00 USD of 20.00 USD."

    stripe_objects.refund(intent["charge_id"], amount=1500)
    reconcile(dev)

    record = state_of(session)
    assert (record.state, record.amount_refunded) == (State.REFUNDED, 2000)
    assert record.detail == "Fully refunded: 20.00 USD of 20.00 USD."
    # Paydesk records the refunds made in Stripe: they are not differences to resolve.
    assert not ReconciliationItem.objects.exists()
    assert sorted(session.refunds.values_list("amount_minor", "origin", "status")) == [
        (500, "stripe", "succeeded"),
        (1500, "stripe", "succeeded"),
    ]


def test_a_charge_with_a_paydesk_reference_and_no_result_is_stripe_only_and_recovers_the_session(dev, stripe_objects):
    # the caller paid, but the callback carrying the result never reached Paydesk
    lost = paid_session(dev, result="", status="expired", completed_at=None)
    intent = stripe_objects.payment(lost, amount=4200)

    reconcile(dev)

    record = state_of(lost)
    assert record.state == State.STRIPE_ONLY
    assert (record.charge_id, record.payment_intent_id, record.stripe_amount) == (
        intent["charge_id"],
        intent["id"],
        4200,
    )
    item = ReconciliationItem.objects.get(reason=State.STRIPE_ONLY, subject=intent["charge_id"])
    assert item.session == lost and "callback lost" in item.detail
    assert item.paydesk_data["session"] == str(lost.uuid) and item.stripe_data["amount"] == 4200


def test_a_charge_naming_a_session_this_tenant_does_not_have_is_stripe_only(dev, stripe_objects, world):
    stranger = paid_session(world.globex.connectors["Stripe_Dev"])  # another tenant's session
    intent = stripe_objects.payment(stranger)

    reconcile(dev)

    item = ReconciliationItem.objects.get(connector=dev, reason=State.STRIPE_ONLY, subject=intent["charge_id"])
    assert item.session is None and item.paydesk_data == {"session": str(stranger.uuid), "known": False}
    assert not SessionReconciliation.objects.filter(session=stranger).exists()


def test_a_second_charge_for_a_matched_session_is_stripe_only(dev, stripe_objects):
    session = paid_session(dev)
    first = stripe_objects.payment(session)
    set_code(session, first["id"])
    second = stripe_objects.payment(session)

    reconcile(dev)

    assert state_of(session).state == State.MATCHED and state_of(session).charge_id == first["charge_id"]
    item = ReconciliationItem.objects.get(reason=State.STRIPE_ONLY)
    assert item.subject == second["charge_id"] and item.session == session and "second charge" in item.detail


def test_a_failed_session_with_no_payment_in_stripe_matches(dev, stripe_objects):
    failed = paid_session(dev, result="payment-connector-error")

    reconcile(dev)

    assert state_of(failed).state == State.MATCHED and "No payment expected" in state_of(failed).detail


def test_a_failed_session_stripe_took_money_for_is_stripe_only(dev, stripe_objects):
    failed = paid_session(dev, result="payment-connector-error")
    stripe_objects.payment(failed)

    reconcile(dev)

    assert state_of(failed).state == State.STRIPE_ONLY


def test_a_success_whose_code_is_unknown_is_found_by_its_reference(dev, stripe_objects):
    session = paid_session(dev, code="ch_3QUnknownToStripe")
    stripe_objects.payment(session)

    reconcile(dev)

    record = state_of(session)
    assert record.state == State.MATCHED and "Paydesk reference" in record.detail


def test_tokenizations_are_matched_by_their_customer_or_token(dev, stripe_objects):
    customer = stripe_objects.post("customers", {"payment_method": "pm_card_visa"})
    kept = paid_session(
        dev, amount_minor=None, token_type="reusable", profile_id=customer["id"], payment_token="tok_unknown"
    )
    lost = paid_session(dev, amount_minor=None, token_type="payment-method", payment_token="pm_3QNotThere")

    reconcile(dev)

    assert state_of(kept).state == State.MATCHED and state_of(kept).stripe_object_id == customer["id"]
    assert state_of(lost).state == State.MISSING_IN_STRIPE


def test_a_settled_match_is_not_checked_again_until_its_charge_changes(dev, stripe_objects):
    session = paid_session(dev)
    intent = stripe_objects.payment(session)
    set_code(session, intent["id"])
    reconcile(dev)
    checked = state_of(session).checked_at

    reconcile(dev)
    assert state_of(session).checked_at == checked  # nothing changed: not re-judged

    stripe_objects.refund(intent["charge_id"], amount=100)
    reconcile(dev)
    assert state_of(session).checked_at > checked and state_of(session).state == State.PARTIALLY_REFUNDED


def test_a_connector_sharing_the_stripe_account_leaves_the_other_connectors_sessions_alone(world, dev, stripe_objects):
    stage = world.acme.connectors["Stripe_Stage"]  # both read the same (local) Stripe account
    session = paid_session(dev)
    intent = stripe_objects.payment(session)
    set_code(session, intent["id"])

    reconcile(stage)

    assert not SessionReconciliation.objects.filter(session=session).exists()
    assert not ReconciliationItem.objects.exists()
    reconcile(dev)
    assert state_of(session).state == State.MATCHED
    reconcile(stage, full=True)
    assert state_of(session).state == State.MATCHED and not ReconciliationItem.objects.exists()


def test_a_found_tokenization_is_not_asked_of_stripe_again(dev, stripe_objects, tap):
    customer = stripe_objects.post("customers", {"payment_method": "pm_card_visa"})
    paid_session(dev, amount_minor=None, token_type="reusable", profile_id=customer["id"])
    reconcile(dev)
    assert len([u for m, u in tap.calls if "/v1/customers/" in u]) == 1

    reconcile(dev, mode="nightly")

    assert len([u for m, u in tap.calls if "/v1/customers/" in u]) == 1
