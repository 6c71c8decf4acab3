"""Every write to refunds: asking Stripe for one, following a pending one up, and
recording what Stripe reports (refunds made outside Paydesk included).

How one request makes exactly one Stripe refund (docs/stripe.md §9):

1. Reserve, in one short transaction under a lock on the session row: the session must
   be a succeeded charge, the amount must fit in what remains (pending and succeeded
   refunds hold theirs), and the refund is stored as pending with its Idempotency-Key.
   Two requests racing for the last euro are serialised by the lock; the second sees
   the first's reservation.
2. Send, under a lock on the refund row: Stripe is asked with an Idempotency-Key derived
   from Paydesk's and metadata naming the refund. A refund that was sent before (a retry
   after Stripe was unreachable) is first looked for in Stripe by that metadata and only
   created when Stripe has none: the guarantee does not depend on Stripe keeping keys
   (it prunes them after 24 hours; localstripe ignores them).
3. Stripe's answer is recorded in the same transaction.
"""

import dataclasses
import hashlib
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from config.errors import Conflict, ServiceError, Upstream
from connectors import stripe as edge
from connectors.base import ConnectorError
from connectors.services import connector_stripe_secret_key
from core.cardsafe import mask_card_numbers, tripwire_fired
from core.money import to_major_string
from payments.outbox import catalogue
from payments.outbox.services import event_record
from payments.refunds.models import Refund
from payments.rollup.services import rollup_refresh
from payments.sessions.models import PaySession
from tenants.services import Actor, audit_record

logger = logging.getLogger(__name__)

Status = Refund.Status
# A pending refund is asked of Stripe again after a minute, then at doubling intervals up
# to six hours: card refunds settle at once, some methods take days.
FOLLOW_UP_FIRST = timedelta(seconds=60)
FOLLOW_UP_MAX = timedelta(hours=6)
STRIPE_ACTOR = Actor.system("stripe")


@dataclass(frozen=True)
class RefundRequest:
    """A validated refund request: `amount_minor` None means what remains."""

    amount_minor: int | None
    reason: str = ""
    note: str = ""

    def fingerprint(self, session: PaySession) -> str:
        body = {"session": str(session.uuid), **self.__dict__}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class StripeRefundFacts:
    """What Stripe says of one refund (from an API answer or the reconciliation mirror)."""

    stripe_id: str
    amount: int
    currency: str
    status: str  # Stripe's spelling
    created: datetime
    observed_at: datetime
    reason: str = ""
    failure_reason: str = ""
    paydesk_refund: uuid.UUID | None = None

    @classmethod
    def from_stripe(cls, obj: dict, *, observed_at: datetime) -> "StripeRefundFacts":
        return cls(
            stripe_id=str(obj["id"]),
            amount=int(obj.get("amount") or 0),
            currency=str(obj.get("currency") or "").upper(),
            status=str(obj.get("status") or ""),
            created=datetime.fromtimestamp(int(obj.get("created") or observed_at.timestamp()), tz=UTC),
            observed_at=observed_at,
            reason=str(obj.get("reason") or ""),
            failure_reason=str(obj.get("failure_reason") or ""),
            paydesk_refund=paydesk_refund_of(obj.get("metadata") or {}),
        )


def paydesk_refund_of(metadata: dict) -> uuid.UUID | None:
    """The refund a Stripe refund's metadata names (set by Paydesk when it made it)."""
    try:
        return uuid.UUID(str(metadata.get("paydesk_refund") or ""))
    except ValueError:
        return None


def stripe_idempotency_key(refund: Refund) -> str:
    """Stripe's Idempotency-Key for a refund, derived from Paydesk's (and the tenant, as
    keys are per tenant here and per account at Stripe): every retry sends the same."""
    digest = hashlib.sha256(f"{refund.tenant.uuid}:{refund.idempotency_key}".encode()).hexdigest()
    return f"paydesk-refund-{digest[:48]}"


def _metadata(refund: Refund) -> dict[str, str]:
    return {
        "paydesk_refund": str(refund.uuid),
        "paydesk_session": str(refund.session.uuid),
        "paydesk_tenant": refund.tenant.slug,
    }


def _major(amount_minor: int, currency: str) -> str:
    return f"{to_major_string(amount_minor, currency)} {currency}"


# --- The seam: every change of a refund's life --------------------------------------------


