"""Fixtures for the security controls: a clock to move, TOTP codes computed from a
device's secret (RFC 6238, independently of django-otp), signing in through the admin."""

import hashlib
import hmac
import struct
import time
from base64 import b32decode

import pytest
import time_machine
from django.urls import reverse

from tenants.security import services
from tenants.security.models import TotpDevice
from tenants.services import Actor
from tests.factories import UserFactory

PASSWORD = "pw"  # UserFactory's


def totp_code(secret_b32: str, at: float | None = None, step: int = 30) -> str:
    """The 6-digit RFC 6238 code (HMAC-SHA1) of a base32 secret at a time."""
    counter = int((time.time() if at is None else at) // step)
    digest = hmac.new(b32decode(secret_b32), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


@pytest.fixture
def clock():
    """A clock the test moves (time_machine): `clock.shift(seconds)`; it starts now."""
    with time_machine.travel(time.time(), tick=True) as traveller:
        yield traveller


@pytest.fixture
def mfa_required(settings):
    settings.PAYDESK_REQUIRE_MFA = True


@pytest.fixture
def staff(db):
    return UserFactory(username="alice", is_superuser=False)


def enrol_totp(user) -> TotpDevice:
    """A confirmed authenticator app for `user`, set up through the services."""
    device = services.totp_enrolment_start(user=user)
    confirmed = services.totp_enrolment_confirm(
        user=user, device_id=device.pk, token=totp_code(device.base32_secret), actor=Actor.system("test")
    )
    assert confirmed is not None
    # The enrolment used this time step's code: later sign-ins in the test use the next one.
    return confirmed


def sign_in(client, username: str, password: str = PASSWORD, next_url: str = "/admin/", **extra):
    return client.post(
        f"{reverse('admin:login')}?next={next_url}",
        {"username": username, "password": password, "next": next_url},
        **extra,
    )
