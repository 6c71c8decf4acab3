"""Session lifetime: 15 minutes idle, renewed by activity; 12 hours at most."""

import json
import subprocess
import sys

from django.conf import settings as django_settings

from tenants.models import AuditEvent
from tests.security.conftest import sign_in
from tests.test_settings import PRODUCTION_ENV


def signed_in(client) -> bool:
    response = client.get("/admin/")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def test_a_session_idle_for_15_minutes_is_over(client, staff, clock):
    sign_in(client, "alice")
    clock.shift(14 * 60)
    assert signed_in(client)
    clock.shift(14 * 60)
    assert signed_in(client), "each request renews the idle limit"

    clock.shift(15 * 60 + 1)

    assert not signed_in(client)
    assert client.get("/admin/")["Location"].startswith("/admin/login/")


def test_activity_never_keeps_a_session_beyond_12_hours(client, staff, clock):
    sign_in(client, "alice")
    elapsed = 0
    while elapsed + 14 * 60 < 12 * 3600:  # a request every 14 minutes: never idle
        clock.shift(14 * 60)
        elapsed += 14 * 60
        assert signed_in(client)

    clock.shift(12 * 3600 - elapsed + 1)  # 12 h and a second after the login, a few minutes idle

    assert not signed_in(client)
    event = AuditEvent.objects.get(action="admin.session_expired")
    assert event.changes == {"reason": "max_age", "seconds": 12 * 3600}


def test_a_new_login_starts_a_new_12_hours(client, staff, clock):
    sign_in(client, "alice")
    clock.shift(11 * 3600)
    client.post("/admin/logout/")
    sign_in(client, "alice")
    for _ in range(9):  # to 12 h 30 min after the first login, 1 h 30 min after the second
        clock.shift(10 * 60)
        assert signed_in(client)


def test_the_session_cookie_is_httponly_and_samesite(client, staff):
    response = sign_in(client, "alice")
    cookie = response.cookies[django_settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == 900


def test_production_defaults_require_mfa_secure_cookies_and_15_minutes():
    code = (
        "import django,json,os;django.setup();from django.conf import settings as s;"
        "print(json.dumps([s.PAYDESK_REQUIRE_MFA, s.SESSION_COOKIE_SECURE, s.SESSION_COOKIE_AGE,"
        " s.SESSION_SAVE_EVERY_REQUEST, s.PAYDESK_SESSION_MAX_AGE_SECONDS, s.OTP_WEBAUTHN_RP_ID,"
        " s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds()]))"
    )
    first_run = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings.base"}
    results = []
    for env in (PRODUCTION_ENV, first_run):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    production, first = results
    assert production == [True, True, 900, True, 43200, "paydesk.example.com", 10, 1800.0]
    assert first[:2] == [False, False], "the first run (DEBUG) neither requires MFA nor https cookies"
