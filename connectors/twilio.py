"""The edge to Twilio: the only module that imports Twilio's REST client and request
validator (TwiML is built with `twilio.twiml` where it is made, docs/architecture.md).

One client per call, with the tenant's credentials and the base URL from settings (real
Twilio, the bundled simulator, or Prism in contract tests). Payments API 2010-04-01:
CreatePayments and UpdatePayments (docs/twilio-pay.md §1).
"""

from dataclasses import dataclass

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from connectors.base import ConnectorError

TIMEOUT_SECONDS = 15

# Twilio codes that mean "the request cannot succeed as sent" (docs/twilio-pay.md §1.4).
_CONFLICT_CODES = {64019, 64021, 21220}


@dataclass(frozen=True)
class PaymentResource:
    sid: str
    account_sid: str
    call_sid: str
    status_code: int


def _client(account_sid: str, auth_token: str) -> Client:
    # environment={} keeps TWILIO_REGION / TWILIO_EDGE from rewriting the host.
    client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=TIMEOUT_SECONDS), environment={})
    client.api.base_url = settings.TWILIO_API_BASE_URL
    return client


def _as_connector_error(exc: Exception) -> ConnectorError:
    if isinstance(exc, TwilioRestException):
        status = exc.status
        # twilio-python prefixes "Unable to create/update record: "; keep Twilio's own words.
        message = str(exc.msg).split(": ", 1)[-1] if exc.msg else f"Twilio answered HTTP {status}"
        transient = status == 429 or status >= 500
        return ConnectorError(f"Twilio: {message}", permanent=not transient, code=exc.code, status=status)
    return ConnectorError(f"Twilio unreachable: {exc.__class__.__name__}", permanent=False)


def is_conflict(error: ConnectorError) -> bool:
    """A Twilio refusal that clashes with the session's state (vs. bad input)."""
    return error.code in _CONFLICT_CODES


def payments_create(
    *, account_sid: str, auth_token: str, call_sid: str, idempotency_key: str, status_callback: str, params: dict
) -> PaymentResource:
    """Start a Pay session on a live call. `params` are the SDK's snake_case names."""
    try:
        payment = (
            _client(account_sid, auth_token)
            .api.v2010.accounts(account_sid)
            .calls(call_sid)
            .payments.create(idempotency_key=idempotency_key, status_callback=status_callback, **params)
        )
    except (TwilioRestException, requests.RequestException) as exc:
        raise _as_connector_error(exc) from exc
    return PaymentResource(sid=payment.sid, account_sid=payment.account_sid, call_sid=payment.call_sid, status_code=201)


def payments_update(
    *,
    account_sid: str,
    auth_token: str,
    call_sid: str,
    payment_sid: str,
    idempotency_key: str,
    status_callback: str,
    capture: str | None = None,
    status: str | None = None,
) -> PaymentResource:
    """Ask for one field (`capture`) or end the session (`status` complete/cancel)."""
    extra = {"capture": capture} if capture else {"status": status}
    try:
        payment = (
            _client(account_sid, auth_token)
            .api.v2010.accounts(account_sid)
            .calls(call_sid)
            .payments(payment_sid)
            .update(idempotency_key=idempotency_key, status_callback=status_callback, **extra)
        )
    except (TwilioRestException, requests.RequestException) as exc:
        raise _as_connector_error(exc) from exc
    return PaymentResource(sid=payment.sid, account_sid=payment.account_sid, call_sid=payment.call_sid, status_code=202)


def signature_is_valid(*, auth_token: str, url: str, params, signature: str) -> bool:
    """Check X-Twilio-Signature (docs/twilio-pay.md §6). `params` is the form QueryDict."""
    if not signature:
        return False
    return RequestValidator(auth_token).validate(url, params, signature)
