"""The outbox: every change partners are told about commits with its event, or neither
does; each app's services record the right events, with the REST representation."""

import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from payments.outbox.models import Event
from payments.outbox.services import NewEvent, events_record
from payments.reconciliation.items import Difference, items_sync
from payments.reconciliation.models import ReconciliationItem, State
from payments.reconciliation.services import reconciliation_item_resolve
from payments.sessions.api.serializers import PaySessionSerializer
from payments.sessions.models import PayEvent, PaySession
from payments.sessions.services import (
    pay_callback_record,
    pay_events_apply_pending,
    pay_session_cancel,
    pay_sessions_expire,
)
from tenants.services import Actor
from tests.factories import PaySessionFactory, UserFactory
from tests.payments.test_callbacks import card_flow

ACTOR = Actor.system("test")


def events(type_=None) -> list[dict]:
    rows = Event.objects.order_by("id")
    if type_:
        rows = rows.filter(type=type_)
    return [{"type": e.type, "key": e.ordering_key, **json.loads(e.payload)} for e in rows]


class Boom(Exception):
    pass


@pytest.fixture
def session(world):
    return PaySessionFactory(tenant=world.acme.tenant, connector=world.acme.connectors["Stripe_Dev"], payment_sid="")


@pytest.mark.django_db(transaction=True)
def test_events_cannot_be_recorded_outside_the_transaction_of_their_change(world):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        events_record([NewEvent(tenant_id=world.acme.tenant.pk, type="pay_session.updated", data={})])
    assert not Event.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_cancel_commits_with_its_event_or_neither_commits(session):
    with pytest.raises(Boom), transaction.atomic():  # the caller's transaction fails after the cancel
        pay_session_cancel(session=session, actor=ACTOR)
        raise Boom
    session.refresh_from_db()
    assert session.status == "created" and not Event.objects.exists()

    pay_session_cancel(session=session, actor=ACTOR)
    session.refresh_from_db()
    (event,) = events()
    assert session.status == "cancelled" and event["type"] == "pay_session.cancelled"
    assert event["data"] == json.loads(json.dumps(PaySessionSerializer(session).data))
    assert event["key"] == f"pay_session:{session.uuid}"


@pytest.mark.django_db
def test_a_callback_is_not_applied_when_its_event_cannot_be_recorded(session, monkeypatch):
    from payments.sessions import outbox

    pay_callback_record(tenant_id=session.tenant_id, session_id=session.pk, raw_params=card_flow(session)[3])
    monkeypatch.setattr(outbox, "session_events", lambda *a, **k: (_ for _ in ()).throw(Boom()))
    with pytest.raises(Boom):
        pay_events_apply_pending()
    session.refresh_from_db()
    assert session.status == "created" and session.card_last4 == ""
    assert PayEvent.objects.get().applied_at is None and not Event.objects.exists()

    monkeypatch.undo()
    pay_events_apply_pending()  # applied later, with its event
    session.refresh_from_db()
    assert session.card_last4 == "4242" and [e["type"] for e in events()] == ["pay_session.updated"]


@pytest.mark.django_db
def test_callbacks_give_updated_events_and_the_result_its_own(session):
    flow = card_flow(session)
    for step, params in enumerate(flow):
        pay_callback_record(tenant_id=session.tenant_id, session_id=session.pk, raw_params=params)
        pay_events_apply_pending()
        if step == 0:  # the first callback changes nothing partners see: no event
            assert not Event.objects.exists()
    types = [e["type"] for e in events()]
    assert types[-1] == "pay_session.succeeded" and set(types[:-1]) == {"pay_session.updated"}
    assert len(types) == len(flow) - 1
    final = events()[-1]["data"]
    assert final["status"] == "succeeded" and final["outcome"]["payment_confirmation_code"] == "pi_123"
    assert final["card"]["number_masked"] == "xxxxxxxxxxxx4242"
    first = events()[0]["data"]
    assert (first["status"], first["capturing_field"]) == ("capturing", "payment-card-number")
    assert [e["data"]["last_error_type"] for e in events()].count("invalid-date") == 1


