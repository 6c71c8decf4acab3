"""Second factor: enrolment, sign-in, recovery codes, the gate, the superuser's reset."""

import re
import time

from django.db import connection
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse
from django_otp import device_classes
from django_otp_webauthn.models import WebAuthnCredential

from tenants.models import AuditEvent
from tenants.security import services
from tenants.security.middleware import mfa_required as mfa_required_decorator
from tenants.security.models import RecoveryCode, RecoveryCodeDevice, TotpDevice
from tenants.services import Actor
from tests.factories import UserFactory
from tests.security.conftest import enrol_totp, sign_in, totp_code

VERIFY = reverse("security:verify")
OVERVIEW = reverse("security:overview")


def actions(user=None) -> list[str]:
    events = AuditEvent.objects.order_by("id")
    if user is not None:
        events = events.filter(target_id=str(user.pk))
    return list(events.values_list("action", flat=True))


def next_step_code(device: TotpDevice) -> str:
    # The code of the coming 30 s step: accepted (one step of tolerance) even when this
    # step's code was already spent by the enrolment.
    return totp_code(device.base32_secret, at=time.time() + 30)


# --- Enrolment ------------------------------------------------------------------------


def test_with_mfa_required_a_user_without_a_device_is_sent_to_enrol_before_any_admin_page(client, staff, mfa_required):
    response = sign_in(client, "alice")
    assert response.status_code == 302 and response["Location"] == "/admin/"
    for page in ["/admin/", "/admin/tenants/tenant/", "/admin/auth/user/"]:
        response = client.get(page)
        assert response.status_code == 302
        assert response["Location"].startswith(f"{OVERVIEW}?next=")
    page = client.get(OVERVIEW, {"next": "/admin/"})
    assert page.status_code == 200
    assert b"Set up an authenticator app" in page.content
    assert b"Add a security key or passkey" in page.content


