"""The pay-session events partners receive (payments.outbox): built from the session as
the REST API shows it, recorded by the services in the transaction of each change."""

from payments.outbox import catalogue
from payments.outbox.services import NewEvent, events_record
from payments.sessions.models import PaySession

Status = PaySession.Status

# The type of the event that reports a session reaching each status.
_ENDED = {
    Status.SUCCEEDED: catalogue.PAY_SESSION_SUCCEEDED,
    Status.FAILED: catalogue.PAY_SESSION_FAILED,
    Status.CANCELLED: catalogue.PAY_SESSION_CANCELLED,
    Status.EXPIRED: catalogue.PAY_SESSION_EXPIRED,
}

# Fields of the session that partners do not see move without an event.
UNSEEN_FIELDS = frozenset({"last_activity_at", "updated_at"})


def event_type_for(*, old_status: str, new_status: str) -> str:
    """pay_session.succeeded/failed/cancelled/expired when the change ends the session,
    pay_session.updated for any other change."""
    if new_status != old_status and new_status in _ENDED:
        return _ENDED[new_status]
    return catalogue.PAY_SESSION_UPDATED


def ordering_key(session: PaySession) -> str:
    return f"pay_session:{session.uuid}"


def session_events(pairs: list[tuple[PaySession, str]]) -> list[NewEvent]:
    """An event of each type for each session, with the session as the API shows it now
    (one serializer for them all: its fields are built once)."""
    # Imported here: the serializer module imports the services, which import this one.
    from payments.sessions.api.serializers import PaySessionSerializer

    if not pairs:
        return []
    shown = PaySessionSerializer([session for session, _ in pairs], many=True).data
    return [
        NewEvent(tenant_id=session.tenant_id, type=type, data=data, ordering_key=ordering_key(session))
        for (session, type), data in zip(pairs, shown, strict=True)
    ]


def record(session: PaySession, type: str) -> None:
    """Record one event for `session`, as it is now, in the caller's transaction."""
    record_many([(session, type)])


def record_many(pairs: list[tuple[PaySession, str]]) -> None:
    events_record(session_events(pairs))
