"""Every write to pay sessions: start, capture, complete, cancel, callbacks, expiry.

State moves only here. Requests to Twilio are made outside database transactions (no
lock is held across the network); state changes are conditional updates, so a racing
request or a redelivered task finds the work already done and changes nothing.
"""

import functools
import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Min
from django.urls import reverse
from django.utils import timezone

from config.errors import Conflict, ServiceError, Upstream
from connectors import twilio as twilio_edge
from connectors.base import ConnectorError
from connectors.models import ConnectorInstance
from core.money import to_major_string
from payments.outbox import catalogue
from payments.sessions import callbacks, extensions, outbox, rollup
from payments.sessions.models import ACH_FIELDS, PayEvent, PaySession
from tenants.models import Tenant
from tenants.services import Actor, audit_record, tenant_twilio_auth_token

logger = logging.getLogger(__name__)

Status = PaySession.Status
# The relations the pay-session representation reads (PaySessionSerializer), loaded with
# the session where many are written at once. "reconciliation" is the row the
# reconciliation app keeps per session (its API field, payments.sessions.extensions).
_REPRESENTED = ("connector", "started_by_api_key", "started_by_user", "reconciliation")
# Statuses a capture request may be made in, and the ones a callback may move between.
_OPEN = [Status.CREATED, Status.CAPTURING, Status.READY]


@dataclass(frozen=True)
class SessionRequest:
    """A validated request to start a session (the API serializer builds it)."""

    call_sid: str
    amount_minor: int | None
    currency: str
    payment_method: str = PaySession.PaymentMethod.CREDIT_CARD
    token_type: str = ""
    postal_code: bool = True
    security_code: bool = True
    min_postal_code_length: int | None = None
    valid_card_types: str = ""
    timeout: int | None = None
    bank_account_type: str = ""
    confirmation: bool = False
    require_matching_inputs: tuple[str, ...] = ()
    description: str = ""
    parameter: tuple[tuple[str, object], ...] = ()
    channel: str = PaySession.Channel.AGENT

    def fingerprint(self, connector: ConnectorInstance) -> str:
        body = {**self.__dict__, "connector": connector.unique_name}
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def status_callback_url(session: PaySession) -> str:
    path = reverse("twilio-pay-status", kwargs={"token": session.callback_token})
    return f"{settings.PAYDESK_PUBLIC_BASE_URL}{path}"


def paydesk_reference(session: PaySession) -> str:
    """Put in the Description Twilio passes to the connector, so Stripe objects trace back."""
    return f"Paydesk {session.uuid}"


def _twilio_params(session: PaySession) -> dict:
    params: dict = {
        "payment_connector": session.connector.unique_name,
        "payment_method": session.payment_method,
        "currency": session.currency,
        "input": "dtmf",
        "description": f"{session.description} · {paydesk_reference(session)}".lstrip(" ·"),
    }
    if session.amount_minor is not None:
        params["charge_amount"] = to_major_string(session.amount_minor, session.currency)
    else:
        params["token_type"] = session.token_type or PaySession.TokenType.REUSABLE
    if session.payment_method == PaySession.PaymentMethod.CREDIT_CARD:
        params["postal_code"] = session.postal_code
        params["security_code"] = session.security_code
        if session.min_postal_code_length:
            params["min_postal_code_length"] = session.min_postal_code_length
        if session.valid_card_types:
            params["valid_card_types"] = session.valid_card_types
        if session.require_matching_inputs:
            params["require_matching_inputs"] = ",".join(session.require_matching_inputs)
    else:
        params["bank_account_type"] = session.bank_account_type or PaySession.BankAccountType.CONSUMER_CHECKING
    if session.timeout:
        params["timeout"] = session.timeout
    if session.confirmation:
        params["confirmation"] = "true"  # typed str in the SDK: a Python True would be sent as "True"
    if session.parameter:
        params["parameter"] = session.parameter
    return params


def _credentials(session: PaySession) -> dict:
    tenant = session.tenant
    return {"account_sid": tenant.twilio_account_sid, "auth_token": tenant_twilio_auth_token(tenant=tenant)}


