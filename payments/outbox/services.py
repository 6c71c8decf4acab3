"""Recording events (the outbox). Apps call `events_record` inside the transaction that
makes the change the events describe; nothing else writes events.

A change and its event commit together or not at all, because they are one transaction:
`events_record` refuses to run outside one. After the commit, the listeners registered
here (the partner webhooks app, from its AppConfig.ready()) are told that events wait to
be delivered; if that wake-up is lost, the delivery app's periodic sweep finds them.
"""

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone
from rest_framework.utils.encoders import JSONEncoder

from payments.outbox.catalogue import EVENT_TYPES, PING
from payments.outbox.models import Event


@dataclass(frozen=True)
class NewEvent:
    tenant_id: int
    type: str
    data: Mapping = field(repr=False)
    ordering_key: str = ""


_listeners: list[Callable[[], None]] = []


def on_events_committed(listener: Callable[[], None]) -> None:
    """Call `listener()` after each commit that recorded events to fan out."""
    if listener not in _listeners:
        _listeners.append(listener)


def _notify() -> None:
    for listener in _listeners:
        listener()


def render_payload(*, type: str, timestamp: datetime, data: Mapping) -> str:
    """The Standard Webhooks body. DRF's encoder, as the REST API renders the same data."""
    stamp = timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {"type": type, "timestamp": stamp, "data": data}, cls=JSONEncoder, ensure_ascii=False, separators=(",", ":")
    )


def events_record(events: Iterable[NewEvent], *, fan_out: bool = True) -> list[Event]:
    """Write events in the caller's transaction (refused outside one). `fan_out=False`
    writes an event no endpoint subscribes to (a test ping), delivered by its caller."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("events_record must run inside the transaction of the change the events describe")
    now = timezone.now()
    rows = []
    for new in events:
        if new.type not in EVENT_TYPES and new.type != PING:
            raise ValueError(f"unknown event type {new.type!r}")
        rows.append(
            Event(
                uuid=uuid.uuid4(),
                tenant_id=new.tenant_id,
                type=new.type,
                ordering_key=new.ordering_key[:100],
                payload=render_payload(type=new.type, timestamp=now, data=new.data),
                created_at=now,
                dispatched_at=None if fan_out else now,
            )
        )
    if not rows:
        return []
    Event.objects.bulk_create(rows)
    if fan_out:
        transaction.on_commit(_notify)
    return rows


def event_record(*, tenant_id: int, type: str, data: Mapping, ordering_key: str = "") -> Event:
    """One event, in the caller's transaction. What a service of another app calls, e.g.
    a refund service, inside the transaction that moves the refund:

        event_record(tenant_id=refund.tenant_id, type="refund.succeeded",
                     data=RefundSerializer(refund).data,
                     ordering_key=f"pay_session:{refund.session.uuid}")
    """
    (event,) = events_record([NewEvent(tenant_id=tenant_id, type=type, data=data, ordering_key=ordering_key)])
    return event


def events_purge(*, before: datetime, batch: int = 5000) -> int:
    """Delete events recorded before `before` (their deliveries go with them)."""
    deleted = 0
    while True:
        ids = list(Event.objects.filter(created_at__lt=before).order_by("id").values_list("id", flat=True)[:batch])
        if not ids:
            return deleted
        with transaction.atomic():
            Event.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
