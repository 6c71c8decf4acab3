"""Lockout: ten failed logins lock a username (or an address) for 30 minutes."""

import time

from axes.models import AccessAttempt
from django.urls import reverse

from tenants.models import AuditEvent
from tests.factories import UserFactory
from tests.security.conftest import enrol_totp, sign_in, totp_code

LOCKED = "Sign-in is locked"


def fail(client, username: str, times: int = 10, **extra) -> None:
    """`times` wrong passwords: the first nine re-show the form, the tenth sets the lock."""
    for attempt in range(1, times + 1):
        response = sign_in(client, username, password="wrong", **extra)
        if attempt < 10:
            assert response.status_code == 200, "a plain failure re-shows the form"
            assert b"Please enter the correct username and password" in response.content
        else:
            assert response.status_code == 429 and LOCKED in response.content.decode()


def is_signed_in(client) -> bool:
    return client.get("/admin/").status_code == 200


def test_the_eleventh_login_is_refused_even_with_the_right_password(client, staff):
    fail(client, "alice")

    response = sign_in(client, "alice")

    assert response.status_code == 429
    assert LOCKED in response.content.decode() and "30 minutes" in response.content.decode()
    assert not is_signed_in(client)
    locked = AuditEvent.objects.get(action="admin.locked_out")
    assert locked.changes["username"] == "alice" and locked.changes["failures"] == 10
    assert AuditEvent.objects.filter(action="admin.login_refused_locked").count() == 1
    assert not AuditEvent.objects.filter(action="admin.login").exists()


def test_the_lock_lasts_30_minutes_then_the_right_password_works(client, staff, clock):
    fail(client, "alice")
    clock.shift(29 * 60 + 50)
    assert sign_in(client, "alice").status_code == 429  # tries during the lock do not extend it

    clock.shift(15)

    assert sign_in(client, "alice").status_code == 302
    assert is_signed_in(client)


def test_an_unknown_username_is_answered_exactly_like_a_real_one(client, staff):
    answers = {}
    for username, address in [("alice", "192.0.2.10"), ("nobody-by-this-name", "192.0.2.11")]:
        first = sign_in(client, username, password="wrong", REMOTE_ADDR=address)
        fail(client, username, times=8, REMOTE_ADDR=address)
        assert sign_in(client, username, password="wrong", REMOTE_ADDR=address).status_code == 429
        locked = sign_in(client, username, password="pw", REMOTE_ADDR=address)
        answers[username] = (first.status_code, first.context["form"].errors.as_text(), locked.status_code)
        body = locked.content.decode()
        answers[username] += (body[body.index('<div id="content"') :],)
    assert answers["alice"] == answers["nobody-by-this-name"]
    assert answers["alice"][2] == 429


def test_ten_failures_from_one_address_lock_every_username_from_it(client, staff):
    for n in range(10):
        sign_in(client, f"guess{n}", password="wrong", REMOTE_ADDR="198.51.100.7")

    assert sign_in(client, "alice", REMOTE_ADDR="198.51.100.7").status_code == 429
    assert sign_in(client, "alice", REMOTE_ADDR="198.51.100.8").status_code == 302


def test_wrong_second_factor_codes_count_as_failed_logins(client, staff):
    device = enrol_totp(staff)
    sign_in(client, "alice")
    wrong = f"{(int(totp_code(device.base32_secret)) + 500_000) % 1_000_000:06d}"
    verify = reverse("security:verify")
    for _ in range(9):
        assert client.post(verify, {"code": wrong}).status_code == 400

    response = client.post(verify, {"code": wrong})

    assert response.status_code == 429 and LOCKED in response.content.decode()
    assert client.get("/admin/")["Location"].startswith(reverse("admin:login")), "signed out"
    assert sign_in(client, "alice").status_code == 429
    assert AuditEvent.objects.filter(action="mfa.verify_failed").count() == 10


def test_the_lock_is_listed_for_a_superuser_and_lifting_it_is_audited(client, staff, superuser):
    fail(client, "alice", REMOTE_ADDR="203.0.113.9")
    admin = client.__class__()
    admin.force_login(superuser)

    listing = admin.get("/admin/security/loginlock/", {"locked": "yes"})
    assert listing.status_code == 200
    assert b"alice" in listing.content and b"203.0.113.9" in listing.content
    attempt = AccessAttempt.objects.get(username="alice")
    response = admin.post(
        "/admin/security/loginlock/", {"action": "lift", "_selected_action": [attempt.pk]}, follow=True
    )

    assert b"1 lock(s) lifted" in response.content
    assert sign_in(client, "alice", REMOTE_ADDR="203.0.113.9").status_code == 302
    lifted = AuditEvent.objects.get(action="admin.lock_lifted")
    assert lifted.actor == "user:root"
    assert lifted.changes == {"username": "alice", "ip_address": "203.0.113.9", "failures": 10}


def test_tenant_managers_do_not_see_the_locks(client, world):
    client.force_login(world.acme.owner)
    assert client.get("/admin/security/loginlock/").status_code == 403
    assert b"Login locks" not in client.get("/admin/").content


def test_a_failed_attempt_keeps_no_password(client, staff):
    sign_in(client, "alice", password="correct-horse-battery-staple")
    attempt = AccessAttempt.objects.get(username="alice")
    assert "correct-horse" not in attempt.post_data
    assert "correct-horse" not in str(list(AuditEvent.objects.values_list("changes", flat=True)))


def test_a_successful_login_clears_the_earlier_failures(client, staff):
    fail(client, "alice", times=9)
    assert sign_in(client, "alice").status_code == 302
    client.post(reverse("admin:logout"))
    fail(client, "alice", times=9)
    assert sign_in(client, "alice").status_code == 302


def test_the_clock_fixture_moves_time_rather_than_sleeping(clock):
    before = time.time()
    clock.shift(3600)
    assert time.time() - before >= 3600


def test_another_user_is_not_locked_by_alices_failures(client, staff):
    UserFactory(username="bob")
    fail(client, "alice", REMOTE_ADDR="192.0.2.1")
    assert sign_in(client, "bob", REMOTE_ADDR="192.0.2.2").status_code == 302
