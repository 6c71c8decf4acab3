"""A payment's result reconciles its connector within seconds ("reconcile soon"), with no
one pressing "Reconcile now" and no scheduled run: what makes the first run show
`matched` right after `simulate_payment`."""

import pytest

from payments.reconciliation import services, tasks
from payments.reconciliation.models import State
from payments.sessions import extensions
from payments.sessions.extensions import SessionResult
from tests.payments.test_pay_sessions_e2e import Agent


@pytest.fixture
def queued(monkeypatch):
    """What reconcile_soon queues, instead of running it."""
    calls = []
    monkeypatch.setattr(tasks.reconcile_after_results, "apply_async", lambda args, **kw: calls.append(args))
    return calls


@pytest.fixture
def soon_on(settings):
    settings.PAYDESK_RECONCILIATION_AFTER_RESULT = True


def _result(connector_id=7, status="succeeded", session_id=1):
    return SessionResult(tenant_id=3, connector_id=connector_id, session_id=session_id, status=status)


@pytest.mark.django_db(transaction=True)
def test_a_payment_is_matched_with_stripe_right_after_its_result(desk, api_for, soon_on):
    agent = Agent(desk, api_for(desk.world.acme.raw_key))
    agent.start(charge_amount="12.50", currency="USD")
    agent.enter_card()
    assert agent.complete()["status"] == "succeeded"

    # No reconcile call: the result callback's applier queued it (in-process in tests).
    reconciliation = agent.get()["reconciliation"]
    assert reconciliation["state"] == State.MATCHED
    assert (reconciliation["stripe_amount_minor"], reconciliation["stripe_currency"]) == (1250, "USD")


def test_results_on_one_connector_queue_one_run_until_it_starts(soon_on, queued):
    services.reconcile_soon([_result(session_id=1), _result(session_id=2)])
    services.reconcile_soon([_result(session_id=3)])
    assert queued == [(3, 7)]

    services.reconcile_soon_started(connector_id=7)
    services.reconcile_soon([_result(session_id=4)])
    assert queued == [(3, 7), (3, 7)]
    services.reconcile_soon_started(connector_id=7)


def test_each_connector_with_a_result_gets_its_own_run(soon_on, queued):
    services.reconcile_soon([_result(connector_id=7), _result(connector_id=8)])
    assert sorted(queued) == [(3, 7), (3, 8)]
    for connector_id in (7, 8):
        services.reconcile_soon_started(connector_id=connector_id)


def test_cancelled_and_expired_sessions_queue_nothing(soon_on, queued):
    services.reconcile_soon([_result(status="cancelled"), _result(status="expired")])
    assert queued == []


def test_turned_off_it_queues_nothing(settings, queued):
    settings.PAYDESK_RECONCILIATION_AFTER_RESULT = False
    services.reconcile_soon([_result()])
    assert queued == []


def test_a_failing_result_listener_is_logged_and_the_others_still_hear(monkeypatch, caplog):
    heard = []

    def broken(results):
        raise RuntimeError("boom")

    monkeypatch.setattr(extensions, "_result_listeners", {"broken": broken, "ok": heard.extend})
    extensions.results_recorded([_result()])
    assert heard == [_result()]
    assert "result listener broken failed" in caplog.text


@pytest.mark.django_db
def test_a_run_for_another_tenants_connector_does_nothing(world, queued):
    connector = world.acme.connectors["Stripe_Dev"]
    assert tasks.reconcile_after_results(world.globex.tenant.pk, connector.pk) == {
        "skipped": "no such active connector in this tenant"
    }
