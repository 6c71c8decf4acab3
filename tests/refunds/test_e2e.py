"""A whole phone payment, then its refunds: Paydesk's API → the Twilio Pay simulator →
localstripe for the charge; Paydesk → localstripe for the refunds; reconciliation against
the same localstripe."""

import pytest

from payments.reconciliation.models import ReconciliationItem, SessionReconciliation, State
from tests.payments.conftest import desk  # noqa: F401 - the end-to-end fixture
from tests.payments.test_pay_sessions_e2e import Agent
from tests.reconciliation.conftest import reconcile

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_phone_payment_is_refunded_in_two_parts_and_reconciles(desk, api_for):  # noqa: F811
    api = api_for(desk.world.acme.raw_key)
    agent = Agent(desk, api)
    session = agent.start(charge_amount="30.00", currency="USD")
    agent.enter_card()
    paid = agent.complete()
    assert paid["status"] == "succeeded" and paid["refundable_amount"] == "30.00"
    url = f"/api/v1/pay-sessions/{session['id']}/refunds/"

    first = api.post(url, {"amount": "10.00", "reason": "requested_by_customer"}, format="json")
    rest = api.post(url, {}, format="json")

    assert (first.status_code, rest.status_code) == (201, 201)
    assert rest.json()["amount"] == "20.00"
    code = paid["outcome"]["payment_confirmation_code"]
    made = desk.stripe_get(f"/v1/refunds?payment_intent={code}")["data"]
    assert sorted(r["amount"] for r in made) == [1000, 2000]
    shown = agent.get()
    assert (shown["amount_refunded"], shown["refundable_amount"]) == ("30.00", "0.00")

    reconcile(desk.world.acme.connectors["Stripe_Dev"])

    record = SessionReconciliation.objects.get(session__uuid=session["id"])
    assert (record.state, record.amount_refunded) == (State.REFUNDED, 3000)
    assert not ReconciliationItem.objects.exists()
