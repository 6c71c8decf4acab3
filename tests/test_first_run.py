"""The first run (no environment: SQLite, tasks in-process) under concurrent callbacks,
in a fresh interpreter: runserver serves Twilio's callbacks in threads, and each
callback applies its session's events in the same thread, so several connections write
to SQLite at once."""

import json
import subprocess
import sys

SCRIPT = r"""
import json, os, sys, threading
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
import django
django.setup()
from django.core.management import call_command
from django.db import connection
call_command("migrate", verbosity=0)
from connectors.services import connector_create
from payments.sessions import callbacks, services
from payments.sessions.models import PayEvent, PaySession
from tenants.services import Actor, tenant_create

actor = Actor.system("test")
tenant = tenant_create(slug="acme", name="Acme", twilio_account_sid="AC" + "1" * 32,
                       twilio_auth_token="ab" * 16, actor=actor)
connector = connector_create(tenant=tenant, unique_name="Stripe_Dev", environment="development",
                             stripe_secret_key="sk_test_" + "x" * 24, actor=actor)
sessions = []
for n in range(8):
    s = PaySession(tenant=tenant, connector=connector, call_sid=f"CA{n:032d}", payment_sid=f"PK{n:032d}",
                   idempotency_key=f"k{n}", request_fingerprint="f" * 64, amount_minor=1250, currency="USD")
    s.required_fields = callbacks.initial_required(s)
    s.save()
    sessions.append(s)
errors = []

def caller(session):
    try:
        required = ["PaymentCardNumber", "ExpirationDate", "SecurityCode", "PostalCode"]
        for step in range(6):
            params = {"AccountSid": tenant.twilio_account_sid, "CallSid": session.call_sid, "Sid": session.payment_sid,
                      "Capture": "payment-card-number", "PartialResult": "true", "PaymentCardNumber": "x" * (step + 1),
                      "Required": ",".join(required), "DateUpdated": f"2026-11-21T10:00:0{step}.000Z"}
            services.pay_callback_record(tenant_id=tenant.pk, session_id=session.pk, raw_params=params)
    except Exception as exc:
        errors.append(repr(exc))
    finally:
        connection.close()

threads = [threading.Thread(target=caller, args=(s,)) for s in sessions]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({
    "engine": connection.vendor,
    "errors": errors,
    "stored": PayEvent.objects.count(),
    "unapplied": PayEvent.objects.filter(applied_at__isnull=True).count(),
    "capturing": sorted(set(PaySession.objects.values_list("capturing_field", flat=True))),
}))
"""


def test_concurrent_callbacks_on_the_first_run_database_are_all_stored_and_applied(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["engine"] == "sqlite"
    assert result["errors"] == []
    assert (result["stored"], result["unapplied"]) == (8 * 6, 0)
    assert result["capturing"] == ["payment-card-number"]
