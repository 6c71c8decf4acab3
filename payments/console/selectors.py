"""Reads of the console: which sessions an agent may see, the tenant's console settings,
the connectors offered for a new payment."""

import hashlib

from django.db.models import Case, Count, IntegerField, Max, QuerySet, Value, When
from django.http import Http404

from connectors.models import ConnectorInstance
from connectors.selectors import connector_list
from payments.console.models import ConsoleSettings
from payments.sessions.models import PayEvent, PaySession
from payments.sessions.selectors import pay_session_events, pay_session_list
from tenants.models import MANAGER_ROLES, Role, Tenant

# Who uses the console: agents, and the supervisors above them.
CONSOLE_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.AGENT})
# Supervisors see every session of the tenant; an agent sees the sessions they started.
SUPERVISOR_ROLES = MANAGER_ROLES

RECENT_SESSIONS = 25


def console_sessions(*, tenant: Tenant, user, role: str) -> QuerySet[PaySession]:
    """The agent-driven sessions this member may open in the console."""
    sessions = pay_session_list(tenant=tenant).filter(channel=PaySession.Channel.AGENT)
    if role in SUPERVISOR_ROLES:
        return sessions
    if role == Role.AGENT:
        return sessions.filter(started_by_user=user)
    return sessions.none()


def console_recent_sessions(*, tenant: Tenant, user, role: str) -> list[PaySession]:
    """The most recent sessions, the member's own first."""
    own_first = Case(When(started_by_user=user, then=Value(0)), default=Value(1), output_field=IntegerField())
    return list(
        console_sessions(tenant=tenant, user=user, role=role)
        .select_related("started_by_user")
        .annotate(own=own_first)
        .order_by("own", "-created_at", "-id")[:RECENT_SESSIONS]
    )


def console_session_get(*, tenants: dict[int, tuple[Tenant, str]], user, uuid) -> PaySession:
    """The session if this member may open it; else 404, whether it belongs to another
    agent, another tenant, or nobody."""
    for tenant, role in tenants.values():
        session = console_sessions(tenant=tenant, user=user, role=role).filter(uuid=uuid).first()
        if session is not None:
            return session
    raise Http404("No such session.")


def console_session_events(*, session: PaySession) -> list:
    return list(pay_session_events(tenant=session.tenant, session=session))


def console_session_version(*, session: PaySession) -> str:
    """A fingerprint of everything the session page shows: the session's row, its tenant's
    time zone, and its events (how many, the newest, the latest applied). The page's poll
    compares it with the version it shows and, when equal, answers 304 without loading the
    events or building the state: one small query instead of both."""
    events = PayEvent.objects.filter(session=session).aggregate(
        n=Count("id"), last=Max("id"), applied=Max("applied_at")
    )
    row = [getattr(session, field.attname) for field in PaySession._meta.concrete_fields]
    material = repr((row, session.tenant.time_zone, events["n"], events["last"], events["applied"]))
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def console_settings_for(*, tenant: Tenant) -> ConsoleSettings:
    """The tenant's settings, or the defaults (unsaved) when it has none."""
    return ConsoleSettings.objects.filter(tenant=tenant).first() or ConsoleSettings(tenant=tenant)


_ENVIRONMENT_ORDER = Case(
    When(environment=ConnectorInstance.Environment.PRODUCTION, then=Value(0)),
    When(environment=ConnectorInstance.Environment.STAGING, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


def console_connectors(*, tenant: Tenant) -> list[ConnectorInstance]:
    """The tenant's active connectors, production first."""
    return list(
        connector_list(tenant=tenant)
        .filter(is_active=True)
        .annotate(rank=_ENVIRONMENT_ORDER)
        .order_by("rank", "unique_name")
    )
