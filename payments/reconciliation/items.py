"""The exceptions queue: one item per difference, kept in step with each matching run.

A run states, for a set of subjects, which differences it sees now. An item it sees is
created or refreshed; an open item it no longer sees is closed automatically (with a note
saying so); a resolved item whose data has changed since it was resolved is opened again,
so a person's note never hides a new difference.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from connectors.models import ConnectorInstance, stripe_dashboard_url  # noqa: F401 - re-exported
from payments.reconciliation import outbox
from payments.reconciliation.models import ReconciliationItem, State

# What makes two sightings "the same difference" (fees, payouts and timestamps do not).
_FINGERPRINT_KEYS = (
    "amount",
    "amount_minor",
    "currency",
    "status",
    "result",
    "amount_refunded",
    "disputes",
    "code",
    "missing_refunds",
)


@dataclass(frozen=True)
class Difference:
    reason: str
    subject: str
    session_id: int | None
    stripe_object_id: str
    detail: str
    paydesk_data: dict
    stripe_data: dict

    def fingerprint(self) -> str:
        picked = {
            side: {k: v for k, v in data.items() if k in _FINGERPRINT_KEYS}
            for side, data in (("paydesk", self.paydesk_data), ("stripe", self.stripe_data))
        }
        body = json.dumps([self.reason, self.stripe_object_id, picked], sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()


def items_sync(
    *, connector: ConnectorInstance, subjects: set[str], reasons: set[str], seen: list[Difference], now: datetime
) -> dict[str, int]:
    """Bring the items of `subjects` (for `reasons`) in line with the differences `seen`."""
    counts = {"opened": 0, "reopened": 0, "closed": 0}
    if not subjects and not seen:
        return counts
    wanted = {(d.reason, d.subject): d for d in seen}
    with transaction.atomic():
        existing = {
            (item.reason, item.subject): item
            for item in ReconciliationItem.objects.select_for_update()
            .filter(connector=connector, reason__in=reasons, subject__in=subjects | {d.subject for d in seen})
            .order_by("pk")
        }
        create, update = [], []
        opened, closed = [], []  # told to partners (payments.outbox), in this transaction
        for key, diff in wanted.items():
            item = existing.get(key)
            fingerprint = diff.fingerprint()
            if item is None:
                create.append(_new_item(connector, diff, fingerprint, now))
                counts["opened"] += 1
                continue
            if item.resolved_at is not None and item.fingerprint != fingerprint:
                item.resolved_at, item.resolved_by, item.resolution_note = None, None, ""
                item.opened_at = now
                counts["reopened"] += 1
                opened.append(item)
            if item.resolved_at is None:
                item.detail, item.stripe_object_id = diff.detail[:500], diff.stripe_object_id
                item.paydesk_data, item.stripe_data, item.fingerprint = diff.paydesk_data, diff.stripe_data, fingerprint
                item.session_id = diff.session_id or item.session_id
            item.last_seen_at = now
            update.append(item)
        for key, item in existing.items():
            if key not in wanted and item.resolved_at is None:
                item.resolved_at = now
                item.resolution_note = "Closed automatically: Stripe and Paydesk agree again."
                update.append(item)
                closed.append(item)
                counts["closed"] += 1
        if create:
            try:
                with transaction.atomic():
                    ReconciliationItem.objects.bulk_create(create)
                opened.extend(create)
            except IntegrityError:  # a concurrent run opened some of the same items: they stand, with their events
                for item in create:
                    try:
                        with transaction.atomic():
                            item.save(force_insert=True)
                    except IntegrityError:
                        continue
                    opened.append(item)
        if update:
            ReconciliationItem.objects.bulk_update(
                update,
                [
                    "detail",
                    "stripe_object_id",
                    "paydesk_data",
                    "stripe_data",
                    "fingerprint",
                    "session",
                    "last_seen_at",
                    "opened_at",
                    "resolved_at",
                    "resolved_by",
                    "resolution_note",
                ],
            )
        outbox.record(opened=opened, resolved=closed)
    return counts


def _new_item(connector: ConnectorInstance, diff: Difference, fingerprint: str, now: datetime) -> ReconciliationItem:
    return ReconciliationItem(
        tenant_id=connector.tenant_id,
        connector=connector,
        session_id=diff.session_id,
        reason=diff.reason,
        subject=diff.subject,
        stripe_object_id=diff.stripe_object_id,
        detail=diff.detail[:500],
        paydesk_data=diff.paydesk_data,
        stripe_data=diff.stripe_data,
        fingerprint=fingerprint,
        opened_at=now,
        last_seen_at=now,
    )


SESSION_REASONS = {
    State.AMOUNT_MISMATCH,
    State.CURRENCY_MISMATCH,
    State.MISSING_IN_STRIPE,
    State.REFUND_MISSING_IN_STRIPE,
    State.DISPUTED,
    State.REFUNDED,  # legacy items (models.LEGACY_REASONS): listed so that a run closes them
}
CHARGE_REASONS = {State.STRIPE_ONLY}
