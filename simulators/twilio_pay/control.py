"""Parsing and shaping of the control API (/_sim/...): accounts, faults, keypad."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from . import rules
from .delivery import Faults
from .sessions import Call, Connector, Session

ACCOUNT_SID_RE = re.compile(r"^AC[0-9a-fA-F]{32}$")
KEYPAD_DIGITS_RE = re.compile(r"^[0-9]*#?$")
KEYPAD_STAR_RE = re.compile(r"^[0-9#]*\*[0-9#*]*$")
KEYPAD_USAGE = (
    'send exactly one of {"digits": "0-9, optionally ending with #, or *"}, {"timeout": true}, {"hangup": true}'
)


class ControlError(Exception):
    """A control-API error: HTTP status plus a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_account(payload: Any) -> tuple[str, str, dict[str, Connector]]:
    """{"account_sid", "auth_token", "connectors": {name: {"stripe_secret_key", ["stripe_api_base"]}}}"""
    if not isinstance(payload, dict):
        raise ControlError(400, "expected a JSON object")
    sid, token, raw = payload.get("account_sid"), payload.get("auth_token"), payload.get("connectors", {})
    if not isinstance(sid, str) or not ACCOUNT_SID_RE.match(sid):
        raise ControlError(400, "account_sid must match ^AC[0-9a-fA-F]{32}$")
    if not isinstance(token, str) or not token:
        raise ControlError(400, "auth_token must be a non-empty string")
    if not isinstance(raw, dict):
        raise ControlError(400, "connectors must be an object of name -> settings")
    connectors: dict[str, Connector] = {}
    for name, settings in raw.items():
        settings = settings if isinstance(settings, dict) else {}
        key, base = settings.get("stripe_secret_key"), settings.get("stripe_api_base")
        if not isinstance(key, str) or not key:
            raise ControlError(400, f"connector {name!r} needs a stripe_secret_key")
        # A per-connector Stripe base lets each connector have its own
        # localstripe (every key sees the same data in one localstripe).
        if base is not None and (not isinstance(base, str) or urlsplit(base).scheme not in ("http", "https")):
            raise ControlError(400, f"connector {name!r}: stripe_api_base must be an http(s) URL")
        connectors[name] = Connector(name=name, stripe_secret_key=key, stripe_api_base=base)
    return sid, token, connectors


def apply_faults(faults: Faults, payload: Any) -> None:
    if not isinstance(payload, dict):
        raise ControlError(400, "expected a JSON object")
    unknown = set(payload) - {"duplicate_callbacks", "bad_signature", "fail_next_rest"}
    if unknown:
        raise ControlError(400, f"unknown faults: {', '.join(sorted(unknown))}")
    for name in ("duplicate_callbacks", "bad_signature"):
        if name in payload and not isinstance(payload[name], bool):
            raise ControlError(400, f"{name} must be true or false")
    status: int | None = None
    if payload.get("fail_next_rest") is not None:
        spec = payload["fail_next_rest"]
        status = spec.get("status", 500) if isinstance(spec, dict) else None
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise ControlError(400, 'fail_next_rest must be {"status": 400..599} or null')
    for name in ("duplicate_callbacks", "bad_signature"):
        if name in payload:
            setattr(faults, name, payload[name])
    if "fail_next_rest" in payload:
        faults.fail_next_rest = status


def parse_keypad(payload: Any) -> tuple[str, str]:
    """-> (action, digits) with action one of digits | star | timeout | hangup."""
    if not isinstance(payload, dict) or len(payload) != 1:
        raise ControlError(400, KEYPAD_USAGE)
    ((key, value),) = payload.items()
    if key in ("timeout", "hangup"):
        if value is not True:
            raise ControlError(400, f"{key} must be true")
        return key, ""
    if key != "digits" or not isinstance(value, str):
        raise ControlError(400, KEYPAD_USAGE)
    if KEYPAD_STAR_RE.match(value):
        return "star", ""
    if not KEYPAD_DIGITS_RE.match(value):
        raise ControlError(400, KEYPAD_USAGE)
    return "digits", value.rstrip("#")


def keypad_summary(call: Call, session: Session | None, action: str) -> dict[str, Any]:
    """The keypad answer: states only, never a digit (masked or not)."""
    return {
        "call_sid": call.sid,
        "call_status": call.status,
        "accepted": action,
        "session": None
        if session is None
        else {
            "sid": session.sid,
            "status": session.state,
            "capture": session.capturing,
            "required": [rules.REQUIRED_NAMES[f] for f in session.missing_fields()],
            "error_type": session.last_error,
            "result": session.result,
        },
    }
