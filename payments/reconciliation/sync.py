"""Keeping a connector's mirror up to date: cursors, pages, backoff, the lease, health.

Each list is read in windows `created > gt`, page after page (limit 100, starting_after),
with the lower bound sent to Stripe as `created[gt]`. Every page is stored in one
transaction with the cursor that points past it, so a run that dies anywhere resumes
after the last stored page: no gap, nothing stored twice.

Stripe lists newest first and pages with `starting_after`
(https://docs.stripe.com/api/pagination). So a window is read from its newest object
down, and only once it is read to the end is everything above its lower bound known:
the cursor's `high_water` moves to the window's newest `created` then, not page by page
(taken as the newest seen on any page, so it holds whatever the order). Objects created
while a window is read come before its first page and are left to the next window. That
one starts OVERLAP_SECONDS below the high water, which absorbs objects Stripe lists late
or created in the same second (the mirror's merge makes a re-read harmless).
"""

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from connectors import stripe as edge
from connectors.base import ConnectorError
from connectors.models import ConnectorInstance
from connectors.services import connector_stripe_secret_key
from payments.reconciliation.mirror import mirror_upsert
from payments.reconciliation.models import (
    ConnectorSyncState,
    StripeBalanceTransaction,
    StripeCharge,
    StripePayout,
    SyncCursor,
)

logger = logging.getLogger(__name__)

INCREMENTAL, NIGHTLY = "incremental", "nightly"
# The main path: what every session needs (a charge, with its balance transaction
# expanded: fee, net, available on), and what changes a charge after it was created.
INCREMENTAL_KINDS = ("charges", "refunds", "disputes", "payouts")
# Once a night, also the lists the main path reads through expansions and events.
NIGHTLY_KINDS = (*INCREMENTAL_KINDS, "payment_intents", "balance_transactions")
EXPAND = {"charges": ("data.balance_transaction",), "refunds": ("data.balance_transaction",)}

OVERLAP_SECONDS = 120
# Lists re-read over a rolling window on every run, because what matters about them (a
# payout being paid, a dispute being decided) happens days after they are created.
ROLLING_DAYS = {INCREMENTAL: {"payouts": 10}, NIGHTLY: {"payouts": 10, "disputes": 120}}
LEASE_SECONDS = 600
RETRY_ATTEMPTS = 5
RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 30.0

sleep = time.sleep  # tests replace it to observe the backoff without waiting
_random = random.Random()


def nightly_days() -> int:
    return settings.PAYDESK_RECONCILIATION_NIGHTLY_DAYS


class SyncBusy(Exception):
    """Another worker holds this connector's lease."""


class LeaseLost(Exception):
    """The lease expired under a run (it took longer than LEASE_SECONDS between pages)."""


@dataclass
class SyncReport:
    connector_id: int
    mode: str
    started_at: datetime
    pages: int = 0
    objects: int = 0
    complete: bool = True
    kinds: dict = field(default_factory=dict)


Progress = Callable[[str, int, int | None], None]


def _no_progress(stage: str, done: int, total: int | None) -> None:
    pass


# --- The lease: one sync per connector at a time, across workers ---------------------


def sync_state(connector: ConnectorInstance) -> ConnectorSyncState:
    state, _ = ConnectorSyncState.objects.get_or_create(connector=connector, defaults={"tenant": connector.tenant})
    return state


def lease_acquire(connector: ConnectorInstance, owner: str, *, seconds: int = LEASE_SECONDS) -> bool:
    """Take the connector's lease with a conditional update: exactly one caller wins."""
    state = sync_state(connector)
    now = timezone.now()
    won = (
        ConnectorSyncState.objects.filter(pk=state.pk)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner))
        .update(lease_owner=owner, lease_until=now + timedelta(seconds=seconds), last_attempt_at=now)
    )
    return won == 1


def lease_renew(connector: ConnectorInstance, owner: str) -> None:
    until = timezone.now() + timedelta(seconds=LEASE_SECONDS)
    if not ConnectorSyncState.objects.filter(connector=connector, lease_owner=owner).update(lease_until=until):
        raise LeaseLost(f"connector {connector.pk}: lease lost")


def lease_release(connector: ConnectorInstance, owner: str) -> None:
    ConnectorSyncState.objects.filter(connector=connector, lease_owner=owner).update(lease_owner="", lease_until=None)


def new_lease_owner() -> str:
    return uuid.uuid4().hex


# --- Calls to Stripe, with backoff ----------------------------------------------------


def backoff_delay(attempt: int) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base·2^attempt)]."""
    return _random.uniform(0, min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2**attempt))


def call_with_backoff(fn, *args, **kwargs):
    """Call the Stripe edge; on a transient error (429, 5xx, unreachable) wait and retry,
    up to RETRY_ATTEMPTS; then raise it for Celery's own retry. Permanent errors at once."""
    for attempt in range(RETRY_ATTEMPTS):
        try:
            return fn(*args, **kwargs)
        except ConnectorError as exc:
            if exc.permanent or attempt == RETRY_ATTEMPTS - 1:
                raise
            delay = backoff_delay(attempt)
            logger.warning("stripe call failed (%s), retry %d in %.2fs", exc.status or "network", attempt + 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")


# --- Lists ----------------------------------------------------------------------------


def _window_gt(cursor: SyncCursor, *, mode: str, since: datetime | None) -> int:
    if since is not None:
        return max(0, int(since.timestamp()) - 1)
    gt = max(0, cursor.high_water - OVERLAP_SECONDS) if cursor.high_water else 0
    days = ROLLING_DAYS[mode].get(cursor.kind)
    if mode == NIGHTLY:
        days = days or nightly_days()
    if days and gt:
        gt = max(0, min(gt, int(time.time()) - days * 86400))
    return gt


def sync_kind(
    client,
    connector: ConnectorInstance,
    kind: str,
    *,
    mode: str,
    since: datetime | None,
    owner: str,
    deadline: float,
    progress: Progress,
    report: SyncReport,
) -> bool:
    """Read one list to the end of its window. Returns False when out of time."""
    cursor, _ = SyncCursor.objects.get_or_create(connector=connector, kind=kind, defaults={"tenant": connector.tenant})
    wanted = _window_gt(cursor, mode=mode, since=since)
    if cursor.window_gt is None or (since is not None and wanted < cursor.window_gt):
        # A wider window asked for (--since) replaces a narrower one in progress: it
        # covers all of it, so nothing is skipped.
        cursor.window_gt = wanted
        cursor.window_max_created, cursor.starting_after = 0, ""
        cursor.save(update_fields=["window_gt", "window_max_created", "starting_after"])
    gt = cursor.window_gt
    while True:
        if time.monotonic() > deadline:
            return False
        observed_at = timezone.now()
        page = call_with_backoff(
            edge.list_page,
            client,
            kind,
            created_gt=gt,
            starting_after=cursor.starting_after or None,
            expand=EXPAND.get(kind, ()),
        )
        done = not page.has_more or not page.items
        with transaction.atomic():
            mirror_upsert(connector=connector, objects=page.items, observed_at=observed_at)
            cursor.starting_after = page.last_id or cursor.starting_after
            cursor.window_max_created = max(
                [cursor.window_max_created, *(int(i.get("created") or 0) for i in page.items)]
            )
            cursor.pages += 1
            cursor.objects_seen += len(page.items)
            if done:
                cursor.high_water = max(cursor.high_water, cursor.window_max_created)
                cursor.window_gt, cursor.window_max_created, cursor.starting_after = None, 0, ""
                cursor.last_completed_at = timezone.now()
            cursor.save()
        report.pages += 1
        report.objects += len(page.items)
        report.kinds[kind] = report.kinds.get(kind, 0) + len(page.items)
        progress(kind, report.kinds[kind], None)
        lease_renew(connector, owner)
        if done:
            return True


def link_payouts(client, connector: ConnectorInstance, *, owner: str) -> int:
    """For each paid automatic payout not linked yet, list the balance transactions it
    settled and record the payout on them (Stripe's own attribution, never guessed).

    Stripe itemises only automatic payouts this way, with the `payout` filter of the
    balance transactions list
    (https://docs.stripe.com/api/balance_transactions/list#balance_transaction_list-payout,
    https://docs.stripe.com/payouts/reconciliation). The transactions it returns do not
    all carry a `payout` field themselves, so the link is kept from the query."""
    linked = 0
    for payout in StripePayout.objects.filter(
        connector=connector, automatic=True, status="paid", transactions_linked_at__isnull=True
    ):
        starting_after = None
        while True:
            page = call_with_backoff(
                edge.list_balance_transactions, client, payout=payout.stripe_id, starting_after=starting_after
            )
            ids = [item["id"] for item in page.items]
            with transaction.atomic():
                mirror_upsert(connector=connector, objects=page.items, observed_at=timezone.now())
                StripeBalanceTransaction.objects.filter(connector=connector, stripe_id__in=ids).exclude(
                    payout_id=payout.stripe_id
                ).update(payout_id=payout.stripe_id, updated_at=timezone.now())
                StripeCharge.objects.filter(connector=connector, balance_transaction_id__in=ids).update(
                    updated_at=timezone.now()
                )
            lease_renew(connector, owner)
            if not page.has_more or not page.items:
                break
            starting_after = page.last_id
        StripePayout.objects.filter(pk=payout.pk).update(transactions_linked_at=timezone.now())
        linked += 1
    return linked


def token_lookup_for(client) -> Callable[[str], dict | None]:
    """What matching uses to check a tokenization's token, payment method or customer."""

    def lookup(object_id: str) -> dict | None:
        return call_with_backoff(edge.retrieve_object, client, object_id)

    return lookup


def client_for(connector: ConnectorInstance):
    return edge.client_for_connector(connector_stripe_secret_key(connector=connector))


def sync_lists(
    connector: ConnectorInstance,
    *,
    mode: str,
    since: datetime | None,
    owner: str,
    deadline: float,
    progress: Progress = _no_progress,
    client=None,
) -> SyncReport:
    """Read every list of the mode, then link paid payouts. The caller holds the lease."""
    report = SyncReport(connector_id=connector.pk, mode=mode, started_at=timezone.now())
    client = client or client_for(connector)
    for kind in NIGHTLY_KINDS if mode == NIGHTLY else INCREMENTAL_KINDS:
        if not sync_kind(
            client,
            connector,
            kind,
            mode=mode,
            since=since,
            owner=owner,
            deadline=deadline,
            progress=progress,
            report=report,
        ):
            report.complete = False
            return report
    link_payouts(client, connector, owner=owner)
    return report


# --- Health ---------------------------------------------------------------------------


def health_record_success(connector: ConnectorInstance, *, started_at: datetime, mode: str) -> None:
    updates = {"healthy": True, "last_success_at": started_at, "last_error": "", "last_error_permanent": False}
    if mode == NIGHTLY:
        updates["last_nightly_at"] = started_at
    ConnectorSyncState.objects.filter(connector=connector).update(**updates)


def health_record_error(connector: ConnectorInstance, error: ConnectorError) -> None:
    """A permanent error (revoked key, missing permission) makes the connector unhealthy
    until a sync succeeds again; a transient one is only noted."""
    updates = {
        "last_error": error.message[:2000],
        "last_error_at": timezone.now(),
        "last_error_permanent": error.permanent,
    }
    if error.permanent:
        updates["healthy"] = False
    ConnectorSyncState.objects.filter(connector=connector).update(**updates)
