"""Every write of the reconciliation app: a connector's sync and matching run, stored
webhook events and their application, and a person resolving an exception item."""

import hashlib
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import Conflict
from connectors import stripe as edge
from connectors.base import ConnectorError
from connectors.models import ConnectorInstance
from connectors.services import connector_stripe_webhook_secret
from core import safejson
from core.cardsafe import mask_card_numbers, tripwire_fired
from payments.reconciliation import matching, outbox, stripe_only, sync
from payments.reconciliation.mirror import MODELS, mirror_upsert
from payments.reconciliation.models import ReconciliationItem, StripeWebhookEvent
from tenants.services import Actor, audit_record

logger = logging.getLogger(__name__)

# An unhealthy connector (revoked key) is tried again this often by the schedule, or at
# once after its settings change; "reconcile now" always tries.
UNHEALTHY_RETRY = timedelta(hours=1)


class TransientStripeError(Exception):
    """Stripe stayed unavailable through the in-run backoff; Celery retries the task, which
    resumes from the cursors."""


@dataclass
class ReconcileResult:
    connector_id: int
    mode: str
    complete: bool = True
    pages: int = 0
    objects: int = 0
    states: dict = field(default_factory=dict)
    stripe_only: int = 0
    error: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def connector_reconcile(
    *,
    connector: ConnectorInstance,
    mode: str = sync.INCREMENTAL,
    since: datetime | None = None,
    full: bool = False,
    budget_seconds: float | None = None,
    progress=None,
) -> ReconcileResult:
    """Sync the connector's Stripe mirror, then match its sessions. One run per connector
    at a time (raises sync.SyncBusy otherwise). A permanent Stripe error is recorded (the
    connector turns unhealthy) and returned; a transient one raises TransientStripeError
    after the cursors have kept what was read."""
    owner = sync.new_lease_owner()
    if not sync.lease_acquire(connector, owner):
        raise sync.SyncBusy(f"connector {connector.pk} is being reconciled by another worker")
    result = ReconcileResult(connector_id=connector.pk, mode=mode)
    deadline = time.monotonic() + (budget_seconds if budget_seconds is not None else math.inf)
    report_progress = progress or (lambda stage, done, total: None)
    try:
        client = sync.client_for(connector)
        report = sync.sync_lists(
            connector, mode=mode, since=since, owner=owner, deadline=deadline, progress=report_progress, client=client
        )
        result.pages, result.objects, result.complete = report.pages, report.objects, report.complete
        if not report.complete:
            return result
        sync.health_record_success(connector, started_at=report.started_at, mode=mode)
        now = timezone.now()
        sessions = matching.sessions_to_check(connector, since=since, full=full or mode == sync.NIGHTLY)
        states = matching.match_sessions(
            connector=connector,
            sessions=sessions,
            now=now,
            token_lookup=sync.token_lookup_for(client),
            progress=lambda done, total: report_progress("sessions", done, total),
        )
        result.states = dict(states)
        result.stripe_only = stripe_only.find_stripe_only(connector=connector, now=now)
    except ConnectorError as exc:
        sync.health_record_error(connector, exc)
        if not exc.permanent:
            raise TransientStripeError(exc.message) from exc
        logger.warning("reconciliation of connector %s stopped: %s", connector.pk, exc.message)
        result.error = exc.message
    finally:
        sync.lease_release(connector, owner)
    return result


def connectors_due(*, now: datetime | None = None) -> list[tuple[int, int]]:
    """(tenant_id, connector_id) of the connectors a scheduled run should reconcile."""
    now = now or timezone.now()
    due = []
    connectors = ConnectorInstance.objects.filter(
        is_active=True, provider=ConnectorInstance.Provider.STRIPE, tenant__status="active"
    ).select_related("sync_state")
    for connector in connectors:
        state = getattr(connector, "sync_state", None)
        if state is not None and not state.healthy and state.last_error_at:
            changed_since = connector.updated_at > state.last_error_at
            if not changed_since and now - state.last_error_at < UNHEALTHY_RETRY:
                continue
        due.append((connector.tenant_id, connector.pk))
    return due


# "Reconcile soon": right after payments get their result, their connectors are reconciled
# within seconds, not at the next scheduled run, so a session shows `matched` while the
# call is still fresh in mind (webhooks, when Stripe can reach Paydesk, do it too). One
# queued run per connector at a time: a burst of results makes one run, and a result
# arriving once that run has started queues the next.
SOON_FLAG = "paydesk:reconcile-soon:{}"
SOON_FLAG_SECONDS = 300  # a lost task frees its connector's flag after this long
SOON_DELAY_SECONDS = 2  # the results of a few seconds go into one run (ignored in-process)
SOON_STATUSES = frozenset({"succeeded", "failed"})


