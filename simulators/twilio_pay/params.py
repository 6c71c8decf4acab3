"""Validation of CreatePayments/UpdatePayments form parameters (docs/twilio-pay.md §1)."""

from __future__ import annotations

import json
from dataclasses import replace
from urllib.parse import urlsplit

from . import rules
from .sessions import Connector, SessionConfig, TwilioError, invalid


def require(form: dict[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise invalid(f"Missing required parameter {name}")
    return value


def callback_url(form: dict[str, str]) -> str:
    url = require(form, "StatusCallback")
    parts = urlsplit(url)
    # Twilio also takes a relative URL; the simulator has nothing to resolve
    # it against, so it asks for an absolute one.
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid(f"StatusCallback must be an absolute http(s) URL; got {url!r}")
    return url


def parse_config(form: dict[str, str], connectors: dict[str, Connector]) -> SessionConfig:
    """Validate CreatePayments' optional parameters (§1.1) as Twilio does."""
    payment_method = _enum(form, "PaymentMethod", rules.PAYMENT_METHODS, "credit-card")
    bank_account_type = _enum(form, "BankAccountType", rules.BANK_ACCOUNT_TYPES, "consumer-checking")
    token_type = _enum(form, "TokenType", rules.TOKEN_TYPES, "reusable")
    if (form.get("Input") or "dtmf").lower() != "dtmf":
        raise invalid("Input must be dtmf")
    currency = form.get("Currency") or "USD"
    if not rules.valid_currency(currency):
        raise invalid(f"Currency {currency!r} is not an ISO 4217 code")
    currency = currency.upper()
    try:
        charge_amount = rules.parse_charge_amount(form.get("ChargeAmount", ""), currency)
    except ValueError as exc:
        raise TwilioError(400, 64003, str(exc)) from exc
    postal_code = _boolean(form, "PostalCode", default=True)
    security_code = _boolean(form, "SecurityCode", default=True)
    min_postal = _integer(form, "MinPostalCodeLength", default=None, low=1, high=None)
    timeout = _integer(form, "Timeout", default=5, low=1, high=600)
    valid_card_types = _card_types(form)
    confirmation = _enum(form, "Confirmation", ("true", "false"), "false") == "true"
    parameter = _parameter(form, required=payment_method == "ach-debit")
    connector = form.get("PaymentConnector") or "Default"
    config = SessionConfig(
        payment_method=payment_method,
        connector=connector,
        charge_amount=charge_amount,
        currency=currency,
        token_type=token_type,
        bank_account_type=bank_account_type,
        description=form.get("Description", ""),
        postal_code=postal_code,
        security_code=security_code,
        min_postal_code_length=min_postal,
        valid_card_types=valid_card_types,
        timeout=timeout,
        require_matching=frozenset(),
        confirmation=confirmation,
        parameter=parameter,
    )
    matching = _require_matching(form, config.fields)
    if connector not in connectors:
        raise TwilioError(400, 64004, f"Payment connector {connector!r} is not installed on this account")
    return replace(config, require_matching=matching)


def _enum(form: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = form.get(name) or default
    if value not in allowed:
        raise invalid(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _boolean(form: dict[str, str], name: str, *, default: bool) -> bool:
    value = (form.get(name) or str(default)).lower()
    if value not in ("true", "false"):
        raise invalid(f"{name} must be true or false; got {form.get(name)!r}")
    return value == "true"


def _integer(form: dict[str, str], name: str, *, default: int | None, low: int, high: int | None) -> int | None:
    text = form.get(name) or ""
    if text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise invalid(f"{name} must be an integer; got {text!r}") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise invalid(f"{name} must be {bound}; got {value}")
    return value


def _card_types(form: dict[str, str]) -> tuple[str, ...]:
    text = form.get("ValidCardTypes") or ""
    if not text.strip():
        return rules.DEFAULT_CARD_TYPES
    types = tuple(text.split())
    unknown = [t for t in types if t not in rules.KNOWN_CARD_TYPES]
    if unknown:
        raise invalid(f"ValidCardTypes has unknown card types: {' '.join(unknown)}")
    return types


def _require_matching(form: dict[str, str], fields: tuple[str, ...]) -> frozenset[str]:
    text = form.get("RequireMatchingInputs") or ""
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in rules.MATCHABLE_FIELDS:
            raise invalid(f"RequireMatchingInputs has an unsupported value {name!r}")
        if name not in fields:
            raise invalid(f"RequireMatchingInputs lists {name!r}, which this session does not capture")
    return frozenset(names)


def _parameter(form: dict[str, str], *, required: bool) -> dict[str, object]:
    text = form.get("Parameter") or ""
    if not text:
        if required:
            raise invalid("Parameter is required for ach-debit payments")
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise invalid("Parameter must be a JSON object") from None
    if not isinstance(value, dict):
        raise invalid("Parameter must be a JSON object")
    if any(isinstance(v, dict | list) for v in value.values()):
        raise invalid("Parameter must be a single-level JSON object")
    return value
