"""manage.py reconcile (progress on stderr, --tenant/--connector/--since, --json) and the
beat schedule (django-celery-beat rows, editable in the admin)."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_celery_beat.models import PeriodicTask

from config.celery import app
from payments.reconciliation.models import SessionReconciliation, State
from payments.reconciliation.tasks import sync_all_connectors
from tests.reconciliation.conftest import paid_session, set_code

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str, int]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("reconcile", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        code = exc.code
    return out.getvalue(), err.getvalue(), code


def test_reconcile_one_connector_with_a_progress_bar(dev, stripe_objects):
    sessions = [paid_session(dev) for _ in range(3)]
    for session in sessions:
        set_code(session, stripe_objects.payment(session)["id"])

    out, err, code = run("--tenant", "acme", "--connector", "Stripe_Dev")

    assert code == 0
    assert "acme/Stripe_Dev: " in out and "matched 3" in out
    assert "acme/Stripe_Dev charges" in err and "3 read" in err
    assert "acme/Stripe_Dev sessions" in err and "[" + "#" * 30 + "] 3/3" in err
    assert set(SessionReconciliation.objects.values_list("state", flat=True)) == {State.MATCHED}


def test_since_limits_the_sessions_and_the_stripe_window_and_json_is_one_object(dev, stripe_objects):
    session = paid_session(dev)
    set_code(session, stripe_objects.payment(session)["id"])

    out, _, code = run("--tenant", "acme", "--connector", "Stripe_Dev", "--since", "2999-01-01", "--json")

    assert code == 0
    [entry] = json.loads(out)["connectors"]
    assert entry["connector"] == "Stripe_Dev" and entry["objects"] == 0 and entry["states"] == {}
    assert not SessionReconciliation.objects.exists()


def test_a_failing_connector_exits_non_zero(dev, fake_stripe):
    fake_stripe.faults = [("charges", 401)]
    out, _, code = run("--tenant", "acme", "--connector", "Stripe_Dev")
    assert code == 1 and "FAILED" in out and "rejected the key" in out


@pytest.mark.parametrize(
    "args,message",
    [
        (["--connector", "Stripe_Dev"], "needs --tenant"),
        (["--tenant", "nope"], "No tenant 'nope'"),
        (["--tenant", "acme", "--connector", "Nope"], "No active connector"),
        (["--tenant", "acme", "--since", "yesterday"], "--since"),
    ],
)
def test_bad_arguments_are_one_line_errors(world, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("reconcile", *args)


def test_the_schedule_is_in_the_database_and_names_a_real_task():
    rows = {t.name: t for t in PeriodicTask.objects.filter(task__startswith="payments.reconciliation.")}
    incremental = rows["reconciliation: incremental sync (every 5 minutes)"]
    nightly = rows["reconciliation: nightly wide sync (03:17 UTC)"]
    assert (incremental.interval.every, incremental.interval.period) == (5, "minutes")
    assert (nightly.crontab.minute, nightly.crontab.hour) == ("17", "3")
    assert json.loads(incremental.kwargs) == {"mode": "incremental"} and json.loads(nightly.kwargs) == {
        "mode": "nightly"
    }
    assert all(t.enabled for t in rows.values())
    assert {t.task for t in rows.values()} == {sync_all_connectors.name} and sync_all_connectors.name in app.tasks


def test_the_scheduled_task_reconciles_every_active_connector(world, settings, monkeypatch):
    calls = []
    monkeypatch.setattr("payments.reconciliation.tasks.sync_connector.delay", lambda *a: calls.append(a))
    world.acme.connectors["Stripe_Stage"].is_active = False
    world.acme.connectors["Stripe_Stage"].save()

    assert sync_all_connectors(mode="nightly") == 5
    assert ("nightly" in {a[2] for a in calls}) and len(calls) == 5
