"""Whole sessions, end to end: Paydesk's API → the Twilio Pay simulator → localstripe, then
reconciliation against the same localstripe."""

import pytest

from payments.reconciliation.models import ReconciliationItem, SessionReconciliation, State
from payments.sessions.models import PaySession
from tests.payments.test_pay_sessions_e2e import Agent
from tests.reconciliation.conftest import reconcile

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def agent(desk, api_for):
    return Agent(desk, api_for(desk.world.acme.raw_key))


def test_a_phone_payment_is_matched_with_its_stripe_charge(agent, desk):
    session = agent.start(charge_amount="12.50", currency="USD")
    agent.enter_card()
    assert agent.complete()["status"] == "succeeded"

    reconcile(desk.world.acme.connectors["Stripe_Dev"])

    record = SessionReconciliation.objects.get(session__uuid=session["id"])
    assert record.state == State.MATCHED
    assert (record.stripe_amount, record.stripe_currency, record.net) == (1250, "USD", 1250)
    assert record.payment_intent_id == PaySession.objects.get(uuid=session["id"]).payment_confirmation_code


def test_a_payment_whose_result_callback_was_lost_is_recovered_from_stripe(agent, desk):
    session = agent.start(charge_amount="30.00", currency="USD")
    agent.enter_card()
    desk.sim.set_faults(bad_signature=True)  # from now on Paydesk refuses the callbacks: they are lost
    assert agent.post("complete").status_code == 200
    assert {cb["status"] for cb in desk.sim.flush()} == {403}
    lost = PaySession.objects.get(uuid=session["id"])
    assert lost.result == "" and lost.payment_confirmation_code == ""

    reconcile(desk.world.acme.connectors["Stripe_Dev"])

    record = SessionReconciliation.objects.get(session=lost)
    assert record.state == State.STRIPE_ONLY and record.stripe_amount == 3000 and record.payment_intent_id
    item = ReconciliationItem.objects.get(reason=State.STRIPE_ONLY)
    assert item.session == lost and item.subject == record.charge_id