def _record_outbound(
    session: PaySession, *, kind: str, idempotency_key: str, payload: dict, result=None, error=None
) -> PayEvent:
    return PayEvent.objects.create(
        tenant_id=session.tenant_id,
        session=session,
        direction=PayEvent.Direction.OUTBOUND,
        kind=kind,
        dedupe_key=uuid.uuid4().hex,  # every attempt is its own record
        idempotency_key=idempotency_key,
        payload={k: v for k, v in payload.items() if k != "auth_token"},
        response={"sid": result.sid} if result else {"error": error.message, "permanent": error.permanent},
        http_status=result.status_code if result else error.status,
        error_code=str(error.code or "") if error else "",
    )


def _raise_for(error: ConnectorError, session: PaySession):
    fields = {"session": [str(session.uuid)]}
    code = f"twilio_{error.code}" if error.code else "twilio_error"
    if not error.permanent:
        raise Upstream(
            f"{error.message}. Nothing was lost: the request can be retried safely.",
            code="provider_unavailable",
            status=503,
            fields=fields,
        )
    if twilio_edge.is_conflict(error):
        raise Conflict(error.message, code=code, fields=fields)
    raise Upstream(error.message, code=code, status=400 if error.status == 400 else 502, fields=fields)


# --- Start ----------------------------------------------------------------------------


def pay_session_start(
    *,
    tenant: Tenant,
    connector: ConnectorInstance,
    request: SessionRequest,
    idempotency_key: str | None,
    actor: Actor,
) -> tuple[PaySession, bool]:
    """Start a session on a live call. Returns (session, created).

    The same Idempotency-Key with the same request returns the same session (and retries
    Twilio if the first attempt failed transiently); with another request it is refused.
    """
    if connector.tenant_id != tenant.pk:
        raise ServiceError("Unknown connector.", code="invalid", fields={"connector": ["Unknown connector."]})
    fingerprint = request.fingerprint(connector)
    key = idempotency_key or uuid.uuid4().hex
    session = PaySession.objects.filter(tenant=tenant, idempotency_key=key).first()
    created = False
    if session is None:
        values = {k: v for k, v in request.__dict__.items()}
        values["require_matching_inputs"] = list(request.require_matching_inputs)
        values["parameter"] = dict(request.parameter)
        session = PaySession(
            tenant=tenant,
            connector=connector,
            idempotency_key=key,
            request_fingerprint=fingerprint,
            started_by_api_key=actor.api_key,
            started_by_user=actor.user if getattr(actor.user, "pk", None) else None,
            **values,
        )
        session.required_fields = callbacks.initial_required(session)
        try:
            with transaction.atomic():
                session.save()
                outbox.record(session, catalogue.PAY_SESSION_CREATED)
                rollup.count_created(session)
            created = True
        except IntegrityError:  # a concurrent retry with the same key won the race
            session = PaySession.objects.get(tenant=tenant, idempotency_key=key)
    if session.request_fingerprint != fingerprint:
        raise Conflict(
            "This Idempotency-Key was already used with a different request.",
            code="idempotency_key_reused",
            fields={"session": [str(session.uuid)]},
        )
    if session.payment_sid or session.status != Status.CREATED:
        if not created and session.status == Status.FAILED and session.twilio_error_code:
            # Replaying a request Twilio refused gives the same refusal.
            _raise_for(
                ConnectorError(session.twilio_error_message, permanent=True, code=int(session.twilio_error_code)),
                session,
            )
        return session, created
    _create_at_twilio(session)
    session.refresh_from_db()
    return session, created


def _create_at_twilio(session: PaySession) -> None:
    twilio_key = f"{session.uuid}:create"
    params = _twilio_params(session)
    callback = status_callback_url(session)
    try:
        result = twilio_edge.payments_create(
            **_credentials(session),
            call_sid=session.call_sid,
            idempotency_key=twilio_key,
            status_callback=callback,
            params=params,
        )
    except ConnectorError as error:
        with transaction.atomic():
            _record_outbound(session, kind="create", idempotency_key=twilio_key, payload=params, error=error)
            updates = {"twilio_error_code": str(error.code or ""), "twilio_error_message": error.message}
            if error.permanent:
                updates.update(status=Status.FAILED, completed_at=timezone.now())
            if PaySession.objects.filter(pk=session.pk, status=Status.CREATED, payment_sid="").update(**updates):
                session.refresh_from_db()
                outbox.record(session, outbox.event_type_for(old_status=Status.CREATED, new_status=session.status))
                if error.permanent:
                    rollup.count_ended([session])  # the daily rollup, in the same transaction
        session.refresh_from_db()
        _raise_for(error, session)
    with transaction.atomic():
        _record_outbound(session, kind="create", idempotency_key=twilio_key, payload=params, result=result)
        if PaySession.objects.filter(pk=session.pk, payment_sid="").update(
            payment_sid=result.sid, twilio_error_code="", twilio_error_message="", last_activity_at=timezone.now()
        ):
            session.refresh_from_db()
            outbox.record(session, catalogue.PAY_SESSION_UPDATED)


