"""The daily rollup (payments/rollup) equals the direct aggregation of the rows after
every kind of write that changes them: sessions created and ended through the services
(IVR and agent, a create Twilio refused, cancel, callbacks, expiry), late callbacks,
Stripe charges, balance transactions, refunds and disputes in any order, across a
local midnight, and after the tenant's time zone changes. Reports read it."""

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from connectors.services import connector_stripe_secret_key
from payments.ivr import services as ivr
from payments.reconciliation.matching import match_sessions, sessions_for_changes
from payments.reconciliation.mirror import mirror_upsert
from payments.rollup import selectors, services
from payments.rollup.models import DailyRollup
from payments.rollup.sources import aggregate
from payments.rollup.tasks import rebuild_stale_rollups
from payments.sessions import services as sessions
from payments.sessions.models import PaySession
from tenants.services import Actor, tenant_update

pytestmark = pytest.mark.django_db

NEW_YORK = "America/New_York"
# 23:58 on 1 March in New York is 04:58 on 2 March in UTC.
BEFORE_MIDNIGHT = datetime(2025, 3, 2, 4, 58, tzinfo=UTC)


class Clock:
    """timezone.now() for everything the services stamp (auto_now_add included)."""

    def __init__(self, monkeypatch, start: datetime):
        self.now = start
        monkeypatch.setattr(timezone, "now", lambda: self.now)

    def advance(self, **delta) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch, BEFORE_MIDNIGHT)


@pytest.fixture
def acme(world):
    """Acme in New York, its rollup built (empty), agents' sessions reaching the Twilio
    Pay simulator."""
    tw = world.acme
    tenant_update(tenant=tw.tenant, actor=Actor.system("test"), time_zone=NEW_YORK)
    tw.tenant.refresh_from_db()
    services.rollup_rebuild(tenant_id=tw.tenant.pk)
    return tw


@pytest.fixture
def twilio(acme, twilio_sim, settings, monkeypatch):
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    settings.TWILIO_API_BASE_URL = twilio_sim.url
    connector = acme.connectors["Stripe_Dev"]  # the only one the simulator knows: others are refused
    twilio_sim.register_account(
        acme.tenant.twilio_account_sid,
        acme.auth_token,
        {"Stripe_Dev": {"stripe_secret_key": connector_stripe_secret_key(connector=connector)}},
    )
    return twilio_sim


def assert_rollup_equals_rows(tenant) -> None:
    differences = selectors.rollup_differences(tenant=tenant)
    assert differences == [], differences


def stored(tenant) -> dict:
    return {
        (str(r.day), r.connector.unique_name, r.currency): {
            "sessions": r.sessions,
            "succeeded": r.succeeded,
            "failed": r.failed,
            "gross": r.gross,
            "refunds": r.refunds,
            "fees": r.fees,
            "net": r.net,
            "failures": r.failures,
        }
        for r in DailyRollup.objects.filter(tenant=tenant).select_related("connector")
    }


# --- Writes through the services ---------------------------------------------------------


def ivr_session(tw, amount_minor=1250) -> PaySession:
    flow = ivr.payment_flow_create(
        tenant=tw.tenant,
        actor=Actor.system("test"),
        name=f"Flow {secrets.token_hex(3)}",
        connector=tw.connectors["Stripe_Prod"],
    )
    payment = ivr.ivr_payment_start(flow=flow, call_sid="CA" + secrets.token_hex(16), amount_minor=amount_minor)
    return payment.pay_session


def agent_session(tw, connector="Stripe_Dev", amount_minor=2000) -> PaySession:
    request = sessions.SessionRequest(call_sid="CA" + secrets.token_hex(16), amount_minor=amount_minor, currency="USD")
    try:
        session, _ = sessions.pay_session_start(
            tenant=tw.tenant,
            connector=tw.connectors[connector],
            request=request,
            idempotency_key=None,
            actor=Actor.system("test"),
        )
    except Exception:  # a create Twilio refused: the session is stored, failed
        session = PaySession.objects.filter(tenant=tw.tenant, call_sid=request.call_sid).get()
    return session


