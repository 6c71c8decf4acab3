"""Matching pay sessions with the Stripe mirror, in batches (no Stripe call, except to
check a tokenization's token or customer once).

A charge session is found by its confirmation code (pi_ → the PaymentIntent's charge,
ch_/py_ → the charge), else by the `Paydesk <uuid>` reference its charge carries; amount
and currency are compared in minor units; then refunds and disputes. The session's
refunds in Paydesk are brought in line with the charge's refunds in Stripe first (a
refund made in Stripe's dashboard is recorded, marked as made outside Paydesk); a refund
Paydesk recorded that Stripe lacks is a difference. A session is judged
missing only once a complete sync began after it ended (plus a grace period); before
that it is pending. Succeeded charges that carry a Paydesk reference and match no
session are Stripe-only: the payments whose callbacks were lost. The session they name
(in the same tenant) is recovered from them: its record links the charge.
"""

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q, QuerySet

from connectors.models import ConnectorInstance
from core.money import to_major_string
from payments.reconciliation.items import SESSION_REASONS, Difference, items_sync
from payments.reconciliation.models import (
    DIFFERENCES,
    ConnectorSyncState,
    SessionReconciliation,
    State,
    StripeBalanceTransaction,
    StripeCharge,
    StripeDispute,
    StripePaymentIntent,
    StripeRefund,
)
from payments.refunds.models import Refund
from payments.refunds.selectors import refunds_by_session
from payments.refunds.services import StripeRefundFacts, refunds_follow_up_soon, refunds_record_from_stripe
from payments.sessions.models import PaySession

BATCH = 500
# States whose record names the charge that accounts for the session's payment.
LINKED = [
    State.MATCHED,
    State.AMOUNT_MISMATCH,
    State.CURRENCY_MISMATCH,
    State.REFUNDED,
    State.PARTIALLY_REFUNDED,
    State.REFUND_MISSING_IN_STRIPE,
    State.DISPUTED,
]
TokenLookup = Callable[[str], dict | None]


def grace() -> timedelta:
    return timedelta(seconds=settings.PAYDESK_RECONCILIATION_GRACE_SECONDS)


def judge_before(connector: ConnectorInstance) -> datetime | None:
    """Sessions that ended before this can be judged: a complete sync began after them."""
    started = ConnectorSyncState.objects.filter(connector=connector).values_list("last_success_at", flat=True).first()
    return started - grace() if started else None


@dataclass
class Verdict:
    state: str
    detail: str = ""
    charge: StripeCharge | None = None
    stripe_object_id: str = ""
    amount_refunded: int = 0
    disputes: list = field(default_factory=list)
    missing_refunds: list = field(default_factory=list)  # Paydesk's refunds Stripe lacks


@dataclass
class Batch:
    """The mirror rows a batch of sessions can need, read in a handful of queries."""

    charges: dict = field(default_factory=dict)
    by_pi: dict = field(default_factory=lambda: defaultdict(list))
    by_ref: dict = field(default_factory=lambda: defaultdict(list))
    intents: dict = field(default_factory=dict)
    refunded: dict = field(default_factory=dict)
    refunds: dict = field(default_factory=lambda: defaultdict(list))  # charge id → its refunds, any status
    disputes: dict = field(default_factory=lambda: defaultdict(list))
    txns: dict = field(default_factory=dict)

    @classmethod
    def load(cls, connector: ConnectorInstance, sessions: list[PaySession]) -> "Batch":
        batch = cls()
        codes = {s.payment_confirmation_code for s in sessions if s.payment_confirmation_code}
        pis = {c for c in codes if c.startswith("pi_")}
        refs = [s.uuid for s in sessions]
        charges = StripeCharge.objects.filter(connector=connector).filter(
            Q(stripe_id__in=codes) | Q(payment_intent_id__in=pis) | Q(paydesk_ref__in=refs)
        )
        batch.intents = {
            p.stripe_id: p for p in StripePaymentIntent.objects.filter(connector=connector, stripe_id__in=pis)
        }
        latest = {p.latest_charge_id for p in batch.intents.values() if p.latest_charge_id}
        for charge in [*charges, *StripeCharge.objects.filter(connector=connector, stripe_id__in=latest)]:
            batch.charges[charge.stripe_id] = charge
        for charge in batch.charges.values():
            if charge.payment_intent_id:
                batch.by_pi[charge.payment_intent_id].append(charge)
            if charge.paydesk_ref:
                batch.by_ref[charge.paydesk_ref].append(charge)
        ids = list(batch.charges)
        for refund in StripeRefund.objects.filter(connector=connector, charge_id__in=ids).order_by("created", "pk"):
            batch.refunds[refund.charge_id].append(refund)
            if refund.status == "succeeded":
                batch.refunded[refund.charge_id] = batch.refunded.get(refund.charge_id, 0) + refund.amount
        for dispute in StripeDispute.objects.filter(connector=connector, charge_id__in=ids).order_by("created"):
            batch.disputes[dispute.charge_id].append(dispute)
        txn_ids = [c.balance_transaction_id for c in batch.charges.values() if c.balance_transaction_id]
        batch.txns = {
            t.stripe_id: t for t in StripeBalanceTransaction.objects.filter(connector=connector, stripe_id__in=txn_ids)
        }
        return batch