# --- Capture, complete, cancel --------------------------------------------------------


def _ensure_agent_driven(session: PaySession, action: str) -> None:
    # An IVR session is a TwiML <Pay> the caller drives; Twilio has no Payments resource
    # for it, and ending it here would not stop the call's <Pay>.
    if session.channel == PaySession.Channel.IVR:
        raise Conflict(
            f"This is an IVR session, driven by the caller's keypad; it cannot {action} here.",
            code="ivr_session",
            fields={"channel": [session.channel]},
        )


def _ensure_open(session: PaySession, action: str) -> None:
    _ensure_agent_driven(session, action)
    if session.is_terminal:
        raise Conflict(
            f"The session has ended ({session.status}); it cannot {action}.",
            code="session_ended",
            fields={"status": [session.status]},
        )
    if session.status == Status.COMPLETING:
        raise Conflict(
            f"The session is completing; it cannot {action}.",
            code="session_completing",
            fields={"status": [session.status]},
        )
    if not session.payment_sid:
        raise Conflict("Twilio has not started this session yet; retry the create request.", code="session_not_started")


def _replayed(session: PaySession, twilio_key: str) -> bool:
    """The same partner request was already accepted by Twilio: do not send it again."""
    return session.events.filter(
        direction=PayEvent.Direction.OUTBOUND, idempotency_key=twilio_key, http_status=202
    ).exists()


def _update_at_twilio(session: PaySession, *, kind: str, twilio_key: str, capture=None, status=None) -> None:
    payload = {"capture": capture} if capture else {"status": status}
    try:
        result = twilio_edge.payments_update(
            **_credentials(session),
            call_sid=session.call_sid,
            payment_sid=session.payment_sid,
            idempotency_key=twilio_key,
            status_callback=status_callback_url(session),
            capture=capture,
            status=status,
        )
    except ConnectorError as error:
        with transaction.atomic():
            _record_outbound(session, kind=kind, idempotency_key=twilio_key, payload=payload, error=error)
            PaySession.objects.filter(pk=session.pk).update(
                twilio_error_code=str(error.code or ""), twilio_error_message=error.message
            )
            session.refresh_from_db()
            outbox.record(session, catalogue.PAY_SESSION_UPDATED)
        _raise_for(error, session)
    _record_outbound(session, kind=kind, idempotency_key=twilio_key, payload=payload, result=result)


def allowed_capture_fields(session: PaySession) -> list[str]:
    if session.payment_method == PaySession.PaymentMethod.ACH_DEBIT:
        return list(ACH_FIELDS)
    fields = callbacks.initial_required(session)
    return fields + [f"{f}-matcher" for f in session.require_matching_inputs if f in fields]


def pay_session_capture(*, session: PaySession, field: str, idempotency_key: str | None, actor: Actor) -> PaySession:
    """Ask the caller for one field (in any order; a field may be asked again)."""
    allowed = allowed_capture_fields(session)
    if field not in allowed:
        raise ServiceError(
            f"{field!r} cannot be captured in this session; choose one of {', '.join(allowed)}.",
            fields={"capture": [f"Choose one of {', '.join(allowed)}."]},
        )
    _ensure_open(session, "capture")
    twilio_key = f"{session.uuid}:capture:{idempotency_key or uuid.uuid4().hex}"
    if not _replayed(session, twilio_key):
        _update_at_twilio(session, kind="capture", twilio_key=twilio_key, capture=field)
        with transaction.atomic():
            if PaySession.objects.filter(pk=session.pk, status__in=_OPEN).update(
                status=Status.CAPTURING,
                capturing_field=field,
                twilio_error_code="",
                twilio_error_message="",
                last_activity_at=timezone.now(),
            ):
                session.refresh_from_db()
                outbox.record(session, catalogue.PAY_SESSION_UPDATED)
    session.refresh_from_db()
    return session