def callback(session, on_commit, **params) -> None:
    base = {"AccountSid": session.tenant.twilio_account_sid, "CallSid": session.call_sid, "Sid": session.payment_sid}
    with on_commit(execute=True):  # the applier runs after the commit, as in production
        sessions.pay_callback_record(tenant_id=session.tenant_id, session_id=session.pk, raw_params={**base, **params})


def _ts(when: datetime) -> int:
    return int(when.timestamp())


def charge(session, *, charge_id, fee, created, amount=None, expand=True) -> dict:
    amount = session.amount_minor if amount is None else amount
    txn = {
        "object": "balance_transaction",
        "id": f"txn_{charge_id}",
        "amount": amount,
        "fee": fee,
        "net": amount - fee,
        "currency": "usd",
        "created": _ts(created),
        "type": "charge",
        "reporting_category": "charge",
        "source": charge_id,
        "status": "pending",
        "available_on": _ts(created + timedelta(days=2)),
    }
    return {
        "object": "charge",
        "id": charge_id,
        "amount": amount,
        "amount_refunded": 0,
        "currency": "usd",
        "status": "succeeded",
        "created": _ts(created),
        "description": f"Order 7 · Paydesk {session.uuid}",
        "payment_intent": f"pi_{charge_id[3:]}",
        "balance_transaction": txn if expand else txn["id"],
        "metadata": {},
    }, txn


def refund(charge_id, *, refund_id, amount, created, status="succeeded") -> dict:
    return {
        "object": "refund",
        "id": refund_id,
        "amount": amount,
        "currency": "usd",
        "status": status,
        "charge": charge_id,
        "created": _ts(created),
        "balance_transaction": f"txn_{refund_id}",
    }


def dispute(charge_id, *, created) -> dict:
    return {
        "object": "dispute",
        "id": f"dp_{charge_id[3:]}",
        "amount": 1250,
        "currency": "usd",
        "status": "needs_response",
        "reason": "fraudulent",
        "charge": charge_id,
        "created": _ts(created),
        "balance_transactions": [
            {
                "object": "balance_transaction",
                "id": f"txn_dp_{charge_id}",
                "amount": -1250,
                "fee": 1500,
                "net": -2750,
                "currency": "usd",
                "created": _ts(created),
                "type": "adjustment",
                "reporting_category": "dispute",
                "source": f"dp_{charge_id[3:]}",
                "status": "available",
            }
        ],
    }


def stripe(tw, *objects, connector="Stripe_Prod"):
    """What a webhook does: store the objects (the mirror refreshes the rollup's fees and
    net), then judge the sessions they touch, which records Stripe's refunds as refund rows
    (the rollup's refunds)."""
    instance = tw.connectors[connector]
    changed = mirror_upsert(connector=instance, objects=list(objects), observed_at=timezone.now())
    match_sessions(connector=instance, sessions=sessions_for_changes(instance, changed), now=timezone.now())


# --- The rollup equals the rows ------------------------------------------------------------