def _best(charges: Iterable[StripeCharge]) -> StripeCharge | None:
    """Of several charges (a PaymentIntent retried), the succeeded one, else the latest."""
    ordered = sorted(charges, key=lambda c: (c.status == "succeeded", c.created))
    return ordered[-1] if ordered else None


def _judge_charge(session: PaySession, batch: Batch, judgeable: bool) -> Verdict:
    code = session.payment_confirmation_code
    charge, detail = None, ""
    if code.startswith("pi_"):
        intent = batch.intents.get(code)
        charge = _best(batch.by_pi.get(code, [])) or (batch.charges.get(intent.latest_charge_id) if intent else None)
        if charge is None and intent is not None:
            detail = f"PaymentIntent {code} is {intent.status} and has no charge."
    elif code:
        charge = batch.charges.get(code)
    if charge is None or charge.status != "succeeded":
        by_ref = _best(c for c in batch.by_ref.get(session.uuid, []) if c.status == "succeeded")
        if by_ref is not None:
            what = f"its code {code} leads to no succeeded charge" if code else "Twilio reported no code"
            charge, detail = by_ref, f"Found by its Paydesk reference ({what})."
    if charge is not None and charge.status == "pending":
        return Verdict(State.PENDING, f"Charge {charge.stripe_id} is still pending in Stripe.", charge=charge)
    if charge is None or charge.status != "succeeded":
        if not judgeable:
            return Verdict(State.PENDING, "Too recent to judge: no complete sync since the session ended.")
        why = detail or (
            f"Charge {charge.stripe_id} is {charge.status}." if charge else f"Stripe has no {code or 'charge'} for it."
        )
        return Verdict(State.MISSING_IN_STRIPE, why, charge=charge, stripe_object_id=code)
    refunded = max(charge.amount_refunded, batch.refunded.get(charge.stripe_id) or 0)
    verdict = Verdict(
        State.MATCHED,
        detail,
        charge=charge,
        stripe_object_id=code or charge.stripe_id,
        amount_refunded=refunded,
        disputes=batch.disputes.get(charge.stripe_id, []),
    )
    if session.currency.upper() != charge.currency:
        verdict.state, verdict.detail = (
            State.CURRENCY_MISMATCH,
            f"Paydesk {session.currency}, Stripe {charge.currency}.",
        )
    elif session.amount_minor != charge.amount:
        verdict.state = State.AMOUNT_MISMATCH
        verdict.detail = f"Paydesk {session.amount_minor}, Stripe {charge.amount} (minor units, {charge.currency})."
    elif verdict.disputes:
        last = verdict.disputes[-1]
        verdict.state, verdict.detail = (
            State.DISPUTED,
            f"Dispute {last.stripe_id}: {last.reason or '—'}, {last.status}.",
        )
    elif refunded:
        full = refunded >= charge.amount
        verdict.state = State.REFUNDED if full else State.PARTIALLY_REFUNDED
        verdict.detail = (
            f"{'Fully' if full else 'Partly'} refunded: {_major(refunded, charge.currency)} "
            f"of {_major(charge.amount, charge.currency)}."
        )
    return verdict


