"""What localstripe cannot show, from recorded Stripe-shaped JSON (fixtures/, objects in the
shape of Stripe's own API fixtures, stripe/openapi fixtures3.json, with values for these
tests): non-zero fees, a dispute with its balance transaction, an automatic payout and
the balance transactions it settled. Served newest-first, as Stripe lists."""

import uuid

import pytest

from payments.reconciliation.models import (
    ReconciliationItem,
    SessionReconciliation,
    State,
    StripeBalanceTransaction,
    StripeDispute,
    StripePayout,
)
from tests.reconciliation.conftest import fixture, paid_session, reconcile

pytestmark = pytest.mark.django_db

REFS = {n: uuid.UUID(f"6f1c7c2e-1a52-4e0b-9a43-2b8f3f0c000{n}") for n in (1, 2, 3)}


@pytest.fixture
def recorded(dev, fake_stripe):
    fake_stripe.load("charges", "charges_with_fees.json")
    fake_stripe.load("disputes", "disputes.json")
    fake_stripe.load("payouts", "payouts.json")
    fake_stripe.by_payout["po_1QPaydeskFixture0001"] = fixture("payout_balance_transactions.json")["data"]
    amounts = {1: 1250, 2: 4000, 3: 990}
    return {
        n: paid_session(dev, uuid=REFS[n], code=f"pi_3QPaydeskFixture{n:04d}", amount_minor=amounts[n]) for n in amounts
    }


def test_fees_net_and_the_payout_are_recorded_on_each_matched_session(dev, recorded, fake_stripe):
    reconcile(dev)

    first = SessionReconciliation.objects.get(session=recorded[1])
    assert first.state == State.MATCHED
    assert (first.stripe_amount, first.fee, first.net) == (1250, 66, 1184)
    assert first.payout_id == "po_1QPaydeskFixture0001" and first.available_on is not None
    third = SessionReconciliation.objects.get(session=recorded[3])
    assert (third.fee, third.net, third.payout_id) == (59, 931, "po_1QPaydeskFixture0001")
    payout = StripePayout.objects.get(connector=dev)
    assert payout.automatic and payout.status == "paid" and payout.transactions_linked_at is not None
    # Stripe's attribution, checked: the payout pays out exactly the nets it settled
    settled = StripeBalanceTransaction.objects.filter(connector=dev, payout_id=payout.stripe_id)
    assert sum(t.net for t in settled if t.type != "payout") == payout.amount
    assert [u for u in fake_stripe.requests if "payout=po_1QPaydeskFixture0001" in u]


def test_a_disputed_charge_is_disputed_with_the_dispute_fee_in_the_mirror(dev, recorded):
    reconcile(dev)

    record = SessionReconciliation.objects.get(session=recorded[2])
    assert record.state == State.DISPUTED and "fraudulent" in record.detail
    dispute = StripeDispute.objects.get(connector=dev)
    assert (dispute.charge_id, dispute.amount, dispute.status) == ("ch_3QPaydeskFixture0002", 4000, "needs_response")
    fee = StripeBalanceTransaction.objects.get(connector=dev, stripe_id="txn_1QPaydeskDispute0001")
    assert (fee.amount, fee.fee, fee.net, fee.reporting_category) == (-4000, 1500, -5500, "dispute")
    item = ReconciliationItem.objects.get(session=recorded[2], reason=State.DISPUTED)
    assert item.stripe_data["disputes"] == [
        {"id": "dp_1QPaydeskFixture0001", "status": "needs_response", "reason": "fraudulent", "amount": 4000}
    ]


def test_a_payout_is_linked_once(dev, recorded, fake_stripe):
    reconcile(dev)
    fake_stripe.requests.clear()

    reconcile(dev)

    assert not [u for u in fake_stripe.requests if "payout=" in u]
