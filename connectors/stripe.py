"""The edge to Stripe. The only module that imports `stripe`.

One `StripeClient` per connector instance, built per call with that connector's key and
the base URL from settings (real Stripe, localstripe in tests and the first run).
"""

import stripe
from django.conf import settings

from connectors.base import ConnectorError

# Stripe's HTTP timeout (seconds): fail fast, let Celery retry.
TIMEOUT_SECONDS = 20


def client_for_key(secret_key: str, *, max_network_retries: int = 0) -> stripe.StripeClient:
    return stripe.StripeClient(
        secret_key,
        base_addresses={"api": settings.STRIPE_API_BASE_URL},
        max_network_retries=max_network_retries,
        http_client=stripe.RequestsClient(timeout=TIMEOUT_SECONDS),
    )


def as_connector_error(exc: stripe.StripeError) -> ConnectorError:
    """Map a Stripe SDK error to a ConnectorError, permanent or transient."""
    status = getattr(exc, "http_status", None)
    message = getattr(exc, "user_message", None) or str(exc) or exc.__class__.__name__
    code = getattr(exc, "code", None)
    if isinstance(exc, stripe.AuthenticationError):
        return ConnectorError(f"Stripe rejected the key: {message}", permanent=True, code=code, status=status)
    if isinstance(exc, stripe.PermissionError):
        return ConnectorError(f"The key lacks a permission: {message}", permanent=True, code=code, status=status)
    if isinstance(exc, stripe.RateLimitError):
        return ConnectorError(f"Stripe rate limit: {message}", permanent=False, code=code, status=status)
    if isinstance(exc, stripe.APIConnectionError):
        return ConnectorError(f"Stripe unreachable: {message}", permanent=False, code=code, status=status)
    if status is not None and status >= 500:
        return ConnectorError(f"Stripe error {status}: {message}", permanent=False, code=code, status=status)
    return ConnectorError(f"Stripe refused the request: {message}", permanent=True, code=code, status=status)


def verify_secret_key(secret_key: str) -> None:
    """Prove the key works by reading the account balance (cheap, read-only, allowed to
    restricted keys with balance read). Raises ConnectorError."""
    try:
        client_for_key(secret_key).v1.balance.retrieve()
    except stripe.StripeError as exc:
        raise as_connector_error(exc) from exc