def test_enrolling_an_authenticator_app_with_a_code_from_its_secret_opens_the_admin(client, staff, mfa_required):
    sign_in(client, "alice")
    page = client.get(reverse("security:totp"), {"next": "/admin/"})
    assert page.status_code == 200 and b"<svg" in page.content  # the QR code
    device = TotpDevice.objects.get(user=staff, confirmed=False)
    shown_secret = "".join(page.context["secret_groups"])
    assert shown_secret == device.base32_secret

    response = client.post(
        reverse("security:totp"), {"device": device.pk, "code": totp_code(shown_secret), "next": "/admin/"}
    )

    assert response.status_code == 200
    codes = response.context["codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        assert code in response.content.decode()
    assert client.get("/admin/").status_code == 200
    assert actions(staff)[-2:] == ["mfa.device_added", "mfa.recovery_codes_generated"]
    assert AuditEvent.objects.get(action="mfa.device_added").changes == {"device": "totp", "name": "Authenticator app"}


def test_a_wrong_enrolment_code_is_refused_keeps_the_secret_and_is_audited(client, staff, mfa_required):
    sign_in(client, "alice")
    client.get(reverse("security:totp"))
    device = TotpDevice.objects.get(user=staff, confirmed=False)
    wrong = f"{(int(totp_code(device.base32_secret)) + 1) % 1_000_000:06d}"

    response = client.post(reverse("security:totp"), {"device": device.pk, "code": wrong})

    assert response.status_code == 400
    assert b"That code was not accepted" in response.content
    assert response.context["device"].pk == device.pk  # same QR code, the app need not be set up again
    assert not TotpDevice.objects.filter(user=staff, confirmed=True).exists()
    assert client.get("/admin/").status_code == 302
    assert "mfa.enrolment_failed" in actions(staff)


def test_the_totp_secret_is_encrypted_at_rest_and_recovery_codes_are_only_hashed(staff):
    device = enrol_totp(staff)
    codes = services.recovery_codes_generate(user=staff, actor=Actor.system("test"))
    hex_key = device.bin_key.hex()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM security_totpdevice")
        totp_rows = str(cursor.fetchall())
        cursor.execute("SELECT * FROM security_recoverycode")
        code_rows = str(cursor.fetchall())
    assert hex_key not in totp_rows and device.base32_secret not in totp_rows
    for code in codes:
        assert code not in code_rows and code.replace("-", "") not in code_rows
    assert RecoveryCode.objects.filter(device__user=staff).count() == 10


# --- Signing in -----------------------------------------------------------------------


def test_signing_in_asks_for_the_code_and_a_correct_code_opens_the_admin(client, staff, mfa_required):
    device = enrol_totp(staff)
    sign_in(client, "alice")

    response = client.get("/admin/password_change/")
    assert response.status_code == 302 and response["Location"].startswith(f"{VERIFY}?next=")
    prompt = client.get(response["Location"])
    assert prompt.status_code == 200 and b"Code from your authenticator app" in prompt.content

    response = client.post(VERIFY, {"code": next_step_code(device), "next": "/admin/password_change/"})

    assert response.status_code == 302 and response["Location"] == "/admin/password_change/"
    assert client.get("/admin/password_change/").status_code == 200
    assert actions(staff)[-1] == "mfa.verified"


def test_a_code_is_accepted_once_and_never_replayed(client, staff):
    device = enrol_totp(staff)
    code = next_step_code(device)
    sign_in(client, "alice")
    assert client.post(VERIFY, {"code": code}).status_code == 302
    client.post(reverse("admin:logout"))

    sign_in(client, "alice")
    response = client.post(VERIFY, {"code": code})

    assert response.status_code == 400 and b"That code was not accepted" in response.content
    assert client.get("/admin/").status_code == 302


def test_a_recovery_code_works_once_and_not_twice(client, staff, mfa_required):
    enrol_totp(staff)
    codes = services.recovery_codes_generate(user=staff, actor=Actor.system("test"))
    code = codes[3].upper()  # typed as the user likes: case and dashes do not matter

    sign_in(client, "alice")
    response = client.post(VERIFY, {"code": code, "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    verified = AuditEvent.objects.filter(action="mfa.verified").latest("id")
    assert verified.changes == {"device": "recovery_code", "recovery_codes_left": 9}
    client.post(reverse("admin:logout"))

    sign_in(client, "alice")
    response = client.post(VERIFY, {"code": code, "next": "/admin/"})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302
    assert AuditEvent.objects.filter(action="mfa.verify_failed").latest("id").changes == {"device": "recovery_code"}
    assert RecoveryCode.objects.filter(device__user=staff).count() == 9


def test_new_recovery_codes_replace_the_old_ones(client, staff):
    device = enrol_totp(staff)
    old = services.recovery_codes_generate(user=staff, actor=Actor.system("test"))
    sign_in(client, "alice")
    client.post(VERIFY, {"code": next_step_code(device)})

    response = client.post(reverse("security:recovery_codes"), {"next": "/admin/"})

    new = response.context["codes"]
    assert set(new).isdisjoint(old)
    assert RecoveryCodeDevice.objects.filter(user=staff).count() == 1
    assert services.mfa_verify(user=staff, token=new[0], actor=Actor.system("test"))
    assert not services.mfa_verify(user=staff, token=old[0], actor=Actor.system("test"))


def test_with_mfa_off_a_user_without_a_device_reaches_the_admin_but_one_with_a_device_is_asked(client, settings, db):
    settings.PAYDESK_REQUIRE_MFA = False
    UserFactory(username="bob")
    sign_in(client, "bob")
    assert client.get("/admin/").status_code == 200

    enrolled = UserFactory(username="carol")
    enrol_totp(enrolled)
    client.post(reverse("admin:logout"))
    sign_in(client, "carol")
    assert client.get("/admin/")["Location"].startswith(VERIFY)


def test_a_stolen_password_alone_cannot_add_a_device_or_new_recovery_codes(client, staff):
    enrol_totp(staff)
    sign_in(client, "alice")

    assert client.get(reverse("security:totp"))["Location"].startswith(VERIFY)
    assert client.get(OVERVIEW)["Location"].startswith(VERIFY)
    assert client.post(reverse("security:recovery_codes"))["Location"].startswith(VERIFY)
    begin = client.post(reverse("otp_webauthn:credential-registration-begin"), content_type="application/json")
    assert begin.status_code == 403
    assert TotpDevice.objects.filter(user=staff).count() == 1
    assert not RecoveryCodeDevice.objects.filter(user=staff).exists()


def test_the_console_prefix_and_the_decorator_apply_the_same_gate(client, staff, mfa_required):
    sign_in(client, "alice")
    # No console exists yet: the gate stands in front of the whole prefix regardless.
    response = client.get("/console/calls/")
    assert response.status_code == 302 and response["Location"].startswith(f"{OVERVIEW}?next=/console/calls/")

    request = RequestFactory().get("/elsewhere/")
    request.user = staff
    request.user.is_verified = lambda: False
    view = mfa_required_decorator(lambda request: HttpResponse("reached"))
    assert view(request)["Location"].startswith(f"{OVERVIEW}?next=/elsewhere/")
    request.user.is_verified = lambda: True
    assert view(request).content == b"reached"


def test_signing_in_and_out_are_never_behind_the_gate(client, staff, mfa_required):
    assert client.get(reverse("admin:login")).status_code == 200
    sign_in(client, "alice")
    assert client.post(reverse("admin:logout")).status_code == 200
    assert client.get("/admin/")["Location"].startswith(reverse("admin:login"))


# --- WebAuthn -------------------------------------------------------------------------


def test_passkeys_are_a_device_type_and_their_ceremony_endpoints_answer_options(client, staff, settings):
    assert WebAuthnCredential in list(device_classes())
    sign_in(client, "alice")

    register = client.post(reverse("otp_webauthn:credential-registration-begin"), content_type="application/json")
    assert register.status_code == 200
    options = register.json()
    assert options["rp"] == {"id": settings.OTP_WEBAUTHN_RP_ID, "name": "Paydesk"}
    assert options["user"]["name"] == "alice" and len(options["challenge"]) >= 32
    assert register["Cache-Control"].find("no-store") >= 0

    authenticate = client.post(reverse("otp_webauthn:credential-authentication-begin"), content_type="application/json")
    assert authenticate.status_code == 200
    assert authenticate.json()["rpId"] == settings.OTP_WEBAUTHN_RP_ID
    # A forged answer is refused and audited as a failed second factor.
    complete = client.post(
        reverse("otp_webauthn:credential-authentication-complete"),
        data={"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}},
        content_type="application/json",
    )
    assert complete.status_code >= 400
    assert AuditEvent.objects.filter(action="mfa.verify_failed", changes__device="webauthn").exists()


def test_a_passkey_never_replaces_the_password(client, db):
    response = client.post(reverse("otp_webauthn:credential-authentication-begin"), content_type="application/json")
    assert response.status_code == 403


# --- The superuser's reset ------------------------------------------------------------


def test_a_superuser_resets_a_users_second_factor_from_the_admin_and_it_is_audited(client, staff, superuser):
    enrol_totp(staff)
    services.recovery_codes_generate(user=staff, actor=Actor.system("test"))
    client.force_login(superuser)
    changelist = client.get("/admin/auth/user/")
    assert re.search(rb"app, 10 recovery codes", changelist.content)

    response = client.post(
        "/admin/auth/user/", {"action": "reset_second_factor", "_selected_action": [staff.pk]}, follow=True
    )

    assert response.status_code == 200 and b"Second factor reset for 1 user" in response.content
    assert not services.mfa_devices(staff)
    event = AuditEvent.objects.get(action="mfa.devices_reset")
    assert event.actor == "user:root" and event.target_id == str(staff.pk)
    assert event.changes == {"devices": ["recovery_code", "totp"]}


def test_only_superusers_may_reset_a_second_factor(client, staff, world):
    enrol_totp(staff)
    client.force_login(world.acme.owner)
    client.post("/admin/auth/user/", {"action": "reset_second_factor", "_selected_action": [staff.pk]})
    assert TotpDevice.objects.filter(user=staff, confirmed=True).exists()
    assert not AuditEvent.objects.filter(action="mfa.devices_reset").exists()


def test_rotating_the_encryption_keys_re_encrypts_totp_secrets(staff, settings):
    from cryptography.fernet import Fernet

    from tenants.services import encryption_keys_rotate

    device = enrol_totp(staff)
    secret, before = device.base32_secret, device.key_ciphertext
    settings.PAYDESK_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.PAYDESK_ENCRYPTION_KEYS]

    counts = encryption_keys_rotate(actor=Actor.system("test"))

    device.refresh_from_db()
    assert counts["security.TotpDevice"] == 1
    assert device.key_ciphertext != before and device.base32_secret == secret
    settings.PAYDESK_ENCRYPTION_KEYS = settings.PAYDESK_ENCRYPTION_KEYS[:1]  # the new key alone reads it
    assert device.base32_secret == secret
