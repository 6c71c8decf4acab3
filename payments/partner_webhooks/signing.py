"""Signing secrets and signatures, as the Standard Webhooks specification has them
(https://www.standardwebhooks.com/), with its reference library `standardwebhooks`."""

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32  # the specification asks for 24 to 64 random bytes


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def headers(*, msg_id: str, body: str, secrets_: list[str], at: datetime | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers. `secrets_`: the current secret first, then any
    previous one still in its overlap: one `v1,` signature each, space-separated, so a
    receiver holding either secret verifies the message."""
    at = (at or datetime.now(UTC)).astimezone(UTC)
    signatures = " ".join(Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=body) for secret in secrets_)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }
