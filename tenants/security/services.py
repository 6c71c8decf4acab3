"""Every write of the second factor and the login locks, each audited (tenants' audit log).

Audit actions: mfa.device_added, mfa.enrolment_failed, mfa.recovery_codes_generated,
mfa.verified, mfa.verify_failed, mfa.devices_reset, admin.lock_lifted. No code, secret
or recovery code is ever written to the log: only the kind of device and its name.
"""

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django_otp import devices_for_user
from django_otp import verify_token as otp_verify_token
from django_otp.models import Device
from django_otp_webauthn.models import WebAuthnCredential

from tenants.security.models import RecoveryCode, RecoveryCodeDevice, TotpDevice, hash_recovery_code, new_recovery_code
from tenants.services import Actor, audit_record

# The devices that enrol a user; recovery codes are only their fallback.
PRIMARY_DEVICES = (TotpDevice, WebAuthnCredential)


def device_kind(device: Device) -> str:
    return {TotpDevice: "totp", RecoveryCodeDevice: "recovery_code", WebAuthnCredential: "webauthn"}.get(
        type(device), type(device).__name__
    )


def mfa_is_enrolled(user) -> bool:
    """True once the user has a confirmed authenticator app or passkey."""
    return any(model.objects.filter(user=user, confirmed=True).exists() for model in PRIMARY_DEVICES)


def mfa_devices(user) -> list[Device]:
    """The user's confirmed devices, recovery codes included."""
    return list(devices_for_user(user, confirmed=True))


def recovery_codes_left(user) -> int:
    return RecoveryCode.objects.filter(device__user=user, device__confirmed=True).count()


def totp_enrolment_start(*, user) -> TotpDevice:
    """The unconfirmed authenticator app the user is setting up (a fresh secret each time
    the page is opened: a secret shown on screen and never confirmed is not reused)."""
    with transaction.atomic():
        TotpDevice.objects.filter(user=user, confirmed=False).delete()
        return TotpDevice.create_unconfirmed(user=user, name="Authenticator app")


def totp_enrolment_confirm(*, user, device_id: int, token: str, actor: Actor) -> TotpDevice | None:
    """Confirm the app with a first code from it; None if the code is wrong (audited)."""
    with transaction.atomic():
        device = TotpDevice.objects.select_for_update().filter(pk=device_id, user=user, confirmed=False).first()
        if device is None or not device.verify_token(token):
            audit_record(action="mfa.enrolment_failed", actor=actor, target=user, changes={"device": "totp"})
            return None
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        audit_record(
            action="mfa.device_added", actor=actor, target=user, changes={"device": "totp", "name": device.name}
        )
    return device


def webauthn_device_added(*, user, device: WebAuthnCredential, actor: Actor) -> None:
    """Audit a passkey registered through django-otp-webauthn's ceremony."""
    audit_record(
        action="mfa.device_added", actor=actor, target=user, changes={"device": "webauthn", "name": device.name}
    )


def recovery_codes_generate(*, user, actor: Actor) -> list[str]:
    """A new set of single-use recovery codes, replacing the old set. The clear codes are
    returned once, to be shown once; only their hashes are stored."""
    codes = [new_recovery_code() for _ in range(settings.PAYDESK_MFA_RECOVERY_CODES)]
    with transaction.atomic():
        RecoveryCodeDevice.objects.filter(user=user).delete()
        device = RecoveryCodeDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
        RecoveryCode.objects.bulk_create(RecoveryCode(device=device, code_hash=hash_recovery_code(c)) for c in codes)
        audit_record(action="mfa.recovery_codes_generated", actor=actor, target=user, changes={"count": len(codes)})
    return codes


def mfa_verify(*, user, token: str, actor: Actor) -> Device | None:
    """Check a code from an authenticator app (digits) or a recovery code (letters) against
    the user's devices; the device that accepted it, or None (both audited).

    Each device throttles its own failures (django-otp: 1, 2, 4… seconds before the next
    try is even looked at), and a recovery code is deleted as it is accepted."""
    token = "".join(str(token).split())
    model = TotpDevice if token.isascii() and token.isdigit() else RecoveryCodeDevice
    verified = None
    for device in model.objects.filter(user=user, confirmed=True):
        verified = otp_verify_token(user, device.persistent_id, token)
        if verified is not None:
            break
    kind = "totp" if model is TotpDevice else "recovery_code"
    if verified is None:
        audit_record(action="mfa.verify_failed", actor=actor, target=user, changes={"device": kind})
        return None
    changes = {"device": kind}
    if kind == "recovery_code":
        changes["recovery_codes_left"] = recovery_codes_left(user)
    audit_record(action="mfa.verified", actor=actor, target=user, changes=changes)
    return verified


def webauthn_verified(*, user, device: WebAuthnCredential, actor: Actor) -> None:
    audit_record(action="mfa.verified", actor=actor, target=user, changes={"device": "webauthn"})


def webauthn_verify_failed(*, user, actor: Actor, reason: str) -> None:
    audit_record(action="mfa.verify_failed", actor=actor, target=user, changes={"device": "webauthn", "reason": reason})


def mfa_devices_reset(*, user, actor: Actor) -> int:
    """Delete every second-factor device of the user (a lost phone, a lost key). With MFA
    required, the user enrols again at the next sign-in."""
    with transaction.atomic():
        devices = list(devices_for_user(user, confirmed=None))
        for device in devices:
            device.delete()
        audit_record(
            action="mfa.devices_reset",
            actor=actor,
            target=user,
            changes={"devices": sorted(device_kind(d) for d in devices)},
        )
    return len(devices)


def login_locks_lift(*, attempts: QuerySet, actor: Actor) -> int:
    """Forget the failed logins of the given django-axes records: the usernames and
    addresses they lock may sign in again at once."""
    lifted = 0
    with transaction.atomic():
        for attempt in attempts.select_for_update():
            audit_record(
                action="admin.lock_lifted",
                actor=actor,
                changes={
                    "username": attempt.username,
                    "ip_address": attempt.ip_address,
                    "failures": attempt.failures_since_start,
                },
            )
            attempt.delete()
            lifted += 1
    return lifted