def _major(amount_minor: int, currency: str) -> str:
    return f"{to_major_string(amount_minor, currency)} {currency}"


# States after which Paydesk's refunds are compared with Stripe's (the charge is the session's).
_REFUNDS_JUDGED = {State.MATCHED, State.REFUNDED, State.PARTIALLY_REFUNDED, State.DISPUTED}


def _facts(refund: StripeRefund) -> StripeRefundFacts:
    return StripeRefundFacts(
        stripe_id=refund.stripe_id,
        amount=refund.amount,
        currency=refund.currency,
        status=refund.status,
        created=refund.created,
        observed_at=refund.observed_at,
        reason=refund.reason,
        failure_reason=refund.failure_reason,
        paydesk_refund=refund.paydesk_refund,
    )


def refunds_align(connector: ConnectorInstance, verdicts: list[tuple[PaySession, "Verdict"]], batch: Batch) -> None:
    """Bring each session's refunds in Paydesk in line with its charge's refunds in Stripe,
    and ask Stripe again at once about pending ones when Stripe's charge says more was
    refunded than Paydesk knows (a `charge.refunded` event carries no refund object)."""
    follow_up = []
    for session, verdict in verdicts:
        charge = verdict.charge
        if charge is None or verdict.state not in LINKED:
            continue
        mirrored = batch.refunds.get(charge.stripe_id, [])
        if mirrored:
            refunds_record_from_stripe(session=session, facts=[_facts(r) for r in mirrored])
        if charge.amount_refunded > batch.refunded.get(charge.stripe_id, 0):
            follow_up.append(session.pk)
    if follow_up:
        refunds_follow_up_soon(tenant_id=connector.tenant_id, session_ids=follow_up)


def judge_refunds(
    connector: ConnectorInstance, verdicts: list[tuple[PaySession, "Verdict"]], cutoff: datetime | None
) -> None:
    """A refund Paydesk recorded as made in Stripe (it has Stripe's id, and is pending or
    succeeded) that the mirror lacks, once a complete sync began after it was asked (plus
    the grace period), is a difference: the session's state says so."""
    judged = [(s, v) for s, v in verdicts if v.charge is not None and v.state in _REFUNDS_JUDGED]
    if not judged or cutoff is None:
        return
    ours = refunds_by_session(tenant_id=connector.tenant_id, session_ids=[s.pk for s, _ in judged])
    expected = {
        r.stripe_refund_id: r
        for refunds in ours.values()
        for r in refunds
        if r.stripe_refund_id and r.status in Refund.HOLDING and r.created_at <= cutoff
    }
    if not expected:
        return
    known = set(
        StripeRefund.objects.filter(connector=connector, stripe_id__in=list(expected)).values_list(
            "stripe_id", flat=True
        )
    )
    for session, verdict in judged:
        missing = [
            r for r in ours.get(session.pk, []) if r.stripe_refund_id in expected and r.stripe_refund_id not in known
        ]
        if not missing:
            continue
        first = missing[0]
        verdict.state = State.REFUND_MISSING_IN_STRIPE
        verdict.missing_refunds = missing
        verdict.detail = (
            f"Stripe has no refund {first.stripe_refund_id} ({_major(first.amount_minor, first.currency)}, "
            f"{first.status} in Paydesk, asked {first.created_at:%Y-%m-%d %H:%M} UTC)"
            + (f" and {len(missing) - 1} more." if len(missing) > 1 else ".")
        )


def _judge_tokenization(session: PaySession, lookup: TokenLookup, judgeable: bool) -> Verdict:
    ids = [i for i in (session.profile_id, session.payment_token) if i]
    for object_id in ids:
        found = lookup(object_id)
        if found and not found.get("deleted"):
            return Verdict(
                State.MATCHED, f"{found.get('object', 'object')} {object_id} exists.", stripe_object_id=object_id
            )
    if not judgeable:
        return Verdict(State.PENDING, "Too recent to judge.")
    return Verdict(
        State.MISSING_IN_STRIPE,
        f"Stripe has none of {', '.join(ids) or 'its token'}.",
        stripe_object_id=ids[0] if ids else "",
    )


