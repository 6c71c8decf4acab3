"""Delivering the outbox's events to partner endpoints (Standard Webhooks).

1. Dispatch: events not yet fanned out get one WebhookDelivery per enabled endpoint of
   their tenant that wants their type (and existed when the event was recorded).
2. Send: per endpoint, the due deliveries at the head of their ordering key (no earlier
   delivery of the same key still pending for that endpoint) are claimed, signed and
   POSTed, a batch at a time, several requests at once.
3. Record: 2xx is success; anything else is retried with exponential backoff and
   jitter until PAYDESK_WEBHOOKS_RETRY_WINDOW_SECONDS after the first attempt, then the
   delivery fails. An endpoint that has failed without a single success for
   PAYDESK_WEBHOOKS_DISABLE_AFTER_SECONDS is disabled and its tenant's owners are told.

Every function takes `now` where time matters, so tests move time instead of waiting.
Claims are conditional updates holding a lease, so two senders never send the same
delivery at once, and a sender that dies is replaced by the periodic sweep once its
lease runs out. Tasks (tasks.py) decide when a run continues.
"""

import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Exists, F, Min, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.cardsafe import mask_card_numbers
from payments.outbox import services as outbox
from payments.outbox.models import Event
from payments.partner_webhooks import network, signing
from payments.partner_webhooks.models import WebhookDelivery, WebhookEndpoint
from payments.partner_webhooks.services import webhook_endpoint_signing_secrets
from tenants.models import Membership, Role
from tenants.services import Actor, audit_record

logger = logging.getLogger(__name__)

Status = WebhookDelivery.Status
USER_AGENT = "Paydesk-Webhooks/1.0"
JITTER = 0.2  # each delay is drawn within ±20% of the exponential schedule
DISPATCH_BATCH = 500
DISPATCH_MAX_BATCHES = 20
SEND_BATCH = 100
SEND_MAX_BATCHES = 40

# --- Dispatch -------------------------------------------------------------------------


@dataclass
class DispatchRun:
    events: int = 0
    endpoints: set[tuple[int, int]] = field(default_factory=set)  # (tenant id, endpoint id) with new deliveries
    more_waiting: bool = False


def events_dispatch(*, batch: int = DISPATCH_BATCH) -> DispatchRun:
    """Fan out one batch of events, oldest first. Concurrent runs wait for each other
    (rows locked, not skipped): a run that skipped an event locked by another could
    deliver a later event of the same session before it."""
    now = timezone.now()
    with transaction.atomic():
        event_ids = list(
            Event.objects.select_for_update()
            .filter(dispatched_at__isnull=True)
            .order_by("id")
            .values_list("id", flat=True)[:batch]
        )
        if not event_ids:
            return DispatchRun()
        fan_out = _fan_out_sql if connection.vendor == "postgresql" else _fan_out_orm
        endpoints = fan_out(event_ids, now=now)
        Event.objects.filter(pk__in=event_ids).update(dispatched_at=now)
    return DispatchRun(events=len(event_ids), endpoints=endpoints, more_waiting=len(event_ids) == batch)


def _fan_out_orm(event_ids: list[int], *, now: datetime) -> set[tuple[int, int]]:
    """One delivery per event and enabled endpoint of its tenant that wants its type and
    existed when it was recorded. Returns (tenant id, endpoint id) given new deliveries."""
    events = list(Event.objects.filter(pk__in=event_ids).only("id", "tenant_id", "type", "ordering_key", "created_at"))
    endpoints: dict[int, list[WebhookEndpoint]] = {}
    for endpoint in WebhookEndpoint.objects.filter(tenant_id__in={e.tenant_id for e in events}, enabled=True).only(
        "id", "tenant_id", "event_types", "created_at"
    ):
        endpoints.setdefault(endpoint.tenant_id, []).append(endpoint)
    deliveries = [
        WebhookDelivery(
            tenant_id=event.tenant_id,
            endpoint_id=endpoint.pk,
            event_id=event.pk,
            ordering_key=event.ordering_key,
            next_attempt_at=event.created_at,
            created_at=now,
        )
        for event in events
        for endpoint in endpoints.get(event.tenant_id, [])
        if endpoint.created_at <= event.created_at and endpoint.wants(event.type)
    ]
    WebhookDelivery.objects.bulk_create(deliveries, ignore_conflicts=True)
    return {(d.tenant_id, d.endpoint_id) for d in deliveries}