# A refund's change → the partner event it is announced as. A canceled refund never
# reached the customer (Stripe did not make it, or canceled it): for a partner it failed;
# the event's data says `canceled` (docs/partner-webhooks.md).
_PARTNER_EVENTS = {
    "created": catalogue.REFUND_CREATED,
    "succeeded": catalogue.REFUND_SUCCEEDED,
    "failed": catalogue.REFUND_FAILED,
    "canceled": catalogue.REFUND_FAILED,
}


def _refund_changed(refund: Refund, *, event: str, actor: Actor, changes: dict | None = None) -> None:
    """Called in the transaction that makes each change of a refund's life: `created`,
    `succeeded`, `failed`, `canceled`. It writes the audit record and the partner event
    (the outbox: committed with the change or not at all), ordered with the session's
    own events so that a partner sees pay_session.succeeded before refund.created."""
    # The API's representation; imported here because the serializers build on this module.
    from payments.refunds.api.serializers import RefundSerializer

    rollup_refresh(tenant_id=refund.tenant_id, instants=[refund.refunded_at])  # the daily rollup's refunds
    event_record(
        tenant_id=refund.tenant_id,
        type=_PARTNER_EVENTS[event],
        data=RefundSerializer(refund).data,
        ordering_key=f"pay_session:{refund.session.uuid}",
    )
    audit_record(
        action=f"refund.{event}",
        actor=actor,
        tenant=refund.tenant,
        target=refund,
        changes={
            "session": str(refund.session.uuid),
            "amount": _major(refund.amount_minor, refund.currency),
            "status": refund.status,
            "stripe_refund_id": refund.stripe_refund_id,
            **(changes or {}),
        },
    )


# --- Asking for a refund ---------------------------------------------------------------------


def refundable_problem(session: PaySession) -> str:
    """Why the session cannot be refunded at all ("" when it can)."""
    if session.is_tokenization:
        return "This session saved a card without charging it (tokenize-only): there is no payment to refund."
    if session.status != PaySession.Status.SUCCEEDED:
        return f"Only a succeeded payment can be refunded; this session is {session.status}."
    if not session.payment_confirmation_code.startswith(("pi_", "ch_", "py_")):
        return (
            "Twilio reported no Stripe payment for this session "
            f"(confirmation code {session.payment_confirmation_code or 'none'})."
        )
    return ""


def held_minor(*, session_id: int) -> int:
    """What the session's pending and succeeded refunds hold, in minor units."""
    held = Refund.objects.filter(session_id=session_id, status__in=Refund.HOLDING).aggregate(s=Sum("amount_minor"))
    return held["s"] or 0


def refund_create(
    *, session: PaySession, request: RefundRequest, idempotency_key: str | None, actor: Actor
) -> tuple[Refund, bool]:
    """Refund (part of) a succeeded pay session through its connector's Stripe account.
    Returns (refund, made): `made` is False when the Idempotency-Key was used before with
    the same request and that refund is returned as it stands.

    Raises Conflict (409: not refundable, nothing left, key reused with another request),
    ServiceError (400: the amount is above what remains) and Upstream (402/502: Stripe
    refused; 503: Stripe unreachable, the refund stays pending and a retry with the same
    key finishes it)."""
    key = (idempotency_key or uuid.uuid4().hex)[:255]
    note, hits = mask_card_numbers(request.note.strip())
    if hits:
        tripwire_fired(count=hits, source="refund note")
    request = dataclasses.replace(request, note=note)
    fingerprint = request.fingerprint(session)
    try:
        refund, reserved = _reserve(session=session, request=request, key=key, fingerprint=fingerprint, actor=actor)
    except ServiceError as refusal:
        audit_record(
            action="refund.refused",
            actor=actor,
            tenant=session.tenant,
            target=session,
            changes={"code": refusal.code, "message": refusal.message[:300]},
        )
        raise
    if not reserved and (refund.stripe_refund_id or refund.status != Status.PENDING):
        if refund.status == Status.FAILED and refund.error_status:
            raise _refusal(refund)  # replaying a refusal gives the same refusal
        return refund, False
    return _send(refund, look_first=not reserved, actor=actor), True