@pytest.mark.django_db
def test_expiry_records_one_event_per_expired_session(world):
    now = timezone.now()
    stale = [
        PaySessionFactory(tenant=world.acme.tenant, connector=world.acme.connectors["Stripe_Dev"]) for _ in range(3)
    ]
    fresh = PaySessionFactory(tenant=world.acme.tenant, connector=world.acme.connectors["Stripe_Dev"])
    PaySession.objects.filter(pk__in=[s.pk for s in stale]).update(last_activity_at=now - timedelta(hours=2))

    assert pay_sessions_expire(now=now, batch=2) == 3  # two batches
    expired = events("pay_session.expired")
    assert sorted(e["data"]["id"] for e in expired) == sorted(str(s.uuid) for s in stale)
    assert all(e["data"]["status"] == "expired" for e in expired)
    fresh.refresh_from_db()
    assert fresh.status == "created" and len(events()) == 3


@pytest.mark.django_db
def test_reconciliation_exceptions_opened_and_resolved_are_events(world):
    connector = world.acme.connectors["Stripe_Prod"]
    s = PaySessionFactory(tenant=world.acme.tenant, connector=connector, status="succeeded")
    diff = Difference(
        reason=State.AMOUNT_MISMATCH,
        subject=str(s.uuid),
        session_id=s.pk,
        stripe_object_id="pi_1",
        detail="Stripe charged 12.00, Paydesk asked 12.50.",
        paydesk_data={"amount_minor": 1250},
        stripe_data={"amount": 1200},
    )
    now = timezone.now()
    items_sync(connector=connector, subjects={str(s.uuid)}, reasons={State.AMOUNT_MISMATCH}, seen=[diff], now=now)
    (opened,) = events()
    item = ReconciliationItem.objects.get()
    assert opened["type"] == "reconciliation.exception_opened"
    assert opened["data"]["id"] == str(item.uuid) and opened["data"]["status"] == "open"
    assert opened["data"]["session"] == str(s.uuid)

    items_sync(connector=connector, subjects={str(s.uuid)}, reasons={State.AMOUNT_MISMATCH}, seen=[diff], now=now)
    assert len(events()) == 1  # seen again, unchanged: no event

    user = UserFactory()
    reconciliation_item_resolve(item=item, note="Refunded the difference.", actor=Actor.for_user(user))
    resolved = events()[-1]
    assert resolved["type"] == "reconciliation.exception_resolved" and resolved["data"]["status"] == "resolved"
    assert resolved["data"]["resolution_note"] == "Refunded the difference."


@pytest.mark.django_db
def test_an_exception_closed_by_a_run_is_resolved_for_partners(world):
    connector = world.acme.connectors["Stripe_Prod"]
    s = PaySessionFactory(tenant=world.acme.tenant, connector=connector, status="succeeded")
    diff = Difference(State.MISSING_IN_STRIPE, str(s.uuid), s.pk, "", "Not in Stripe.", {}, {})
    now = timezone.now()
    items_sync(connector=connector, subjects={str(s.uuid)}, reasons={State.MISSING_IN_STRIPE}, seen=[diff], now=now)
    items_sync(connector=connector, subjects={str(s.uuid)}, reasons={State.MISSING_IN_STRIPE}, seen=[], now=now)
    assert [e["type"] for e in events()] == ["reconciliation.exception_opened", "reconciliation.exception_resolved"]
    assert "agree again" in events()[-1]["data"]["resolution_note"]


@pytest.mark.django_db
def test_a_finished_export_is_an_export_ready_event(world, settings, tmp_path):
    from payments.reports import services
    from payments.reports.specs import build_spec

    settings.PAYDESK_REPORTS_EXPORT_DIR = tmp_path
    spec = build_spec(kind="payments", params={"format": "csv"}, tenant=world.acme.tenant)
    job, _ = services.export_job_request(tenant=world.acme.tenant, spec=spec, actor=ACTOR, enqueue=False)
    assert not Event.objects.exists()
    services.export_job_run(tenant_id=world.acme.tenant.pk, job_id=job.pk)
    (ready,) = events()
    assert ready["type"] == "export.ready" and ready["data"]["id"] == str(job.uuid)
    assert ready["data"]["status"] == "succeeded" and ready["data"]["download_url"].startswith("http://testserver/")