def reconcile_soon(results) -> None:
    """A result listener (payments.sessions.extensions): queue a run for each connector
    that had a payment's result, unless one is already queued."""
    if not settings.PAYDESK_RECONCILIATION_AFTER_RESULT:
        return
    from payments.reconciliation.tasks import reconcile_after_results

    for tenant_id, connector_id in sorted(
        {(r.tenant_id, r.connector_id) for r in results if r.status in SOON_STATUSES}
    ):
        try:
            queued = not cache.add(SOON_FLAG.format(connector_id), 1, timeout=SOON_FLAG_SECONDS)
        except Exception:
            logger.warning("cache unavailable; reconciling connector %s soon regardless", connector_id)
            queued = False
        if not queued:
            reconcile_after_results.apply_async((tenant_id, connector_id), countdown=SOON_DELAY_SECONDS)


def reconcile_soon_started(*, connector_id: int) -> None:
    """The queued run starts: results from now on queue another."""
    try:
        cache.delete(SOON_FLAG.format(connector_id))
    except Exception:
        logger.warning("cache unavailable while reconciling connector %s", connector_id)


def reconcile_request(*, connector: ConnectorInstance, actor: Actor) -> None:
    """ "Reconcile now": an audited request, run by a worker after the commit."""
    from payments.reconciliation.tasks import sync_connector

    audit_record(action="reconciliation.requested", actor=actor, tenant=connector.tenant, target=connector)
    transaction.on_commit(lambda: sync_connector.delay(connector.tenant_id, connector.pk, sync.INCREMENTAL, True))


# --- Webhooks ---------------------------------------------------------------------------


def _scrub(value, hits: list[int]):
    if isinstance(value, str):
        masked, found = mask_card_numbers(value)
        hits[0] += found
        return masked
    if isinstance(value, dict):
        return {k: _scrub(v, hits) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, hits) for v in value]
    return value


# What a stored event needs; a signed body without it is kept as `malformed` (below).
_LATEST_UNIX_TIME = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp())
# Stripe events nest about ten levels; far more is not an event.
_EVENT_MAX_DEPTH = 64


class MalformedEvent(ValidationError):
    """A correctly signed body that is not a usable Stripe event. It has been stored."""


def _event_problem(event) -> str:
    if not isinstance(event, dict):
        return f"The event is a JSON {type(event).__name__}, not an object."
    problems = []
    event_id, created, type_ = event.get("id"), event.get("created"), event.get("type")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 255:
        problems.append("id: missing, or not a string of 1 to 255 characters")
    if type(created) is not int or not 0 <= created <= _LATEST_UNIX_TIME:
        problems.append(f"created: {created!r} is not a Unix time")
    if not isinstance(type_, str) or len(type_) > 100:
        problems.append("type: missing, or not a string of at most 100 characters")
    return "; ".join(problems)