# The same as _fan_out_orm in one statement, on PostgreSQL, where the fan-out is on the
# hot path of every event (bench/webhooks.py): building a model per delivery cost more
# than the insert. tests/partner_webhooks/test_delivery.py checks that both agree.
_FAN_OUT_SQL = """
INSERT INTO partner_webhooks_webhookdelivery
    (uuid, tenant_id, endpoint_id, event_id, ordering_key, status, attempts, next_attempt_at,
     last_response_body, last_error, created_at)
SELECT gen_random_uuid(), e.tenant_id, p.id, e.id, e.ordering_key, 'pending', 0, e.created_at, '', '', %s
FROM outbox_event e
JOIN partner_webhooks_webhookendpoint p
  ON p.tenant_id = e.tenant_id AND p.enabled AND p.created_at <= e.created_at
 AND (p.event_types = '[]'::jsonb OR p.event_types ? e.type)
WHERE e.id = ANY(%s)
ON CONFLICT DO NOTHING
RETURNING tenant_id, endpoint_id
"""


def _fan_out_sql(event_ids: list[int], *, now: datetime) -> set[tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(_FAN_OUT_SQL, [now, event_ids])
        return set(cursor.fetchall())


# The dispatcher's wake-up flag, as the pay-event applier's (payments/sessions/services.py):
# a commit that recorded events queues a run only when none is queued or running.
DISPATCH_FLAG = "paydesk:webhooks:dispatch-queued"
DISPATCH_FLAG_SECONDS = 60


def take_dispatch_flag() -> bool:
    try:
        return cache.add(DISPATCH_FLAG, 1, timeout=DISPATCH_FLAG_SECONDS)
    except Exception:
        logger.warning("cache unavailable; treating the webhook dispatcher's flag as free")
        return True


def dispatcher_may_stop() -> bool:
    """Let go of the flag; False when events came in meanwhile and this run took the flag
    back to fan them out itself."""
    try:
        cache.delete(DISPATCH_FLAG)
    except Exception:
        logger.warning("cache unavailable while dispatching webhook events")
    if not Event.objects.filter(dispatched_at__isnull=True).exists():
        return True
    return not take_dispatch_flag()


def events_waiting() -> bool:
    return Event.objects.filter(dispatched_at__isnull=True).exists()


# --- Send -----------------------------------------------------------------------------


def lease() -> timedelta:
    """How long a claimed attempt may take before it is given up for lost."""
    return timedelta(
        seconds=2 * (settings.PAYDESK_WEBHOOKS_CONNECT_TIMEOUT + settings.PAYDESK_WEBHOOKS_READ_TIMEOUT) + 60
    )


def next_attempt(*, first_attempt_at: datetime, attempts: int, now: datetime, rng=random) -> datetime | None:
    """When to try again after `attempts` failed attempts, or None: the retry window
    (from the first attempt) is over. Exponential from PAYDESK_WEBHOOKS_RETRY_BASE_SECONDS,
    capped at PAYDESK_WEBHOOKS_RETRY_MAX_DELAY_SECONDS, with jitter so that receivers
    coming back are not hit by every retry at once; the last try falls on the window's end."""
    window_end = first_attempt_at + timedelta(seconds=settings.PAYDESK_WEBHOOKS_RETRY_WINDOW_SECONDS)
    if now >= window_end:
        return None
    delay = min(
        settings.PAYDESK_WEBHOOKS_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0),
        settings.PAYDESK_WEBHOOKS_RETRY_MAX_DELAY_SECONDS,
    )
    delay *= rng.uniform(1 - JITTER, 1 + JITTER)
    return min(now + timedelta(seconds=delay), window_end)


@dataclass
class SendRun:
    sent: int = 0
    succeeded: int = 0
    more_waiting: bool = False
    disabled: bool = False


def _heads(endpoint_id: int, now: datetime):
    """Due, pending deliveries with no earlier pending delivery of their ordering key."""
    earlier = WebhookDelivery.objects.filter(
        endpoint_id=endpoint_id,
        status=Status.PENDING,
        ordering_key=OuterRef("ordering_key"),
        event_id__lt=OuterRef("event_id"),
    )
    return WebhookDelivery.objects.filter(
        endpoint_id=endpoint_id, status=Status.PENDING, next_attempt_at__lte=now
    ).filter(Q(ordering_key="") | ~Exists(earlier))