def _reserve(
    *, session: PaySession, request: RefundRequest, key: str, fingerprint: str, actor: Actor
) -> tuple[Refund, bool]:
    try:
        with transaction.atomic():
            locked = (
                PaySession.objects.select_for_update(of=("self",))
                .select_related("tenant", "connector")
                .get(pk=session.pk)
            )
            existing = Refund.objects.filter(tenant_id=locked.tenant_id, idempotency_key=key).first()
            if existing is not None:
                return _same_request(existing, fingerprint), False
            problem = refundable_problem(locked)
            if problem:
                raise Conflict(problem, code="not_refundable", fields={"session": [str(locked.uuid)]})
            remaining = locked.amount_minor - held_minor(session_id=locked.pk)
            amount = remaining if request.amount_minor is None else request.amount_minor
            if request.amount_minor is None and remaining <= 0:
                raise Conflict(
                    f"Nothing is left to refund: all {_major(locked.amount_minor, locked.currency)} "
                    "is refunded or being refunded.",
                    code="fully_refunded",
                    fields={"session": [str(locked.uuid)]},
                )
            if amount <= 0:
                raise ServiceError("The amount must be positive.", code="invalid", fields={"amount": ["Positive."]})
            if amount > remaining:
                message = (
                    f"{_major(amount, locked.currency)} is more than what remains to refund "
                    f"({_major(max(remaining, 0), locked.currency)} of {_major(locked.amount_minor, locked.currency)})."
                )
                raise ServiceError(message, code="amount_too_large", fields={"amount": [message]})
            refund = Refund.objects.create(
                tenant=locked.tenant,
                session=locked,
                connector=locked.connector,
                amount_minor=amount,
                currency=locked.currency,
                reason=request.reason,
                note=request.note,
                idempotency_key=key,
                request_fingerprint=fingerprint,
                requested_by_api_key=actor.api_key,
                requested_by_user=actor.user if getattr(actor.user, "pk", None) else None,
                requested_by=actor.label[:200],
            )
            _refund_changed(refund, event="created", actor=actor, changes={"reason": refund.reason})
            return refund, True
    except IntegrityError:  # the same key, for another session, won a race
        existing = Refund.objects.get(tenant_id=session.tenant_id, idempotency_key=key)
        return _same_request(existing, fingerprint), False


def _same_request(refund: Refund, fingerprint: str) -> Refund:
    if refund.request_fingerprint != fingerprint:
        raise Conflict(
            "This Idempotency-Key was already used with a different refund request.",
            code="idempotency_key_reused",
            fields={"refund": [str(refund.uuid)]},
        )
    return refund


def _refusal(refund: Refund) -> Upstream:
    return Upstream(
        refund.failure_reason,
        code="stripe_card_error" if refund.error_status == 402 else "stripe_refused",
        status=refund.error_status or 502,
        fields={"refund": [str(refund.uuid)]},
    )


def _client(refund: Refund):
    return edge.client_for_key(connector_stripe_secret_key(connector=refund.connector))


def _find_in_stripe(client, refund: Refund) -> dict | None:
    """The Stripe refund made for this one (by the metadata Paydesk sent), if any."""
    for obj in edge.refunds_of_payment(client, refund.session.payment_confirmation_code):
        if paydesk_refund_of(obj.get("metadata") or {}) == refund.uuid:
            return obj
    return None


def _send(refund: Refund, *, look_first: bool, actor: Actor) -> Refund:
    error: ConnectorError | None = None
    with transaction.atomic():
        row = (
            Refund.objects.select_for_update(of=("self",))
            .select_related("session", "connector", "tenant")
            .get(pk=refund.pk)
        )
        if row.stripe_refund_id or row.status != Status.PENDING:
            return row  # settled meanwhile: by a concurrent retry, the follow-up or Stripe's report
        now = timezone.now()
        try:
            client = _client(row)
            found = _find_in_stripe(client, row) if look_first else None
            obj = found or edge.refund_create(
                client,
                payment=row.session.payment_confirmation_code,
                amount=row.amount_minor,
                reason=row.reason,
                metadata=_metadata(row),
                idempotency_key=stripe_idempotency_key(row),
            )
        except ConnectorError as exc:
            error = exc
        if error is None:
            _apply(row, StripeRefundFacts.from_stripe(obj, observed_at=now), actor=actor)
        elif error.permanent:
            row.status, row.failure_reason = Status.FAILED, error.message[:500]
            row.error_status = 402 if error.status == 402 else 502
            row.completed_at, row.next_check_at = now, None
            row.save()
            _refund_changed(row, event="failed", actor=actor, changes={"failure_reason": row.failure_reason})
        else:
            # Unknown whether Stripe made it: the refund stays pending, holding its amount,
            # until a retry with the same key (or the follow-up) finds out.
            row.failure_reason = f"{error.message[:400]} (not known yet whether Stripe made it)"
            row.next_check_at = now + timedelta(seconds=settings.PAYDESK_REFUND_IN_DOUBT_SECONDS)
            row.save()
            audit_record(
                action="refund.stripe_unreachable",
                actor=actor,
                tenant=row.tenant,
                target=row,
                changes={"session": str(row.session.uuid), "error": error.message[:300]},
            )
    if error is not None and error.permanent:
        raise _refusal(row)
    if error is not None:
        raise Upstream(
            f"{error.message}. The refund is recorded as pending and nothing else was done: retry with the same "
            f"Idempotency-Key ({row.idempotency_key}) and it is made exactly once.",
            code="stripe_unavailable",
            status=503,
            fields={"refund": [str(row.uuid)]},
        )
    return row