def _store_malformed(*, connector: ConnectorInstance, payload: bytes, event, problem: str) -> StripeWebhookEvent:
    """Keep a signed but unusable body for inspection (never applied): the parsed JSON, or
    the text when it does not parse, card numbers masked either way. One row per body."""
    hits = [0]
    if event is None:
        text = payload.decode("utf-8", errors="replace").replace("\x00", "\\u0000")
        event = {"unparsed": text}
    clean = _scrub(event, hits)
    if hits[0]:
        tripwire_fired(count=hits[0], source="malformed stripe event")
    type_ = event.get("type") if isinstance(event, dict) else None
    row = StripeWebhookEvent(
        tenant_id=connector.tenant_id,
        connector=connector,
        event_id=f"malformed:{hashlib.sha256(payload).hexdigest()}",
        type=type_[:100] if isinstance(type_, str) else "",
        livemode=bool(event.get("livemode")) if isinstance(event, dict) else False,
        payload=clean,
        stripe_created=timezone.now(),
        outcome=StripeWebhookEvent.Outcome.MALFORMED,
        problem=problem[:500],
        processed_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:  # the same body again
        row = StripeWebhookEvent.objects.get(connector=connector, event_id=row.event_id)
    logger.warning("stripe event for connector %s stored as malformed (row %s): %s", connector.pk, row.pk, problem)
    return row


def stripe_webhook_record(
    *, connector: ConnectorInstance, payload: bytes, signature: str
) -> tuple[StripeWebhookEvent, bool]:
    """Verify an event with this connector's signing secret and store it (once per event
    id); it is applied by a task after the commit. Returns (event, created).
    Raises edge.SignatureInvalid (nothing stored), MalformedEvent for a signed body that
    is no usable event (stored as `malformed`, never applied), or ValidationError for an
    event of the other mode (nothing stored)."""
    edge.verify_webhook(payload, signature, connector_stripe_webhook_secret(connector=connector))
    try:
        event = safejson.loads(payload, max_depth=_EVENT_MAX_DEPTH)
        problem = _event_problem(event)
    except safejson.UnsafeJSON as exc:
        event, problem = None, str(exc)
    if problem:
        row = _store_malformed(connector=connector, payload=payload, event=event, problem=problem)
        raise MalformedEvent(f"Not a usable Stripe event ({problem}); stored for inspection as {row.event_id}.")
    if bool(event.get("livemode")) != (connector.mode == ConnectorInstance.Mode.LIVE):
        raise ValidationError("The event's mode (live/test) is not this connector's.")
    hits = [0]
    clean = _scrub(event, hits)
    if hits[0]:
        tripwire_fired(count=hits[0], source=f"stripe event {event['id']}")
    row = StripeWebhookEvent(
        tenant_id=connector.tenant_id,
        connector=connector,
        event_id=event["id"],
        type=event["type"],
        livemode=bool(event.get("livemode")),
        payload=clean,
        stripe_created=datetime.fromtimestamp(event["created"], tz=UTC),
    )
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        return StripeWebhookEvent.objects.get(connector=connector, event_id=row.event_id), False
    from payments.reconciliation.tasks import apply_stripe_event

    transaction.on_commit(lambda: apply_stripe_event.delay(row.tenant_id, row.pk))
    return row, True


def stripe_event_apply(*, tenant_id: int, event_pk: int) -> str:
    """Apply a stored event to the mirror, then re-match what it may concern. Idempotent:
    an applied event is not applied again, and the mirror's merge makes the order in which
    events arrive irrelevant."""
    with transaction.atomic():
        row = (
            StripeWebhookEvent.objects.select_for_update()
            .select_related("connector")
            .filter(pk=event_pk, tenant_id=tenant_id, processed_at__isnull=True)
            .first()
        )
        if row is None:
            return "done"
        obj = (row.payload.get("data") or {}).get("object") or {}
        applied = obj.get("object") in MODELS
        changed = (
            mirror_upsert(connector=row.connector, objects=[obj], observed_at=row.stripe_created) if applied else {}
        )
        row.outcome = StripeWebhookEvent.Outcome.APPLIED if applied else StripeWebhookEvent.Outcome.IGNORED
        row.processed_at = timezone.now()
        row.save(update_fields=["outcome", "processed_at"])
    if any(changed.values()):
        now = timezone.now()
        sessions = matching.sessions_for_changes(row.connector, changed)
        matching.match_sessions(connector=row.connector, sessions=sessions, now=now)
        stripe_only.find_stripe_only(connector=row.connector, now=now)
    return row.outcome


# --- The exceptions queue -------------------------------------------------------------------


def reconciliation_item_resolve(*, item: ReconciliationItem, note: str, actor: Actor) -> ReconciliationItem:
    """A person resolves an item with a note; audited. Resolving twice is refused."""
    note = (note or "").strip()
    if not note:
        raise ValidationError({"resolution_note": ["Say how this was resolved."]})
    now = timezone.now()
    user = actor.user if getattr(actor.user, "pk", None) else None
    with transaction.atomic():
        done = ReconciliationItem.objects.filter(pk=item.pk, resolved_at__isnull=True).update(
            resolved_at=now, resolved_by=user, resolution_note=note[:5000]
        )
        if not done:
            raise Conflict("This item is already resolved.", code="already_resolved")
        audit_record(
            action="reconciliation.item_resolved",
            actor=actor,
            tenant=item.tenant,
            target=item,
            changes={"reason": item.reason, "subject": item.subject, "note": note[:500]},
        )
        outbox.record(opened=[], resolved=[item])
    item.refresh_from_db()
    return item


def task_budget_seconds() -> float:
    return max(30.0, settings.CELERY_TASK_SOFT_TIME_LIMIT - 40.0)
