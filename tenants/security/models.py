"""Second-factor devices kept encrypted or hashed at rest.

django-otp's own TOTP and static-token plugins store the TOTP secret and the recovery
codes in clear text. These two devices are the same django-otp devices (its Device base,
its throttling and its TOTP arithmetic, django_otp.oath) with storage fit for a payments
database: the TOTP secret is a Fernet token (tenants/crypto.py, rotated with the other
secrets), and a recovery code is kept only as a SHA-256 of 80 random bits.
django-otp finds them like any device (`django_otp.devices_for_user`), as it finds the
WebAuthn credentials of django-otp-webauthn.
"""

import hashlib
import secrets
import time
from base64 import b32encode
from urllib.parse import quote, urlencode

from axes.models import AccessAttempt
from django.conf import settings
from django.db import models
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.oath import TOTP

from tenants import crypto
from tenants.crypto import EncryptedSecretField


def new_totp_key() -> str:
    """20 random bytes (RFC 4226's recommended length for HMAC-SHA1), hex-encoded."""
    return secrets.token_hex(20)


class TotpDevice(TimestampMixin, ThrottlingMixin, Device):
    """An authenticator app (RFC 6238: 6 digits, 30 s steps, SHA-1, as every app expects)."""

    key_ciphertext = EncryptedSecretField(editable=False)
    step = models.PositiveSmallIntegerField(default=30)
    t0 = models.BigIntegerField(default=0)
    digits = models.PositiveSmallIntegerField(default=6)
    # One step either side: a code stays good for about a minute and a half.
    tolerance = models.PositiveSmallIntegerField(default=1)
    drift = models.SmallIntegerField(default=0)
    # The time step of the last accepted code: a code is accepted once, never replayed.
    last_t = models.BigIntegerField(default=-1)

    class Meta(Device.Meta):
        verbose_name = "authenticator app"

    @classmethod
    def create_unconfirmed(cls, *, user, name: str) -> "TotpDevice":
        return cls.objects.create(user=user, name=name, confirmed=False, key_ciphertext=crypto.encrypt(new_totp_key()))

    @property
    def bin_key(self) -> bytes:
        return bytes.fromhex(crypto.decrypt(self.key_ciphertext))

    @property
    def base32_secret(self) -> str:
        return b32encode(self.bin_key).decode()

    def get_throttle_factor(self) -> int:
        return settings.OTP_TOTP_THROTTLE_FACTOR

    def verify_token(self, token) -> bool:
        # As django_otp.plugins.otp_totp.models.TOTPDevice.verify_token: throttled, each
        # time step accepted once, drift followed.
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        token = str(token).strip().replace(" ", "")
        verified = False
        if token.isascii() and token.isdigit() and len(token) == self.digits:
            totp = TOTP(self.bin_key, self.step, self.t0, self.digits, self.drift)
            totp.time = time.time()
            verified = totp.verify(int(token), self.tolerance, self.last_t + 1)
            if verified:
                self.last_t = totp.t()
                self.drift = totp.drift
                self.throttle_reset(commit=False)
                self.set_last_used_timestamp(commit=False)
                self.save()
        if not verified:
            self.throttle_increment(commit=True)
        return verified

    @property
    def config_url(self) -> str:
        """The otpauth:// URI an authenticator app scans (Google's Key URI format)."""
        issuer = settings.OTP_TOTP_ISSUER.replace(":", "")
        label = f"{issuer}:{self.user.get_username()}"
        params = urlencode(
            {"secret": self.base32_secret, "algorithm": "SHA1", "digits": self.digits, "period": self.step}
        )
        return f"otpauth://totp/{quote(label)}?{params}&issuer={quote(issuer)}"


def hash_recovery_code(code: str) -> str:
    normalised = "".join(code.split()).replace("-", "").lower()
    return hashlib.sha256(normalised.encode()).hexdigest()


def new_recovery_code() -> str:
    """80 random bits as four groups of four base32 characters: abcd-efgh-ijkl-mnop."""
    raw = b32encode(secrets.token_bytes(10)).decode().lower()
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


class RecoveryCodeDevice(TimestampMixin, ThrottlingMixin, Device):
    """A user's set of single-use recovery codes (one device per user)."""

    class Meta(Device.Meta):
        verbose_name = "recovery codes"

    def get_throttle_factor(self) -> int:
        return settings.OTP_TOTP_THROTTLE_FACTOR

    def verify_token(self, token) -> bool:
        # Called inside django_otp.verify_token's transaction with this row locked, so
        # two requests cannot spend the same code: the second finds it deleted.
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        deleted, _ = self.codes.filter(code_hash=hash_recovery_code(str(token))).delete()
        if deleted:
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
            return True
        self.throttle_increment(commit=True)
        return False


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["device", "code_hash"], name="recovery_code_unique")]

    def __str__(self) -> str:
        return f"recovery code of {self.device.user}"  # never the code: only its hash is kept


class LoginLock(AccessAttempt):
    """django-axes' failed-login records, shown in the admin as locks (Security › Login locks)."""

    class Meta:
        proxy = True
        verbose_name = "login lock"
        verbose_name_plural = "login locks"
