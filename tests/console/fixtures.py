"""Agent-console fixtures, loaded as a plugin (tests/conftest.py) so that the console's
tests here and its browser tests (tests/browser/) share them."""

import pytest

from payments.console.models import ConsoleSettings
from tenants.models import Role
from tests.factories import MembershipFactory, PaySessionFactory, UserFactory
from tests.payments.conftest import desk

__all__ = ["desk"]  # Paydesk on live_server with the Twilio Pay simulator and localstripe


@pytest.fixture
def agents(world):
    """acme: two agents (ann, bob), a finance member, a viewer; globex: an agent (gus)."""
    acme, globex = world.acme.tenant, world.globex.tenant
    made = {}
    for name, tenant, role in [
        ("ann", acme, Role.AGENT),
        ("bob", acme, Role.AGENT),
        ("fay", acme, Role.FINANCE),
        ("vic", acme, Role.VIEWER),
        ("gus", globex, Role.AGENT),
    ]:
        made[name] = UserFactory(username=name, is_staff=False)
        MembershipFactory(user=made[name], tenant=tenant, role=role)
    made["owner"] = world.acme.owner
    return made


@pytest.fixture
def session_of(world):
    """session_of(user, tenant_world, **fields): a started agent session."""

    def make(user, tw=None, **fields):
        tw = tw or world.acme
        return PaySessionFactory(
            tenant=tw.tenant, connector=tw.connectors["Stripe_Dev"], started_by_user=user, **fields
        )

    return make


@pytest.fixture
def frame_origins(world):
    def allow(*origins, tw=None):
        tenant = (tw or world.acme).tenant
        ConsoleSettings.objects.update_or_create(tenant=tenant, defaults={"frame_origins": "\n".join(origins)})

    return allow


@pytest.fixture
def callbacks(django_capture_on_commit_callbacks):
    """callbacks(session, **params): store and apply one Twilio callback for the session,
    through the same service the callback endpoint calls. Each gets a later DateUpdated."""
    from datetime import timedelta

    from django.utils import timezone

    from payments.sessions.services import pay_callback_record

    clock = {"at": timezone.now()}

    def send(session, **params):
        clock["at"] += timedelta(milliseconds=10)
        raw = {
            "AccountSid": session.tenant.twilio_account_sid,
            "CallSid": session.call_sid,
            "Sid": session.payment_sid,
            "DateUpdated": clock["at"].isoformat(),
            **{k: str(v) for k, v in params.items()},
        }
        with django_capture_on_commit_callbacks(execute=True):
            pay_callback_record(tenant_id=session.tenant_id, session_id=session.pk, raw_params=raw)
        session.refresh_from_db()
        return session

    return send