# --- What Stripe says ------------------------------------------------------------------------

_RANK = {Status.PENDING: 1, Status.SUCCEEDED: 2, Status.FAILED: 2, Status.CANCELED: 2}


def _status_of(stripe_status: str) -> str:
    # requires_action: the money has not moved yet, like pending.
    return stripe_status if stripe_status in Status.values else Status.PENDING


def _apply(row: Refund, fact: StripeRefundFacts, *, actor: Actor) -> bool:
    """Take Stripe's state of the refund onto the row (locked by the caller). Stripe's
    word wins over Paydesk's own guess (a refund in doubt); a final status is never
    taken back to pending; between two final ones the newer observation wins (Stripe may
    report a succeeded refund as failed later). Returns whether anything changed."""
    if row.stripe_refund_id and row.stripe_refund_id != fact.stripe_id:
        return False
    new = _status_of(fact.status)
    old = row.status
    newer = row.stripe_observed_at is None or fact.observed_at >= row.stripe_observed_at
    adopt = (
        not row.stripe_refund_id or _RANK[new] > _RANK[old] or (new != old and _RANK[new] == _RANK[old] == 2 and newer)
    )
    if not adopt:
        if newer and row.stripe_observed_at != fact.observed_at:
            Refund.objects.filter(pk=row.pk).update(stripe_observed_at=fact.observed_at)
        return False
    values = {
        "stripe_refund_id": fact.stripe_id,
        "status": new,
        "failure_reason": fact.failure_reason[:500] if new in (Status.FAILED, Status.CANCELED) else "",
        "refunded_at": fact.created,
        "stripe_observed_at": max(fact.observed_at, row.stripe_observed_at or fact.observed_at),
        "completed_at": (row.completed_at or timezone.now()) if new in Refund.FINAL else None,
        "next_check_at": None if new in Refund.FINAL else (row.next_check_at or timezone.now() + FOLLOW_UP_FIRST),
    }
    if new != old and new == Status.PENDING:
        values["next_check_at"] = timezone.now() + FOLLOW_UP_FIRST
    changed = {k: v for k, v in values.items() if getattr(row, k) != v}
    if not changed:
        return False
    for name, value in changed.items():
        setattr(row, name, value)
    row.save()
    if row.status != old and row.status != Status.PENDING:
        extra = {"failure_reason": row.failure_reason} if row.failure_reason else {}
        _refund_changed(row, event=row.status, actor=actor, changes=extra)
    return True


def refunds_record_from_stripe(*, session: PaySession, facts: Iterable[StripeRefundFacts]) -> int:
    """Bring a session's refunds in line with Stripe's (the reconciliation calls this with
    its mirror's refunds of the session's charge). A refund Paydesk made takes Stripe's
    state; one Paydesk never saw (made in Stripe's dashboard) is recorded, marked as made
    outside Paydesk. Returns how many refunds changed or were recorded."""
    done = 0
    for fact in facts:
        with transaction.atomic():
            row = (
                Refund.objects.select_for_update(of=("self",))
                .select_related("session", "tenant")
                .filter(connector_id=session.connector_id, stripe_refund_id=fact.stripe_id)
                .first()
            )
            if row is None and fact.paydesk_refund is not None:
                row = (
                    Refund.objects.select_for_update(of=("self",))
                    .select_related("session", "tenant")
                    .filter(session_id=session.pk, uuid=fact.paydesk_refund)
                    .first()
                )
            if row is not None:
                done += _apply(row, fact, actor=STRIPE_ACTOR)
                continue
            try:
                with transaction.atomic():
                    _record_outside(session, fact)
                done += 1
            except IntegrityError:  # recorded by a concurrent run
                pass
    return done