def pay_session_complete(*, session: PaySession, idempotency_key: str | None, actor: Actor) -> PaySession:
    """Send the captured data to the connector. Refused while fields are missing."""
    _ensure_open(session, "complete")
    if session.required_fields:
        raise Conflict(
            f"Still required: {', '.join(session.required_fields)}.",
            code="fields_missing",
            fields={"required": list(session.required_fields)},
        )
    twilio_key = f"{session.uuid}:complete:{idempotency_key or 'once'}"
    if not _replayed(session, twilio_key):
        _update_at_twilio(session, kind="complete", twilio_key=twilio_key, status="complete")
        with transaction.atomic():
            if PaySession.objects.filter(pk=session.pk, status__in=_OPEN).update(
                status=Status.COMPLETING, capturing_field="", last_activity_at=timezone.now()
            ):
                session.refresh_from_db()
                outbox.record(session, catalogue.PAY_SESSION_UPDATED)
    session.refresh_from_db()
    return session


def pay_session_cancel(*, session: PaySession, actor: Actor) -> PaySession:
    """Cancel at Twilio (when it was started there) and end the session."""
    _ensure_agent_driven(session, "be cancelled")
    if session.is_terminal:
        raise Conflict(
            f"The session has ended ({session.status}).", code="session_ended", fields={"status": [session.status]}
        )
    if session.payment_sid:
        twilio_key = f"{session.uuid}:cancel"
        if not _replayed(session, twilio_key):
            _update_at_twilio(session, kind="cancel", twilio_key=twilio_key, status="cancel")
    now = timezone.now()
    with transaction.atomic():
        cancelled = (
            PaySession.objects.filter(pk=session.pk)
            .exclude(status__in=PaySession.TERMINAL)
            .update(status=Status.CANCELLED, capturing_field="", completed_at=now, last_activity_at=now)
        )
        if cancelled:
            session.status = Status.CANCELLED
            rollup.count_ended([session])
            audit_record(action="pay_session.cancelled", actor=actor, tenant=session.tenant, target=session)
            session.refresh_from_db()
            outbox.record(session, catalogue.PAY_SESSION_CANCELLED)
    session.refresh_from_db()
    return session


# --- Callbacks ------------------------------------------------------------------------


def pay_callback_record(
    *, tenant_id: int, session_id: int, raw_params: dict[str, str], kind: str = "status-callback"
) -> bool:
    """Store one verified callback (masked, unique by content) and wake the applier.

    Returns False for a duplicate, which changes nothing.
    """
    params = callbacks.normalize(raw_params, source=f"pay callback for session {session_id}")
    event = PayEvent(
        tenant_id=tenant_id,
        session_id=session_id,
        direction=PayEvent.Direction.INBOUND,
        kind=kind,
        dedupe_key=callbacks.content_key(params),
        payload=params,
        occurred_at=callbacks.occurred_at(params),
    )
    if not _insert_unless_duplicate(event):
        return False
    transaction.on_commit(_wake_applier)
    return True