def _judge(session, batch, lookup, judgeable) -> Verdict | None:
    if session.result != "success":
        mine = [c for c in batch.by_ref.get(session.uuid, []) if c.status == "succeeded"]
        if mine:
            return None  # the Stripe-only pass owns it: Stripe took money Twilio says it did not
        if not judgeable:
            return Verdict(State.PENDING, "Too recent to judge.")
        return Verdict(State.MATCHED, "No payment expected, and Stripe has none.")
    if session.is_tokenization:
        # A token or customer found once stays found: asked of Stripe once, not every night.
        previous = getattr(session, "reconciliation", None)
        if lookup is None or (previous is not None and previous.state == State.MATCHED):
            return None
        return _judge_tokenization(session, lookup, judgeable)
    return _judge_charge(session, batch, judgeable)


def paydesk_side(session: PaySession, verdict: Verdict | None = None) -> dict:
    missing = verdict.missing_refunds if verdict else []
    return {
        "session": str(session.uuid),
        "status": session.status,
        "result": session.result,
        "amount_minor": session.amount_minor,
        "currency": session.currency,
        "code": session.payment_confirmation_code,
        "payment_token": session.payment_token,
        "profile_id": session.profile_id,
        "completed_at": session.completed_at.isoformat() if session.completed_at else None,
        **(
            {
                "missing_refunds": [
                    {
                        "refund": str(r.uuid),
                        "stripe_refund_id": r.stripe_refund_id,
                        "amount_minor": r.amount_minor,
                        "currency": r.currency,
                        "status": r.status,
                    }
                    for r in missing
                ]
            }
            if missing
            else {}
        ),
    }


def stripe_side(charge: StripeCharge | None, verdict: Verdict | None, txn=None) -> dict:
    if charge is None:
        return {"object": verdict.stripe_object_id} if verdict and verdict.stripe_object_id else {}
    return {
        "charge": charge.stripe_id,
        "payment_intent": charge.payment_intent_id,
        "amount": charge.amount,
        "currency": charge.currency,
        "status": charge.status,
        "created": charge.created.isoformat(),
        "amount_refunded": verdict.amount_refunded if verdict else charge.amount_refunded,
        "disputes": [
            {"id": d.stripe_id, "status": d.status, "reason": d.reason, "amount": d.amount}
            for d in (verdict.disputes if verdict else [])
        ],
        "fee": txn.fee if txn else None,
        "net": txn.net if txn else None,
        "payout": txn.payout_id if txn else "",
    }


def record_for(session, verdict: Verdict, batch: Batch, now) -> SessionReconciliation:
    charge = verdict.charge
    txn = batch.txns.get(charge.balance_transaction_id) if charge else None
    previous = getattr(session, "reconciliation", None)
    matched_at = previous.matched_at if previous else None
    return SessionReconciliation(
        tenant_id=session.tenant_id,
        connector_id=session.connector_id,
        session=session,
        state=verdict.state,
        detail=verdict.detail[:500],
        stripe_object_id=verdict.stripe_object_id,
        charge_id=charge.stripe_id if charge else "",
        payment_intent_id=charge.payment_intent_id if charge else "",
        stripe_amount=charge.amount if charge else None,
        stripe_currency=charge.currency if charge else "",
        amount_refunded=verdict.amount_refunded,
        fee=txn.fee if txn else None,
        net=txn.net if txn else None,
        available_on=txn.available_on if txn else None,
        payout_id=txn.payout_id if txn else "",
        checked_at=now,
        matched_at=matched_at or (now if verdict.state == State.MATCHED else None),
    )


_RECORD_FIELDS = [f.name for f in SessionReconciliation._meta.concrete_fields if f.name not in ("id", "session")]


def records_save(records: list[SessionReconciliation]) -> None:
    SessionReconciliation.objects.bulk_create(
        records, update_conflicts=True, unique_fields=["session"], update_fields=_RECORD_FIELDS
    )


