"""The event types partners can subscribe to, and the API scope that may read each.

A webhook endpoint receives an event type only if whoever set it up may read that kind
of object through the API (docs/partner-webhooks.md, "Event types").
"""

from tenants.models import Scope

PAY_SESSION_CREATED = "pay_session.created"
PAY_SESSION_UPDATED = "pay_session.updated"
PAY_SESSION_SUCCEEDED = "pay_session.succeeded"
PAY_SESSION_FAILED = "pay_session.failed"
PAY_SESSION_CANCELLED = "pay_session.cancelled"
PAY_SESSION_EXPIRED = "pay_session.expired"
REFUND_CREATED = "refund.created"
REFUND_SUCCEEDED = "refund.succeeded"
REFUND_FAILED = "refund.failed"
RECONCILIATION_EXCEPTION_OPENED = "reconciliation.exception_opened"
RECONCILIATION_EXCEPTION_RESOLVED = "reconciliation.exception_resolved"
EXPORT_READY = "export.ready"
# Sent only to the endpoint a test was asked for; nobody subscribes to it.
PING = "ping"

# type -> (the scope that reads its `data` through the API, what it means)
EVENT_TYPES: dict[str, tuple[str, str]] = {
    PAY_SESSION_CREATED: (Scope.PAYMENTS_READ, "A pay session was created (agent or IVR)."),
    PAY_SESSION_UPDATED: (
        Scope.PAYMENTS_READ,
        "A pay session changed while open: a field asked for or captured, the required fields, "
        "an error on a field, Twilio's answer to a request.",
    ),
    PAY_SESSION_SUCCEEDED: (Scope.PAYMENTS_READ, "The connector charged or tokenized: the session succeeded."),
    PAY_SESSION_FAILED: (Scope.PAYMENTS_READ, "The session failed (a decline, a connector or validation error)."),
    PAY_SESSION_CANCELLED: (Scope.PAYMENTS_READ, "Cancelled by the agent, or the caller hung up or pressed *."),
    PAY_SESSION_EXPIRED: (Scope.PAYMENTS_READ, "No news for PAYDESK_PAY_SESSION_EXPIRY_SECONDS: ended by Paydesk."),
    REFUND_CREATED: (Scope.PAYMENTS_READ, "A refund was requested."),
    REFUND_SUCCEEDED: (Scope.PAYMENTS_READ, "A refund succeeded."),
    REFUND_FAILED: (Scope.PAYMENTS_READ, "A refund failed."),
    RECONCILIATION_EXCEPTION_OPENED: (
        Scope.RECONCILIATION_READ,
        "A difference between Paydesk and Stripe was found (or found again).",
    ),
    RECONCILIATION_EXCEPTION_RESOLVED: (
        Scope.RECONCILIATION_READ,
        "A reconciliation exception was resolved by a person, or closed because both sides agree again.",
    ),
    EXPORT_READY: (Scope.REPORTS_READ, "An export job finished; its file can be downloaded."),
}

SUBSCRIBABLE = list(EVENT_TYPES)


def read_scope(event_type: str) -> str | None:
    """The scope that reads events of this type; None for `ping`, which carries no data."""
    entry = EVENT_TYPES.get(event_type)
    return str(entry[0]) if entry else None


def readable_types(scopes) -> list[str]:
    """The event types a holder of `scopes` may read."""
    held = {str(s) for s in scopes}
    return [t for t, (scope, _) in EVENT_TYPES.items() if str(scope) in held]