def _insert_unless_duplicate(event: PayEvent) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING, one statement: a duplicate is told by the row
    count, not by an IntegrityError that needs a savepoint around the insert (three
    round trips and an ORM compile per callback, measured in bench/callbacks.py). Values
    are prepared by the model's own fields, so the row is the one save() would write."""
    fields, sql = _event_insert()
    values = [f.get_db_prep_save(f.pre_save(event, add=True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return cursor.rowcount == 1


@functools.cache
def _event_insert() -> tuple[list, str]:
    """PayEvent's columns and its INSERT statement, built once."""
    meta = PayEvent._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    qn = connection.ops.quote_name
    # Identifiers from the model's metadata; every value is a parameter.
    columns, placeholders = ", ".join(qn(f.column) for f in fields), ", ".join(["%s"] * len(fields))
    return fields, f"INSERT INTO {qn(meta.db_table)} ({columns}) VALUES ({placeholders}) ON CONFLICT DO NOTHING"  # noqa: S608


# The applier: one Celery task folds every stored, unapplied callback into its session,
# for all sessions at once. A callback wakes it only when the wake-up flag (in the cache)
# is free. A run holds the flag while it works, so callbacks stored meanwhile wake no
# second run: before letting go it looks once more and carries on if anything came in.
# Under load one run keeps applying the callbacks of many sessions a batch at a time; when
# quiet, each callback gets a run of its own at once. Beat also runs it once a minute, as
# a backstop for a lost task or a cache outage.
APPLY_FLAG = "paydesk:pay-apply-queued"
APPLY_FLAG_SECONDS = 60
APPLY_BATCH_SESSIONS = 100
APPLY_MAX_BATCHES = 20  # then the run hands over to a fresh one (time limits, fairness)
# When callbacks keep coming while a run works, it waits this long before the next batch,
# so that each batch carries many: per callback, a batch of one costs several times what
# a batch of fifty does. A quiet system never waits (bench/README.md has the figures).
APPLY_LINGER_SECONDS = 0.05


def _take_apply_flag() -> bool:
    """True when this caller took the wake-up flag, or cannot tell (cache down: acting
    as if it were free costs at most a run that finds nothing to do)."""
    try:
        return cache.add(APPLY_FLAG, 1, timeout=APPLY_FLAG_SECONDS)
    except Exception:
        logger.warning("cache unavailable; treating the pay event applier's flag as free")
        return True


def _wake_applier() -> None:
    from payments.sessions.tasks import apply_pending_pay_events

    if _take_apply_flag():
        apply_pending_pay_events.delay()


def _applier_may_stop() -> bool:
    """Let go of the wake-up flag; False when callbacks came in meanwhile and this run
    took the flag back to apply them itself."""
    try:
        cache.delete(APPLY_FLAG)
    except Exception:
        logger.warning("cache unavailable while applying pay events")
    # After the delete: a callback stored before it did not wake anyone, so it is ours.
    if not PayEvent.objects.filter(direction=PayEvent.Direction.INBOUND, applied_at__isnull=True).exists():
        return True
    return not _take_apply_flag()  # not taken: a callback took it, and a new run is on its way


@dataclass(frozen=True)
class ApplyRun:
    applied: int  # events this run folded into their sessions
    more_waiting: bool  # the run stopped at APPLY_MAX_BATCHES still holding the flag


def pay_events_apply_pending(*, batch_sessions: int | None = None) -> ApplyRun:
    """Fold every stored callback not yet applied into its session. Idempotent, and safe
    to run concurrently (sessions are locked in id order). When it stops with callbacks
    still waiting it keeps the wake-up flag and says so: the caller (the task) decides
    whether a fresh run carries on."""
    batch_sessions = batch_sessions or APPLY_BATCH_SESSIONS
    applied = 0
    for _ in range(APPLY_MAX_BATCHES):
        sessions, events = _apply_batch(limit=batch_sessions)
        applied += events
        if sessions < batch_sessions:
            if _applier_may_stop():
                return ApplyRun(applied=applied, more_waiting=False)
            time.sleep(APPLY_LINGER_SECONDS)  # callbacks came in while this batch ran: more will
    return ApplyRun(applied=applied, more_waiting=True)


def _apply_batch(*, limit: int) -> tuple[int, int]:
    """One transaction: lock the sessions with the oldest unapplied callbacks, fold each
    one's callbacks, save. Returns (sessions locked, events applied)."""
    inbound = PayEvent.Direction.INBOUND
    with transaction.atomic():
        session_ids = list(
            PayEvent.objects.filter(direction=inbound, applied_at__isnull=True)
            .values("session_id")
            .annotate(first=Min("received_at"))
            .order_by("first")
            .values_list("session_id", flat=True)[:limit]
        )
        if not session_ids:
            return 0, 0
        # FOR NO KEY UPDATE, in id order: concurrent callback INSERTs (their foreign key
        # check) are not blocked, and two runs never wait for each other in a cycle.
        sessions = list(
            PaySession.objects.select_for_update(no_key=True, of=("self",))
            # What the event's representation (the API's) reads, joined: not locked.
            .select_related(*_REPRESENTED)
            .filter(pk__in=session_ids)
            .order_by("pk")
        )
        events: dict[int, list[PayEvent]] = {pk: [] for pk in session_ids}
        for event in (
            PayEvent.objects.filter(session_id__in=session_ids, direction=inbound)
            .order_by()
            .only("id", "session_id", "payload", "occurred_at", "received_at", "dedupe_key", "applied_at")
        ):
            events[event.session_id].append(event)
        now = timezone.now()
        applied, late, changed, results, ended = [], [], [], [], []
        for session in sessions:
            pending = [e for e in events[session.pk] if e.applied_at is None]
            if not pending:
                continue  # a concurrent run got here first
            was_terminal, old_status = session.is_terminal, session.status
            updates = _folded_updates(session, events[session.pk], pending, now=now)
            seen = any(getattr(session, n) != v for n, v in updates.items() if n not in outbox.UNSEEN_FIELDS)
            for name, value in updates.items():
                setattr(session, name, value)
            # updated_at moves only with what partners see, as their events do.
            session.save(update_fields=[*updates, "updated_at"] if seen else list(updates))
            (late if was_terminal else applied).extend(e.pk for e in pending)
            if seen:  # what partners see changed: they are told, in this transaction
                changed.append((session, outbox.event_type_for(old_status=old_status, new_status=session.status)))
            if not was_terminal and session.is_terminal:
                results.append(
                    extensions.SessionResult(session.tenant_id, session.connector_id, session.pk, session.status)
                )
                ended.append(session)
        outbox.record_many(changed)
        rollup.count_ended(ended)  # the daily rollup, in the same transaction
        if applied:
            PayEvent.objects.filter(pk__in=applied).update(applied_at=now)
        if late:
            PayEvent.objects.filter(pk__in=late).update(applied_at=now, late=True)
        if results:
            transaction.on_commit(lambda: extensions.results_recorded(results))
    return len(session_ids), len(applied) + len(late)


def _folded_updates(session: PaySession, inbound: list[PayEvent], pending: list[PayEvent], *, now) -> dict:
    """The session's new field values once all its callbacks are folded."""
    state = callbacks.fold(session, inbound)
    # Masked values and progress always complete the picture, whatever the order they
    # arrive in; status and result move only while the session is open.
    updates: dict = {"last_activity_at": now, **state.masked}
    if state.captured_any:
        updates.update(
            required_fields=state.required_fields,
            last_error_type=state.last_error_type,
            capturing_field=state.capturing_field,
        )
        if session.status in _OPEN:
            updates["status"] = Status.READY if not state.required_fields else Status.CAPTURING
    if session.is_terminal:
        updates["capturing_field"] = ""
        if any(e.payload.get("Result") for e in pending):
            logger.warning("result callback for ended session %s kept, not applied", session.uuid)
    elif state.result is not None:
        result = state.result
        updates.update(
            status=callbacks.RESULT_STATUS.get(result["Result"], Status.FAILED),
            result=result["Result"][:40],
            payment_confirmation_code=result.get("PaymentConfirmationCode", "")[:255],
            payment_token=result.get("PaymentToken", "")[:255],
            profile_id=result.get("ProfileId", "")[:255],
            pay_error_code=result.get("PayErrorCode", "")[:16],
            payment_error=result.get("PaymentError", ""),
            connector_error=result.get("ConnectorError", ""),
            capturing_field="",
            completed_at=now,
        )
    return updates


# --- Expiry ---------------------------------------------------------------------------


EXPIRE_BATCH = 500


def pay_sessions_expire(*, now=None, batch: int = EXPIRE_BATCH) -> int:
    """End sessions with no news for PAYDESK_PAY_SESSION_EXPIRY_SECONDS, a batch per
    transaction, each with its pay_session.expired event. Sessions another transaction
    holds (the applier folding a late callback) are left for the next run."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.PAYDESK_PAY_SESSION_EXPIRY_SECONDS)
    expired = 0
    while True:
        with transaction.atomic():
            sessions = list(
                PaySession.objects.select_for_update(no_key=True, of=("self",), skip_locked=True)
                .select_related(*_REPRESENTED)
                .exclude(status__in=PaySession.TERMINAL)
                .filter(last_activity_at__lt=cutoff)
                .order_by("pk")[:batch]
            )
            if not sessions:
                return expired
            PaySession.objects.filter(pk__in=[s.pk for s in sessions]).update(
                status=Status.EXPIRED, capturing_field="", completed_at=now, updated_at=now
            )
            for session in sessions:
                session.status, session.capturing_field, session.completed_at = Status.EXPIRED, "", now
                session.updated_at = now
            outbox.record_many([(session, catalogue.PAY_SESSION_EXPIRED) for session in sessions])
            rollup.count_ended(sessions)  # the daily rollup, in the same transaction
        expired += len(sessions)
        if len(sessions) < batch:
            return expired
