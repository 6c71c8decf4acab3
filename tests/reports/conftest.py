"""Report test helpers: pay sessions at a given instant, the Stripe mirror rows the
reconciliation app keeps for them (charge, balance transaction, payout, refund, dispute,
and the session's reconciliation record), and Paydesk's refunds, written directly, one
tenant at a time."""

import csv
import io
import itertools
from datetime import UTC, datetime, timedelta

import openpyxl
import pytest
from django.utils import timezone

from payments.reconciliation.models import (
    ReconciliationItem,
    SessionReconciliation,
    StripeBalanceTransaction,
    StripeCharge,
    StripeDispute,
    StripePayout,
    StripeRefund,
)
from payments.refunds.models import Refund
from payments.sessions.models import PaySession
from tests.factories import MembershipFactory, PaySessionFactory, UserFactory

_ids = itertools.count(1)


def at(text: str) -> datetime:
    """An aware UTC instant from '2025-01-31 04:30'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def session(tw, *, when: datetime, connector="Stripe_Prod", status="succeeded", result=None, **fields) -> PaySession:
    """A pay session created at `when` (auto_now_add is overwritten)."""
    values = {
        "status": status,
        "result": result if result is not None else ("success" if status == "succeeded" else ""),
        "required_fields": [],
        "card_last4": "4242",
        "card_type": "visa",
        "completed_at": when,
    }
    s = PaySessionFactory(tenant=tw.tenant, connector=tw.connectors[connector], **(values | fields))
    PaySession.objects.filter(pk=s.pk).update(created_at=when)
    s.refresh_from_db()
    return s


def _mirror(model, s: PaySession, stripe_id: str, **fields):
    now = timezone.now()
    return model.objects.create(
        tenant=s.tenant,
        connector=s.connector,
        stripe_id=stripe_id,
        created=s.created_at,
        observed_at=now,
        updated_at=now,
        **fields,
    )


def payout(tw, *, stripe_id: str, amount: int, currency="USD", arrival: datetime, connector="Stripe_Prod", **fields):
    now = timezone.now()
    values = {"status": "paid", "automatic": True, "transactions_linked_at": now}
    return StripePayout.objects.create(
        tenant=tw.tenant,
        connector=tw.connectors[connector],
        stripe_id=stripe_id,
        created=arrival,
        observed_at=now,
        updated_at=now,
        amount=amount,
        currency=currency,
        arrival_date=arrival,
        **(values | fields),
    )


def stripe_payment(
    s: PaySession,
    *,
    fee: int,
    charge_id: str | None = None,
    amount: int | None = None,
    currency: str | None = None,
    settlement: str | None = None,
    net: int | None = None,
    refunded: int = 0,
    payout_id: str = "",
    dispute: str = "",
    state: str = "matched",
    refunded_at: datetime | None = None,
) -> StripeCharge:
    """What the mirror holds for a paid session, and its reconciliation record. With
    `refunded`, Paydesk's refund of that amount too, made by Stripe at `refunded_at`
    (default: 15 minutes after the session)."""
    n = next(_ids)
    charge_id = charge_id or f"ch_test{n:06d}"
    amount = s.amount_minor if amount is None else amount
    currency = currency or s.currency
    txn = _mirror(
        StripeBalanceTransaction,
        s,
        f"txn_{charge_id}",
        type="charge",
        reporting_category="charge",
        source_id=charge_id,
        amount=amount,
        fee=fee,
        net=amount - fee if net is None else net,
        currency=settlement or currency,
        status="available",
        available_on=s.created_at + timedelta(days=2),
        payout_id=payout_id,
    )
    charge = _mirror(
        StripeCharge,
        s,
        charge_id,
        amount=amount,
        amount_refunded=refunded,
        currency=currency,
        status="succeeded",
        disputed=bool(dispute),
        balance_transaction_id=txn.stripe_id,
        paydesk_ref=s.uuid,
    )
    if refunded:
        _mirror(
            StripeRefund,
            s,
            f"re_{charge_id}",
            amount=refunded,
            currency=currency,
            status="succeeded",
            charge_id=charge_id,
            balance_transaction_id=f"txn_re_{charge_id}",
        )
    if dispute:
        _mirror(
            StripeDispute,
            s,
            f"dp_{charge_id}",
            amount=amount,
            currency=currency,
            status=dispute,
            reason="fraudulent",
            charge_id=charge_id,
        )
    SessionReconciliation.objects.create(
        tenant=s.tenant,
        connector=s.connector,
        session=s,
        state=state,
        stripe_object_id=charge_id,
        charge_id=charge_id,
        stripe_amount=amount,
        stripe_currency=currency,
        amount_refunded=refunded,
        fee=fee,
        net=txn.net,
        payout_id=payout_id,
        checked_at=timezone.now(),
    )
    if refunded:
        refund(s, refunded, at=refunded_at or s.created_at + timedelta(minutes=15), currency=currency)
    return charge


def refund(s: PaySession, amount_minor: int, *, at: datetime, status="succeeded", currency=None, **fields) -> Refund:
    """A refund of the session that Stripe made at `at` (its `created`)."""
    n = next(_ids)
    return Refund.objects.create(
        tenant=s.tenant,
        session=s,
        connector=s.connector,
        amount_minor=amount_minor,
        currency=currency or s.currency,
        status=status,
        stripe_refund_id=f"re_test{n:06d}",
        refunded_at=at,
        idempotency_key=f"refund-{n}",
        **fields,
    )


def balance_txn(tw, *, stripe_id, payout_id, amount, fee, type_="charge", source_id="", currency="USD", when=None):
    now = timezone.now()
    return StripeBalanceTransaction.objects.create(
        tenant=tw.tenant,
        connector=tw.connectors["Stripe_Prod"],
        stripe_id=stripe_id,
        created=when or now,
        observed_at=now,
        updated_at=now,
        type=type_,
        reporting_category=type_,
        source_id=source_id,
        amount=amount,
        fee=fee,
        net=amount - fee,
        currency=currency,
        status="available",
        available_on=when or now,
        payout_id=payout_id,
    )


def item(tw, s: PaySession | None, *, reason="amount_mismatch", resolved=False, **fields) -> ReconciliationItem:
    now = timezone.now()
    return ReconciliationItem.objects.create(
        tenant=tw.tenant,
        connector=tw.connectors["Stripe_Prod"],
        session=s,
        reason=reason,
        subject=str(s.uuid) if s else f"ch_only{next(_ids)}",
        detail="Paydesk 1250, Stripe 1251",
        paydesk_data={"amount_minor": s.amount_minor, "currency": s.currency} if s else {},
        stripe_data={"amount": 1251, "currency": "usd"},
        fingerprint="f",
        opened_at=now,
        last_seen_at=now,
        resolved_at=now if resolved else None,
        resolution_note="checked" if resolved else "",
        **fields,
    )


def parse_csv(body: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def parse_xlsx(body: bytes):
    return openpyxl.load_workbook(io.BytesIO(body))


def content(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def member(tenant, role: str):
    user = UserFactory()
    MembershipFactory(user=user, tenant=tenant, role=role)
    return user


@pytest.fixture
def api(world, api_for):
    return api_for(world.acme.raw_key)


@pytest.fixture(autouse=True)
def _export_dir(settings, tmp_path):
    settings.PAYDESK_REPORTS_EXPORT_DIR = tmp_path / "exports"