def test_rollup_equals_the_rows_after_sessions_callbacks_and_stripe_across_a_local_midnight(
    acme, twilio, clock, django_capture_on_commit_callbacks
):
    on_commit = django_capture_on_commit_callbacks
    # 23:58 and 23:59 on 1 March, New York: an IVR payment, an agent one, a create Twilio refuses.
    paid = ivr_session(acme, amount_minor=1250)
    clock.advance(minutes=1)
    cancelled = agent_session(acme)
    refused = agent_session(acme, connector="Stripe_Stage")
    assert refused.status == "failed"
    assert_rollup_equals_rows(acme.tenant)

    # After midnight (2 March): the first one succeeds, the second is cancelled, a third fails.
    clock.advance(minutes=3)
    callback(paid, on_commit, Result="success", PaymentConfirmationCode="ch_3Paid", DateUpdated="2025-03-02T05:02:00Z")
    sessions.pay_session_cancel(session=cancelled, actor=Actor.system("test"))
    declined = ivr_session(acme, amount_minor=990)
    callback(declined, on_commit, Result="payment-connector-error", PayErrorCode="64012")
    assert_rollup_equals_rows(acme.tenant)

    # A late callback for a session that has ended changes nothing; expiry ends a stale one.
    callback(declined, on_commit, Result="success", PaymentConfirmationCode="ch_3Late")
    stale = ivr_session(acme, amount_minor=500)
    clock.advance(hours=2)
    assert sessions.pay_sessions_expire() == 1
    stale.refresh_from_db()
    assert stale.status == "expired"
    assert_rollup_equals_rows(acme.tenant)

    # Stripe, in any order: the refund before its charge, the balance transaction after it.
    refunded_at = clock.advance(hours=10)  # 2 March, afternoon
    stripe(acme, refund("ch_3Paid", refund_id="re_1", amount=500, created=refunded_at))
    assert_rollup_equals_rows(acme.tenant)
    paid_charge, paid_txn = charge(paid, charge_id="ch_3Paid", fee=66, created=BEFORE_MIDNIGHT, expand=False)
    stripe(acme, paid_charge)
    assert_rollup_equals_rows(acme.tenant)
    stripe(acme, paid_txn)
    stripe(
        acme,
        dispute("ch_3Paid", created=refunded_at),
        refund("ch_3Paid", refund_id="re_2", amount=100, created=refunded_at, status="pending"),
    )
    assert_rollup_equals_rows(acme.tenant)

    # A charge naming a session of another connector (a shared Stripe account) counts there only.
    other, _ = charge(cancelled, charge_id="ch_3Other", fee=70, created=BEFORE_MIDNIGHT)
    stripe(acme, other, connector="Stripe_Prod")
    assert_rollup_equals_rows(acme.tenant)

    assert stored(acme.tenant) == {
        ("2025-03-01", "Stripe_Prod", "USD"): {
            "sessions": 1, "succeeded": 1, "failed": 0, "gross": 1250,
            "refunds": 0, "fees": 66, "net": 1184, "failures": {},
        },
        ("2025-03-01", "Stripe_Dev", "USD"): {
            "sessions": 1, "succeeded": 0, "failed": 1, "gross": 0,
            "refunds": 0, "fees": 0, "net": 0, "failures": {"cancelled": 1},
        },
        ("2025-03-01", "Stripe_Stage", "USD"): {
            "sessions": 1, "succeeded": 0, "failed": 1, "gross": 0,
            "refunds": 0, "fees": 0, "net": 0, "failures": {"failed": 1},
        },
        ("2025-03-02", "Stripe_Prod", "USD"): {
            "sessions": 2, "succeeded": 0, "failed": 2, "gross": 0,
            "refunds": 500, "fees": 0, "net": 0, "failures": {"expired": 1, "payment-connector-error": 1},
        },
    }  # fmt: skip

    # The pending refund succeeds a day later: it counts on the day Stripe made it.
    clock.advance(days=1)
    stripe(acme, refund("ch_3Paid", refund_id="re_2", amount=100, created=refunded_at))
    assert stored(acme.tenant)[("2025-03-02", "Stripe_Prod", "USD")]["refunds"] == 600
    assert_rollup_equals_rows(acme.tenant)
    call_command("rollup_check", tenant=["acme"])  # exits 0: equal


def test_rollup_follows_a_change_of_time_zone_and_reports_read_the_rows_meanwhile(
    acme, clock, django_capture_on_commit_callbacks, api_for
):
    paid = ivr_session(acme, amount_minor=1250)  # 23:58 on 1 March in New York, 13:58 on 2 March in Tokyo
    callback(paid, django_capture_on_commit_callbacks, Result="success")
    api = api_for(acme.raw_key)
    params = {"date_from": "2025-03-01", "date_to": "2025-03-02"}
    assert [d["date"] for d in api.get("/api/v1/reports/daily-summary", params).json()["days"]] == ["2025-03-01"]

    tenant_update(tenant=acme.tenant, actor=Actor.system("test"), time_zone="Asia/Tokyo")
    acme.tenant.refresh_from_db()
    # Not rebuilt yet: a session counted meanwhile goes to the rollup in its old zone, and
    # reports read the rows, in the new one.
    ivr_session(acme, amount_minor=700)
    assert not selectors.rollup_current(tenant=acme.tenant)
    data = api.get("/api/v1/reports/daily-summary", params).json()
    assert [(d["date"], d["sessions"]) for d in data["days"]] == [("2025-03-02", 2)]
    assert data["time_zone"] == "Asia/Tokyo"

    rebuild_stale_rollups.delay()  # beat's task, once a minute
    assert selectors.rollup_current(tenant=acme.tenant)
    assert_rollup_equals_rows(acme.tenant)
    assert stored(acme.tenant)[("2025-03-02", "Stripe_Prod", "USD")]["sessions"] == 2  # `later` included
    assert set(stored(acme.tenant)) == {("2025-03-02", "Stripe_Prod", "USD")}
    assert api.get("/api/v1/reports/daily-summary", params).json() == data


