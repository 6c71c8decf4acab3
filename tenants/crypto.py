"""Encryption of secrets at rest (Fernet/MultiFernet from `cryptography`).

The newest key in PAYDESK_ENCRYPTION_KEYS encrypts; every key decrypts, so keys can be
rotated: add a new key in front, run `manage.py rotate_encryption_keys`, then drop the
old key. Secrets are stored in `EncryptedSecretField` columns as Fernet tokens and are
decrypted only where a provider call needs them: never by the ORM on load, so a secret
cannot leak through `values()`, a serializer or an admin form by accident.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


class EncryptedSecretField(models.TextField):
    """A TextField holding a Fernet token; the marker the rotation command looks for."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.strip().encode()) for key in keys if key.strip()])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"PAYDESK_ENCRYPTION_KEYS holds an invalid Fernet key: {exc}") from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.PAYDESK_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with PAYDESK_ENCRYPTION_KEYS (was a key removed too early?)."
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt a token under the newest key."""
    return fernet().rotate(token.encode()).decode()


def last4(plaintext: str) -> str:
    return plaintext[-4:]