def _claim(endpoint_id: int, *, now: datetime, batch: int) -> tuple[WebhookEndpoint | None, list[WebhookDelivery]]:
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True).first()
        if endpoint is None:
            return None, []
        claimed = list(
            _heads(endpoint_id, now)
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("event")
            .only("id", "attempts", "first_attempt_at", "event_id", "event__uuid", "event__payload")
            .order_by("event_id")[:batch]
        )
        if claimed:
            WebhookDelivery.objects.filter(pk__in=[d.pk for d in claimed]).update(
                attempts=F("attempts") + 1,
                next_attempt_at=now + lease(),
                last_attempt_at=now,
                first_attempt_at=Coalesce("first_attempt_at", now),
            )
            for d in claimed:
                d.attempts += 1
                d.first_attempt_at = d.first_attempt_at or now
                d.last_attempt_at = now
    return endpoint, claimed


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """Threads to send a batch's requests at once; made on first use (after a worker forks)."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=settings.PAYDESK_WEBHOOKS_SEND_THREADS, thread_name_prefix="webhook-send"
            )
        return _executor


def _send(endpoint: WebhookEndpoint, claimed: list[WebhookDelivery]) -> list[network.Answer]:
    try:
        target = network.parse(endpoint.url)
        # Checked again now: the name may resolve elsewhere than when the URL was saved.
        address = network.resolve(target.host, target.port)[0]
    except network.UrlRefused as exc:
        return [network.Answer(None, error=f"refused: {exc}"[:255])] * len(claimed)
    secrets_ = webhook_endpoint_signing_secrets(endpoint=endpoint)

    def one(delivery: WebhookDelivery) -> network.Answer:
        body = delivery.event.payload
        headers = {
            **signing.headers(msg_id=delivery.event.public_id, body=body, secrets_=secrets_),
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        return network.post(target, address, body.encode(), headers)

    if len(claimed) == 1 or settings.PAYDESK_WEBHOOKS_SEND_THREADS <= 1:
        return [one(d) for d in claimed]
    return list(_pool().map(one, claimed))


def _stored_body(body: bytes) -> str:
    text = body.decode("utf-8", "replace").replace("\x00", "")
    return mask_card_numbers(text)[0]


def _record(
    endpoint: WebhookEndpoint, claimed: list[WebhookDelivery], answers: list[network.Answer], *, now
) -> SendRun:
    run = SendRun(sent=len(claimed))
    for delivery, answer in zip(claimed, answers, strict=True):
        delivery.last_status_code = answer.status
        delivery.last_response_body = _stored_body(answer.body)
        delivery.last_error = answer.error or ("" if answer.ok else f"HTTP {answer.status}")
        if answer.ok:
            delivery.status, delivery.completed_at, delivery.next_attempt_at = Status.SUCCEEDED, now, None
            run.succeeded += 1
            continue
        retry = next_attempt(first_attempt_at=delivery.first_attempt_at, attempts=delivery.attempts, now=now)
        if retry is None:
            delivery.status, delivery.completed_at, delivery.next_attempt_at = Status.FAILED, now, None
        else:
            delivery.next_attempt_at = retry
    # Successes mostly share their answer: one UPDATE per distinct answer, not a bulk_update
    # (whose CASE per row and field cost more than the requests, bench/webhooks.py).
    alike: dict[tuple, list[int]] = {}
    for delivery in claimed:
        if delivery.status == Status.SUCCEEDED:
            alike.setdefault((delivery.last_status_code, delivery.last_response_body), []).append(delivery.pk)
    failing_since = None
    with transaction.atomic():
        for (code, body), ids in alike.items():
            WebhookDelivery.objects.filter(pk__in=ids).update(
                status=Status.SUCCEEDED,
                completed_at=now,
                next_attempt_at=None,
                last_status_code=code,
                last_response_body=body,
                last_error="",
            )
        for delivery in claimed:
            if delivery.status != Status.SUCCEEDED:
                WebhookDelivery.objects.filter(pk=delivery.pk).update(
                    status=delivery.status,
                    completed_at=delivery.completed_at,
                    next_attempt_at=delivery.next_attempt_at,
                    last_status_code=delivery.last_status_code,
                    last_response_body=delivery.last_response_body,
                    last_error=delivery.last_error,
                )
        if run.succeeded:
            WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=False).update(failing_since=None)
        else:
            WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
            failing_since = WebhookEndpoint.objects.values_list("failing_since", flat=True).get(pk=endpoint.pk)
    limit = timedelta(seconds=settings.PAYDESK_WEBHOOKS_DISABLE_AFTER_SECONDS)
    if failing_since is not None and now - failing_since >= limit:
        last = answers[-1].error or f"HTTP {answers[-1].status}"
        reason = f"Every delivery attempt since {failing_since:%Y-%m-%d %H:%M} UTC failed (the last: {last})."
        run.disabled = webhook_endpoint_disable(endpoint=endpoint, now=now, reason=reason)
    return run


def endpoint_send_due(*, endpoint_id: int, now: datetime | None = None, batch: int = SEND_BATCH) -> SendRun:
    """Send what is due for one endpoint, batch after batch, until nothing is due (or
    SEND_MAX_BATCHES: then `more_waiting`, and the task queues a fresh run). `now` fixes
    the clock (tests); otherwise each batch reads it."""
    total = SendRun()
    for _ in range(SEND_MAX_BATCHES):
        clock = now or timezone.now()
        endpoint, claimed = _claim(endpoint_id, now=clock, batch=batch)
        if not claimed:
            return total
        answers = _send(endpoint, claimed)
        run = _record(endpoint, claimed, answers, now=now or timezone.now())
        total.sent += run.sent
        total.succeeded += run.succeeded
        if run.disabled:
            total.disabled = True
            return total
    total.more_waiting = True
    return total


FOLLOW_UP_KEY = "paydesk:webhooks:follow-up:{}"


def follow_up_at(*, endpoint_id: int, now: datetime | None = None) -> datetime | None:
    """When a send run should next look at this endpoint, if that is soon enough to queue
    a countdown for it (PAYDESK_WEBHOOKS_COUNTDOWN_MAX_SECONDS) and none is queued for that
    time or earlier yet: the earliest retry (or lease) still ahead. Later ones are the
    sweep's. One queued follow-up per endpoint, however many runs ask (a cache entry)."""
    now = now or timezone.now()
    due = WebhookDelivery.objects.filter(
        endpoint_id=endpoint_id, status=Status.PENDING, next_attempt_at__gt=now
    ).aggregate(first=Min("next_attempt_at"))["first"]
    if due is None or (due - now).total_seconds() > settings.PAYDESK_WEBHOOKS_COUNTDOWN_MAX_SECONDS:
        return None
    key = FOLLOW_UP_KEY.format(endpoint_id)
    try:
        queued = cache.get(key)
        if queued is not None and now < queued <= due:
            return None
        cache.set(key, due, timeout=settings.PAYDESK_WEBHOOKS_COUNTDOWN_MAX_SECONDS + 60)
    except Exception:
        logger.warning("cache unavailable; queueing a webhook follow-up that may be a duplicate")
    return due