def _record_outside(session: PaySession, fact: StripeRefundFacts) -> Refund:
    status = _status_of(fact.status)
    refund = Refund.objects.create(
        tenant_id=session.tenant_id,
        session=session,
        connector_id=session.connector_id,
        amount_minor=max(fact.amount, 1),
        currency=fact.currency or session.currency,
        reason=fact.reason if fact.reason in Refund.Reason.values else "",
        origin=Refund.Origin.STRIPE,
        status=status,
        failure_reason=fact.failure_reason[:500] if status in (Status.FAILED, Status.CANCELED) else "",
        stripe_refund_id=fact.stripe_id,
        refunded_at=fact.created,
        stripe_observed_at=fact.observed_at,
        requested_by="made outside Paydesk",
        completed_at=timezone.now() if status in Refund.FINAL else None,
        next_check_at=None if status in Refund.FINAL else timezone.now() + FOLLOW_UP_FIRST,
    )
    _refund_changed(refund, event="created", actor=STRIPE_ACTOR, changes={"origin": refund.origin})
    if status != Status.PENDING:
        _refund_changed(refund, event=status, actor=STRIPE_ACTOR)
    return refund


# --- Following pending refunds up --------------------------------------------------------------


def refunds_due_for_follow_up(*, now: datetime | None = None, limit: int = 500) -> list[tuple[int, int]]:
    """(tenant_id, refund_id) of the pending refunds due for another look at Stripe."""
    now = now or timezone.now()
    rows = Refund.objects.filter(status=Status.PENDING, next_check_at__lte=now).order_by("next_check_at")
    return list(rows.values_list("tenant_id", "pk")[:limit])


def refund_follow_up(*, tenant_id: int, refund_id: int, now: datetime | None = None) -> str:
    """Ask Stripe how a pending refund stands and record it. One in doubt (Stripe did not
    answer when it was made) is looked for by its metadata once nobody retried it for
    PAYDESK_REFUND_IN_DOUBT_SECONDS; if Stripe never got it, it is canceled, which frees
    its amount (nothing was refunded). A retry with the same key still returns it."""
    now = now or timezone.now()
    in_doubt_for = timedelta(seconds=settings.PAYDESK_REFUND_IN_DOUBT_SECONDS)
    with transaction.atomic():
        row = (
            Refund.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("session", "connector", "tenant")
            .filter(pk=refund_id, tenant_id=tenant_id, status=Status.PENDING)
            .first()
        )
        if row is None:
            return "not pending, or being sent right now"
        if not row.stripe_refund_id and now - row.created_at < in_doubt_for:
            row.next_check_at = row.created_at + in_doubt_for
            row.save(update_fields=["next_check_at", "updated_at"])
            return "in doubt: waiting for a retry with the same key"
        try:
            client = _client(row)
            if row.stripe_refund_id:
                obj = edge.refund_retrieve(client, row.stripe_refund_id)
            else:
                obj = _find_in_stripe(client, row)
        except ConnectorError as exc:
            logger.warning("follow-up of refund %s: %s", row.pk, exc.message)
            _next_check(row, now)
            return "stripe unavailable: later"
        if obj is not None:
            _apply(row, StripeRefundFacts.from_stripe(obj, observed_at=now), actor=STRIPE_ACTOR)
        elif not row.stripe_refund_id:
            row.status, row.completed_at, row.next_check_at = Status.CANCELED, now, None
            row.failure_reason = (
                "Stripe never received it (Stripe could not be reached when it was asked, and no retry with the "
                "same Idempotency-Key came): nothing was refunded."
            )
            row.save()
            _refund_changed(row, event="canceled", actor=STRIPE_ACTOR, changes={"failure_reason": row.failure_reason})
            return row.status
        if row.status == Status.PENDING:
            _next_check(row, now)
        return row.status


def _next_check(row: Refund, now: datetime) -> None:
    row.checks += 1
    row.next_check_at = now + min(FOLLOW_UP_FIRST * 2 ** min(row.checks, 20), FOLLOW_UP_MAX)
    row.save(update_fields=["checks", "next_check_at", "updated_at"])


def refunds_follow_up_soon(*, tenant_id: int, session_ids: list[int]) -> int:
    """Ask Stripe now about these sessions' pending refunds (Stripe's charge says more was
    refunded than Paydesk knows: a `charge.refunded` event carries no refund object)."""
    from payments.refunds.tasks import follow_up_refund

    ids = list(
        Refund.objects.filter(tenant_id=tenant_id, session_id__in=session_ids, status=Status.PENDING)
        .exclude(stripe_refund_id="")
        .values_list("pk", flat=True)
    )
    if ids:
        Refund.objects.filter(pk__in=ids).update(next_check_at=timezone.now())
        transaction.on_commit(lambda: [follow_up_refund.delay(tenant_id, pk) for pk in ids])
    return len(ids)