def test_rollup_is_kept_per_tenant(world, clock, django_capture_on_commit_callbacks):
    for tw in (world.acme, world.globex):
        services.rollup_rebuild(tenant_id=tw.tenant.pk)
    mine = ivr_session(world.acme)
    callback(mine, django_capture_on_commit_callbacks, Result="success")
    ivr_session(world.globex, amount_minor=300)

    assert stored(world.acme.tenant)[("2025-03-02", "Stripe_Prod", "USD")]["gross"] == 1250
    assert stored(world.globex.tenant)[("2025-03-02", "Stripe_Prod", "USD")]["sessions"] == 1
    for tw in (world.acme, world.globex):
        assert_rollup_equals_rows(tw.tenant)


# --- Reports read it ------------------------------------------------------------------------


@pytest.fixture
def month_of_payments(acme, clock, django_capture_on_commit_callbacks):
    for _ in range(3):
        for amount, result in ((1250, "success"), (990, "payment-connector-error")):
            s = ivr_session(acme, amount_minor=amount)
            callback(s, django_capture_on_commit_callbacks, Result=result)
        clock.advance(days=1)
    return acme


def _tables(queries) -> str:
    return " ".join(q["sql"] for q in queries.captured_queries)


def test_daily_summary_and_dashboard_read_the_rollup_not_the_sessions(month_of_payments, api_for, client):
    api = api_for(month_of_payments.raw_key)
    params = {"date_from": "2025-02-28", "date_to": "2025-03-05"}

    with CaptureQueriesContext(connection) as queries:
        from_rollup = api.get("/api/v1/reports/daily-summary", params).json()
    assert "rollup_dailyrollup" in _tables(queries) and "payments_paysession" not in _tables(queries)

    # The same numbers summed from the rows (a session filter takes that path).
    from_rows = api.get("/api/v1/reports/daily-summary", {**params, "channel": "ivr"}).json()
    assert from_rollup == from_rows
    assert [(d["date"], d["sessions"], d["gross"], d["failures"]) for d in from_rollup["days"]] == [
        ("2025-03-01", 2, "12.50", {"payment-connector-error": 1}),
        ("2025-03-02", 2, "12.50", {"payment-connector-error": 1}),
        ("2025-03-03", 2, "12.50", {"payment-connector-error": 1}),
    ]

    client.force_login(month_of_payments.owner)
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/admin/reports/financedashboard/", {"days": "30"})
    assert page.status_code == 200
    # Sessions are read only through the open exceptions (by primary key, for their
    # currency), never scanned for the totals and charts.
    touching = [q["sql"] for q in queries.captured_queries if "payments_paysession" in q["sql"]]
    assert all("reconciliation_reconciliationitem" in sql and "resolved_at" in sql for sql in touching), touching


def test_rollup_check_finds_a_difference_and_fix_rebuilds(month_of_payments, capsys):
    DailyRollup.objects.filter(tenant=month_of_payments.tenant).update(gross=1)

    with pytest.raises(CommandError, match="differ"):
        call_command("rollup_check", tenant=["acme"])
    assert "2025-03-01 connector" in capsys.readouterr().out

    call_command("rollup_check", tenant=["acme"], fix=True)
    assert_rollup_equals_rows(month_of_payments.tenant)


def test_direct_aggregation_is_what_the_rollup_is_built_from(month_of_payments):
    tenant = month_of_payments.tenant
    built = aggregate(tenant_id=tenant.pk, zone=tenant.time_zone)
    assert sum(t.sessions for t in built.values()) == PaySession.objects.filter(tenant=tenant).count() == 6