def endpoints_due(*, now: datetime | None = None) -> list[tuple[int, int]]:
    """(tenant id, endpoint id) of enabled endpoints with a delivery due: retries whose
    time has come and attempts whose sender was lost. The periodic sweep sends them."""
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=now, endpoint__enabled=True)
        .values_list("tenant_id", "endpoint_id")
        .distinct()
    )


# --- Disable --------------------------------------------------------------------------


def webhook_endpoint_disable(*, endpoint: WebhookEndpoint, now: datetime, reason: str) -> bool:
    """Disable an endpoint that keeps failing: its pending deliveries fail, the audit log
    says so, and the tenant's owners get an email. False if it was already disabled."""
    with transaction.atomic():
        if not WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
            enabled=False, disabled_reason=reason[:255], updated_at=now
        ):
            return False
        WebhookDelivery.objects.filter(endpoint=endpoint, status=Status.PENDING).update(
            status=Status.FAILED, completed_at=now, next_attempt_at=None, last_error="endpoint disabled"
        )
        endpoint.refresh_from_db()
        audit_record(
            action="webhook_endpoint.disabled",
            actor=Actor.system("partner-webhooks"),
            tenant=endpoint.tenant,
            target=endpoint,
            changes={"reason": reason, "url": endpoint.url},
        )
    _tell_owners(endpoint, reason)
    return True


def _tell_owners(endpoint: WebhookEndpoint, reason: str) -> None:
    owners = list(
        Membership.objects.filter(tenant_id=endpoint.tenant_id, role=Role.OWNER, user__is_active=True)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    if not owners:
        logger.warning("webhook endpoint %s disabled; its tenant has no owner with an email", endpoint.pk)
        return
    body = (
        f"Paydesk disabled the webhook endpoint {endpoint.url} of {endpoint.tenant.name}.\n\n"
        f"{reason}\n\n"
        "Events are no longer sent to it; its pending deliveries were marked failed. When the "
        "receiver works again, enable the endpoint (API: PATCH /api/v1/webhook-endpoints/"
        f"{endpoint.uuid}/ with enabled=true, or in the admin), then retry the failed deliveries "
        "you need, or read GET /api/v1/events/.\n"
    )
    try:
        send_mail(
            subject=f"Paydesk: webhook endpoint disabled ({endpoint.url[:80]})",
            message=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=owners,
        )
    except Exception:  # the endpoint is disabled and audited; a lost email must not undo that
        logger.exception("could not email the owners of tenant %s about endpoint %s", endpoint.tenant_id, endpoint.pk)


# --- History --------------------------------------------------------------------------


def webhook_history_purge(*, now: datetime | None = None) -> int:
    """Delete events (and their deliveries) older than the retention period."""
    now = now or timezone.now()
    return outbox.events_purge(before=now - timedelta(days=settings.PAYDESK_WEBHOOKS_EVENT_RETENTION_DAYS))
