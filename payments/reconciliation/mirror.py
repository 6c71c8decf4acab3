"""The local copy of a connector's Stripe objects: from Stripe dicts to rows, and the
merge that makes every write order-independent.

A list page and a webhook both end in `mirror_upsert`. Two observations of one object
are merged, never simply overwritten: the status furthest along Stripe's lifecycle
wins (a newer observation breaks a tie), amounts refunded only grow, a dispute flag stays
set, and an id once known is kept. So a replayed or late event, a page fetched twice,
and a webhook racing a sync all end in the same row, whatever the order.
"""

import json
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from connectors.models import ConnectorInstance
from connectors.stripe import id_of
from payments.reconciliation import rollup
from payments.reconciliation.models import (
    StripeBalanceTransaction,
    StripeCharge,
    StripeDispute,
    StripePaymentIntent,
    StripePayout,
    StripeRefund,
)
from payments.refunds.services import paydesk_refund_of

MODELS = {
    "charge": StripeCharge,
    "payment_intent": StripePaymentIntent,
    "refund": StripeRefund,
    "dispute": StripeDispute,
    "balance_transaction": StripeBalanceTransaction,
    "payout": StripePayout,
}

# Where each status stands in its object's lifecycle; terminal statuses rank highest.
_RANK = {
    "charge": {"pending": 1, "failed": 2, "succeeded": 2},
    "payment_intent": {"processing": 2, "requires_capture": 3, "canceled": 4, "succeeded": 4},
    "refund": {"pending": 1, "requires_action": 1, "succeeded": 2, "failed": 2, "canceled": 2},
    "dispute": {"warning_under_review": 2, "under_review": 2, "won": 3, "lost": 3, "warning_closed": 3, "prevented": 3},
    "payout": {"pending": 1, "in_transit": 2, "paid": 3, "failed": 3, "canceled": 3},
    "balance_transaction": {"pending": 1, "available": 2},
}
_GROWING = {"charge": ("amount_refunded",)}
_STICKY_TRUE = {"charge": ("disputed",), "payout": ("automatic",)}
# Kept once known (a later observation without them does not erase them).
_STICKY = (
    "payment_intent_id",
    "latest_charge_id",
    "charge_id",
    "customer_id",
    "payment_method_id",
    "balance_transaction_id",
    "description",
    "paydesk_ref",
    "paydesk_refund",
    "payout_id",
    "transactions_linked_at",
    "available_on",
    "arrival_date",
)

_REFERENCE = re.compile(r"Paydesk ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", re.IGNORECASE)


def paydesk_ref(*texts) -> uuid.UUID | None:
    """The session uuid in the first `Paydesk <uuid>` found (payments.sessions.services.paydesk_reference)."""
    for text in texts:
        if isinstance(text, dict):
            found = paydesk_ref(*text.values())
        else:
            match = _REFERENCE.search(text) if isinstance(text, str) else None
            found = uuid.UUID(match.group(1)) if match else None
        if found:
            return found
    return None


def _ts(value) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _currency(value) -> str:
    return str(value or "").upper()[:3]


def fields_of(kind: str, obj: dict) -> dict:
    """The columns of `kind` from a Stripe object (as a dict)."""
    common = {"created": _ts(obj.get("created")) or timezone.now()}
    if kind == "charge":
        return common | {
            "amount": int(obj.get("amount") or 0),
            "amount_refunded": int(obj.get("amount_refunded") or 0),
            "currency": _currency(obj.get("currency")),
            "status": str(obj.get("status") or ""),
            "disputed": bool(obj.get("disputed")),
            "payment_intent_id": id_of(obj.get("payment_intent")),
            "customer_id": id_of(obj.get("customer")),
            "payment_method_id": id_of(obj.get("payment_method")),
            "balance_transaction_id": id_of(obj.get("balance_transaction")),
            "description": str(obj.get("description") or "")[:255],
            "paydesk_ref": paydesk_ref(obj.get("description"), obj.get("metadata") or {}),
        }
    if kind == "payment_intent":
        return common | {
            "amount": int(obj.get("amount") or 0),
            "currency": _currency(obj.get("currency")),
            "status": str(obj.get("status") or ""),
            "latest_charge_id": id_of(obj.get("latest_charge")),
            "customer_id": id_of(obj.get("customer")),
            "payment_method_id": id_of(obj.get("payment_method")),
            "paydesk_ref": paydesk_ref(obj.get("description"), obj.get("metadata") or {}),
        }
    if kind == "refund":
        return common | {
            "amount": int(obj.get("amount") or 0),
            "currency": _currency(obj.get("currency")),
            "status": str(obj.get("status") or ""),
            "reason": str(obj.get("reason") or "")[:32],
            "failure_reason": str(obj.get("failure_reason") or "")[:100],
            "charge_id": id_of(obj.get("charge")),
            "payment_intent_id": id_of(obj.get("payment_intent")),
            "balance_transaction_id": id_of(obj.get("balance_transaction")),
            "paydesk_refund": paydesk_refund_of(obj.get("metadata") or {}),
        }
    if kind == "dispute":
        return common | {
            "amount": int(obj.get("amount") or 0),
            "currency": _currency(obj.get("currency")),
            "status": str(obj.get("status") or ""),
            "reason": str(obj.get("reason") or "")[:64],
            "charge_id": id_of(obj.get("charge")),
            "payment_intent_id": id_of(obj.get("payment_intent")),
        }
    if kind == "balance_transaction":
        amount, fee = int(obj.get("amount") or 0), int(obj.get("fee") or 0)
        return common | {
            "type": str(obj.get("type") or "")[:48],
            "reporting_category": str(obj.get("reporting_category") or "")[:48],
            "source_id": id_of(obj.get("source")),
            "amount": amount,
            "fee": fee,
            "net": int(obj["net"]) if obj.get("net") is not None else amount - fee,
            "currency": _currency(obj.get("currency")),
            "status": str(obj.get("status") or ""),
            "available_on": _ts(obj.get("available_on")),
        }
    if kind == "payout":
        return common | {
            "amount": int(obj.get("amount") or 0),
            "currency": _currency(obj.get("currency")),
            "status": str(obj.get("status") or ""),
            "automatic": bool(obj.get("automatic")),
            "arrival_date": _ts(obj.get("arrival_date")),
            "balance_transaction_id": id_of(obj.get("balance_transaction")),
        }
    raise ValueError(f"not a mirrored kind: {kind!r}")