def sessions_to_check(connector: ConnectorInstance, *, since=None, full=False, session_ids=None) -> QuerySet:
    """Sessions with a result that may have moved: never checked, not settled yet, changed,
    or whose charge changed since (a refund, a dispute, a payout). `full`: all of them."""
    qs = PaySession.objects.filter(tenant_id=connector.tenant_id, connector=connector).exclude(result="")
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if session_ids is not None:
        qs = qs.filter(pk__in=session_ids)
    if full:
        return qs
    charge_changed = Exists(
        StripeCharge.objects.filter(
            connector=connector,
            stripe_id=OuterRef("reconciliation__charge_id"),
            updated_at__gt=OuterRef("reconciliation__checked_at"),
        )
    )
    retry = Q(reconciliation__state__in=[State.PENDING, State.STRIPE_ONLY]) | Q(
        reconciliation__state=State.MISSING_IN_STRIPE, amount_minor__isnull=False
    )
    changed = Q(reconciliation__checked_at__lt=F("updated_at"))
    return qs.filter(Q(reconciliation__isnull=True) | retry | changed | charge_changed)


def match_sessions(
    *,
    connector: ConnectorInstance,
    sessions: QuerySet,
    now: datetime,
    token_lookup: TokenLookup | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Counter:
    """Judge each session and keep its record and exception items in step."""
    cutoff = judge_before(connector)
    states: Counter = Counter()
    total = sessions.count() if progress else 0
    done, last_pk = 0, 0
    while True:
        chunk = list(sessions.filter(pk__gt=last_pk).select_related("reconciliation").order_by("pk")[:BATCH])
        if not chunk:
            break
        last_pk = chunk[-1].pk
        batch = Batch.load(connector, chunk)
        verdicts = []
        for session in chunk:
            ended = session.completed_at or session.updated_at
            verdict = _judge(session, batch, token_lookup, cutoff is not None and ended <= cutoff)
            if verdict is not None:
                verdicts.append((session, verdict))
        refunds_align(connector, verdicts, batch)
        judge_refunds(connector, verdicts, cutoff)
        records, seen = [], []
        for session, verdict in verdicts:
            states[verdict.state] += 1
            record = record_for(session, verdict, batch, now)
            records.append(record)
            if verdict.state in DIFFERENCES:
                txn = batch.txns.get(verdict.charge.balance_transaction_id) if verdict.charge else None
                seen.append(
                    Difference(
                        verdict.state,
                        str(session.uuid),
                        session.pk,
                        verdict.stripe_object_id or record.charge_id,
                        verdict.detail,
                        paydesk_side(session, verdict),
                        stripe_side(verdict.charge, verdict, txn),
                    )
                )
        records_save(records)
        items_sync(
            connector=connector,
            subjects={str(r.session.uuid) for r in records},
            reasons=SESSION_REASONS,
            seen=seen,
            now=now,
        )
        done += len(chunk)
        if progress:
            progress(done, total)
    return states


def sessions_for_changes(connector: ConnectorInstance, changed: dict[str, set]) -> QuerySet:
    """The sessions a webhook's changes can concern: those whose code or reference names a
    changed charge or payment intent, or the charge of a changed refund, dispute or
    balance transaction."""
    charge_ids = set(changed.get("charge", ()))
    for model in (StripeRefund, StripeDispute):
        kind = "refund" if model is StripeRefund else "dispute"
        if changed.get(kind):
            rows = model.objects.filter(connector=connector, stripe_id__in=changed[kind])
            charge_ids |= set(rows.values_list("charge_id", flat=True))
    if changed.get("balance_transaction"):
        rows = StripeCharge.objects.filter(
            connector=connector, balance_transaction_id__in=changed["balance_transaction"]
        )
        charge_ids |= set(rows.values_list("stripe_id", flat=True))
    charges = list(StripeCharge.objects.filter(connector=connector, stripe_id__in=charge_ids - {""}))
    intents = list(
        StripePaymentIntent.objects.filter(connector=connector, stripe_id__in=changed.get("payment_intent", ()))
    )
    codes = charge_ids | {c.payment_intent_id for c in charges} | {p.stripe_id for p in intents}
    refs = {row.paydesk_ref for row in [*charges, *intents] if row.paydesk_ref}
    return (
        PaySession.objects.filter(tenant_id=connector.tenant_id, connector=connector)
        .exclude(result="")
        .filter(Q(payment_confirmation_code__in=codes - {""}) | Q(uuid__in=refs))
    )
