"""The mirror's merge: observations of one object, in any order and any number of times,
give the row that in-order delivery gives."""

from datetime import UTC, datetime, timedelta
from functools import reduce

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from payments.reconciliation.mirror import fields_of, merge, mirror_upsert, paydesk_ref
from payments.reconciliation.models import StripeCharge

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def charge_history(steps: int) -> list[dict]:
    """A charge through its life: pending, then succeeded, then refunds and a dispute."""
    history, refunded = [], 0
    for i in range(steps):
        status = "pending" if i == 0 else "succeeded"
        refunded += 100 if i >= 2 else 0
        obj = {
            "object": "charge",
            "id": "ch_1",
            "created": 1767225600,
            "amount": 5000,
            "currency": "usd",
            "status": status,
            "amount_refunded": refunded,
            "disputed": i >= 4,
            "payment_intent": "pi_1" if i >= 1 else None,
            "balance_transaction": "txn_1" if i >= 1 else None,
            "description": "Paydesk 6f1c7c2e-1a52-4e0b-9a43-2b8f3f0c0001" if i >= 3 else None,
        }
        history.append(fields_of("charge", obj) | {"observed_at": T0 + timedelta(seconds=i)})
    return history


@hsettings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=7).flatmap(
        lambda n: st.tuples(st.just(n), st.lists(st.integers(min_value=0, max_value=n - 1), min_size=n, max_size=3 * n))
    )
)
def test_any_order_and_any_replay_merges_to_the_in_order_row(case):
    n, deliveries = case
    history = charge_history(n)
    deliveries = deliveries + list(range(n))  # every observation arrives at least once
    in_order = reduce(lambda row, new: merge("charge", row, new), history)
    shuffled = reduce(lambda row, i: merge("charge", row, history[i]), deliveries[1:], history[deliveries[0]])
    assert shuffled == in_order


def test_the_paydesk_reference_is_read_from_the_description_or_metadata():
    ref = "6f1c7c2e-1a52-4e0b-9a43-2b8f3f0c0001"
    assert str(paydesk_ref(f"Invoice 7 · Paydesk {ref}")) == ref
    assert str(paydesk_ref(None, {"description": f"Paydesk {ref.upper()}"})) == ref
    assert paydesk_ref("Paydesk not-a-uuid", {}) is None


@pytest.mark.django_db
def test_a_page_read_again_or_a_late_event_never_undoes_newer_data(dev):
    newer = {
        "object": "charge",
        "id": "ch_2",
        "created": 1767225600,
        "amount": 900,
        "currency": "usd",
        "status": "succeeded",
        "amount_refunded": 900,
        "disputed": True,
    }
    older = newer | {"amount_refunded": 0, "disputed": False}

    mirror_upsert(connector=dev, objects=[newer], observed_at=T0 + timedelta(minutes=5))
    changed = mirror_upsert(connector=dev, objects=[older], observed_at=T0)

    row = StripeCharge.objects.get(connector=dev, stripe_id="ch_2")
    assert (row.amount_refunded, row.disputed) == (900, True)
    assert changed == {"charge": set()}