def explode(obj: dict) -> Iterable[tuple[str, dict]]:
    """The object and every full object embedded in it. An expandable field (a charge's
    `balance_transaction`, a PaymentIntent's `latest_charge`) holds the whole object
    when it was expanded (https://docs.stripe.com/api/expanding_objects), and a few fields
    are lists of objects (a dispute's `balance_transactions`, a charge's `refunds` when
    expanded). Each is stored as well."""
    kind = obj.get("object")
    if kind not in MODELS or not obj.get("id"):
        return
    yield kind, obj
    for name in ("balance_transaction", "payment_intent", "latest_charge", "charge", "source"):
        value = obj.get(name)
        if isinstance(value, dict):
            yield from explode(value)
    for name in ("balance_transactions", "refunds"):
        value = obj.get(name)
        items = value.get("data") if isinstance(value, dict) else value
        for item in items or []:
            if isinstance(item, dict):
                yield from explode(item)


def merge(kind: str, old: dict, new: dict) -> dict:
    """Two observations of one object → one, the same whichever came first."""
    ranks = _RANK[kind]

    def order(row: dict):
        return (ranks.get(row["status"], 0), row["observed_at"], json.dumps(row, sort_keys=True, default=str))

    base, other = (new, old) if order(new) >= order(old) else (old, new)
    merged = dict(base)
    for name in _GROWING.get(kind, ()):
        merged[name] = max(old[name], new[name])
    for name in _STICKY_TRUE.get(kind, ()):
        merged[name] = bool(old[name] or new[name])
    for name in _STICKY:
        if name in merged and not merged[name]:
            merged[name] = other.get(name) or merged[name]
    return merged


def mirror_upsert(*, connector: ConnectorInstance, objects: Iterable[dict], observed_at: datetime) -> dict[str, set]:
    """Store Stripe objects (and the objects embedded in them), and refresh the daily
    rollup's days they count on, in one transaction. Returns {kind: ids changed}."""
    by_kind: dict[str, dict[str, dict]] = {}
    for obj in objects:
        for kind, item in explode(obj):
            row = fields_of(kind, item) | {"observed_at": observed_at}
            current = by_kind.setdefault(kind, {}).get(item["id"])
            by_kind[kind][item["id"]] = row if current is None else merge(kind, current, row)
    changed = {}
    with transaction.atomic():
        for kind, rows in by_kind.items():
            for attempt in range(3):
                try:
                    changed[kind] = _upsert_kind(connector, kind, rows)
                    break
                except IntegrityError:  # a concurrent writer inserted one of these first: merge with it
                    if attempt == 2:
                        raise
        _touch_charges(connector, changed)
        rollup.refresh_for_changes(connector, changed)
    return changed


def _upsert_kind(connector: ConnectorInstance, kind: str, rows: dict[str, dict]) -> set[str]:
    model = MODELS[kind]
    names = [f for f in next(iter(rows.values())) if f != "observed_at"]
    now = timezone.now()
    changed: set[str] = set()
    with transaction.atomic():
        existing = {
            row.stripe_id: row
            for row in model.objects.select_for_update()
            .filter(connector=connector, stripe_id__in=list(rows))
            .order_by("stripe_id")  # one lock order for every writer: no deadlock
        }
        create, update, touch = [], [], []
        for stripe_id in sorted(rows):
            new = rows[stripe_id]
            row = existing.get(stripe_id)
            if row is None:
                create.append(
                    model(
                        tenant_id=connector.tenant_id, connector=connector, stripe_id=stripe_id, updated_at=now, **new
                    )
                )
                changed.add(stripe_id)
                continue
            old = {name: getattr(row, name) for name in [*names, "observed_at"]}
            merged = merge(kind, old, new)
            if any(merged[name] != old[name] for name in names):
                for name, value in merged.items():
                    setattr(row, name, value)
                row.updated_at = now
                update.append(row)
                changed.add(stripe_id)
            elif merged["observed_at"] != old["observed_at"]:
                row.observed_at = merged["observed_at"]
                touch.append(row)
        if create:
            model.objects.bulk_create(create)
        if update:
            model.objects.bulk_update(update, [*names, "observed_at", "updated_at"])
        if touch:
            model.objects.bulk_update(touch, ["observed_at"])
    return changed


def _touch_charges(connector: ConnectorInstance, changed: dict[str, set]) -> None:
    """A refund, dispute or balance transaction that changed re-checks its charge's session."""
    charge_ids: set[str] = set()
    for kind in ("refund", "dispute"):
        if changed.get(kind):
            charge_ids |= set(
                MODELS[kind]
                .objects.filter(connector=connector, stripe_id__in=changed[kind])
                .values_list("charge_id", flat=True)
            )
    filters = {"stripe_id__in": charge_ids - {""}} if charge_ids else None
    if filters:
        StripeCharge.objects.filter(connector=connector, **filters).update(updated_at=timezone.now())
    if changed.get("balance_transaction"):
        StripeCharge.objects.filter(
            connector=connector, balance_transaction_id__in=changed["balance_transaction"]
        ).update(updated_at=timezone.now())
