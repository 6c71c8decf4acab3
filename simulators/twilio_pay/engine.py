"""The simulator's behaviour: Twilio REST requests, the caller's keypad, completion.

Everything that reads or changes state holds one lock; the only slow work
(the Stripe calls after Status=complete) runs on the delivery worker outside
it. Section numbers refer to docs/twilio-pay.md.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import hmac
import logging
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from . import rules
from .control import ControlError, apply_faults, keypad_summary, parse_account, parse_keypad
from .delivery import Callback, DeliveryWorker, Faults
from .gateway import Outcome, StripeGateway, ach_outcome
from .params import callback_url, parse_config, require
from .sessions import (
    ACTIVE_STATES,
    CANCELLED,
    COMPLETED,
    ENDED,
    IN_PROGRESS,
    PROCESSING,
    Call,
    Connector,
    Session,
    TwilioError,
    invalid,
)

logger = logging.getLogger(__name__)

CALL_SID_RE = re.compile(r"^CA[0-9a-fA-F]{32}$")
PAYMENT_SID_RE = re.compile(r"^PK[0-9a-fA-F]{32}$")
PAYMENTS_ROUTE = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Calls/([^/]+)/Payments(?:/([^/.]+))?\.json$")

Answer = tuple[int, dict[str, Any]]


@dataclass
class _Replay:
    fingerprint: tuple[str, tuple[tuple[str, str], ...]]
    status: int
    body: dict[str, Any]


@dataclass
class Account:
    sid: str
    auth_token: str = field(repr=False)
    connectors: dict[str, Connector]
    calls: dict[str, Call] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    idempotency: dict[str, _Replay] = field(default_factory=dict)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Engine:
    def __init__(self, worker: DeliveryWorker, faults: Faults, stripe_api_base: str) -> None:
        self._lock = threading.RLock()
        self._worker = worker
        self._faults = faults
        self._stripe_api_base = stripe_api_base
        self._accounts: dict[str, Account] = {}
        self._rest_log: list[dict[str, Any]] = []

    # == control API ============================================================

    def register_account(self, payload: Any) -> dict[str, Any]:
        sid, token, connectors = parse_account(payload)
        with self._lock:
            account = self._accounts.get(sid)
            if account is None:
                self._accounts[sid] = Account(sid=sid, auth_token=token, connectors=connectors)
            else:  # replace the settings; calls, sessions and idempotency keys stay
                account.auth_token, account.connectors = token, connectors
        return {"account_sid": sid, "connectors": sorted(connectors)}

    def rest_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._rest_log)

    def set_faults(self, payload: Any) -> dict[str, Any]:
        with self._lock:
            apply_faults(self._faults, payload)
            return self._faults.as_dict()

    def reset(self) -> None:
        """Forget calls, sessions, idempotency keys, logs and faults; keep accounts."""
        with self._lock:
            for account in self._accounts.values():
                account.calls.clear()
                account.sessions.clear()
                account.idempotency.clear()
            self._rest_log.clear()
            self._faults.duplicate_callbacks = self._faults.bad_signature = False
            self._faults.fail_next_rest = None
            self._worker.reset()

    # == Twilio REST ============================================================

    def rest(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        with self._lock:
            try:
                status, answer = self._rest(method, path, headers, pairs)
            except TwilioError as exc:
                status, answer = exc.status, exc.body()
            self._rest_log.append(
                {
                    "method": method,
                    "path": path,
                    "headers": {k: v for k, v in headers.items() if k.lower() != "authorization"},
                    "form": dict(pairs),
                    "status": status,
                }
            )
            return status, copy.deepcopy(answer)

    def _rest(self, method: str, path: str, headers: Mapping[str, str], pairs: list[tuple[str, str]]) -> Answer:
        if self._faults.fail_next_rest is not None:
            status, self._faults.fail_next_rest = self._faults.fail_next_rest, None
            code = {429: 20429, 503: 20503}.get(status, 20500)
            raise TwilioError(status, code, "Simulated failure (fault injection)")
        account = self._authenticate(headers.get("Authorization", ""))
        match = PAYMENTS_ROUTE.match(path)
        if match is None:
            raise TwilioError(404, 20404, f"The requested resource {path} was not found")
        if method != "POST":
            raise TwilioError(405, 20004, "Method not allowed")
        account_sid, call_sid, payment_sid = match.groups()
        # Another account's resources, and malformed SIDs, are simply not found.
        if (
            account_sid != account.sid
            or not CALL_SID_RE.match(call_sid)
            or (payment_sid is not None and not PAYMENT_SID_RE.match(payment_sid))
        ):
            raise TwilioError(404, 20404, f"The requested resource {path} was not found")
        form = dict(pairs)
        if payment_sid is None:
            return self._idempotent(account, path, pairs, lambda: self._create(account, call_sid, form))
        return self._idempotent(account, path, pairs, lambda: self._update(account, call_sid, payment_sid, form))

    def _authenticate(self, header: str) -> Account:
        scheme, _, encoded = header.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
        account = self._accounts.get(user) if scheme.lower() == "basic" else None
        if account is None or not hmac.compare_digest(password.encode(), account.auth_token.encode()):
            raise TwilioError(401, 20003, "Authenticate")
        return account

    def _idempotent(
        self, account: Account, path: str, pairs: list[tuple[str, str]], handler: Callable[[], Answer]
    ) -> Answer:
        """Same key + same request replays the first answer and does nothing
        else; same key + another request is refused. Only successful answers
        are kept, so a request that failed validation can be retried as is."""
        key = dict(pairs).get("IdempotencyKey", "")
        if not key:
            return handler()  # the handler reports the missing key
        fingerprint = (path, tuple(sorted(pairs)))
        replay = account.idempotency.get(key)
        if replay is not None:
            if replay.fingerprint != fingerprint:
                raise TwilioError(
                    409, 64020, f"Idempotency key {key!r} was already used with a different request (key reuse)"
                )
            return replay.status, copy.deepcopy(replay.body)
        status, body = handler()
        account.idempotency[key] = _Replay(fingerprint, status, copy.deepcopy(body))
        return status, body

    def _create(self, account: Account, call_sid: str, form: dict[str, str]) -> Answer:
        require(form, "IdempotencyKey")
        status_callback = callback_url(form)
        config = parse_config(form, account.connectors)
        call = account.calls.setdefault(call_sid, Call(call_sid))
        _require_in_progress(call)
        current = account.sessions.get(call.session_sid or "")
        if current is not None and current.state in ACTIVE_STATES:
            raise TwilioError(400, 64021, f"A payment session ({current.sid}) is already active on call {call_sid}")
        now = _now()
        session = Session(
            sid="PK" + secrets.token_hex(16),
            account_sid=account.sid,
            call_sid=call_sid,
            config=config,
            status_callback=status_callback,
            created=now,
            updated=now,
        )
        account.sessions[session.sid] = session
        call.session_sid = session.sid
        self._send(account, session, session.common_params())  # §2: common fields only
        return 201, session.resource()

    def _update(self, account: Account, call_sid: str, sid: str, form: dict[str, str]) -> Answer:
        session = account.sessions.get(sid)
        if session is None or session.call_sid != call_sid:
            raise TwilioError(404, 20404, f"The requested resource Payments/{sid} was not found")
        require(form, "IdempotencyKey")
        status_callback = callback_url(form)
        capture, status = form.get("Capture", ""), form.get("Status", "")
        if bool(capture) == bool(status):
            raise TwilioError(400, 64018, "A value is needed for either Capture or Status, but not both")
        if capture and capture not in rules.CAPTURE_VALUES:
            raise invalid(f"Capture must be one of {', '.join(rules.CAPTURE_VALUES)}")
        if status and status not in rules.STATUSES:
            raise invalid("Status must be complete or cancel")
        _require_in_progress(account.calls[call_sid])
        if session.state != IN_PROGRESS:
            raise TwilioError(400, 64021, f"Payment session {sid} is {session.state}; start a new one")
        if capture:
            self._check_capture(session, capture)
        elif status == "complete" and (missing := session.missing_fields()):
            names = ", ".join(rules.REQUIRED_NAMES[f] for f in missing)
            raise TwilioError(400, 64019, f"Required payment information is incomplete: {names}")

        # Valid: from here on the request changes state.
        session.status_callback = status_callback  # later callbacks go to the latest URL
        session.touch()
        if capture:
            field_name, matcher = rules.split_capture(capture)
            if not matcher:  # a (re-)capture starts the field afresh
                session.drop_value(field_name)
            session.confirmed.discard(field_name)
            session.capturing, session.last_error = capture, None
            self._send(account, session, session.update_params(capture, partial=False))
        elif status == "complete":
            session.state, session.capturing = PROCESSING, None
            account_sid, session_sid = account.sid, session.sid
            self._worker.put(lambda: self._complete(account_sid, session_sid))
        else:
            session.state, session.capturing = CANCELLED, None
            session.wipe()
            self._send(account, session, session.cancel_params())
        return 202, session.resource()

    def _check_capture(self, session: Session, capture: str) -> None:
        field_name, matcher = rules.split_capture(capture)
        if field_name not in session.config.fields:
            raise invalid(f"Capture {capture} does not apply to this payment session")
        if matcher:
            if field_name not in session.config.require_matching:
                raise invalid(f"Capture {capture} is only allowed for a field listed in RequireMatchingInputs")
            if field_name not in session.masked:
                raise TwilioError(400, 64021, f"Capture {capture} needs a {field_name} to match first")

    def _complete(self, account_sid: str, session_sid: str) -> list[Callback]:
        """Runs on the delivery worker: the connector call, then the final callback."""
        with self._lock:
            account = self._accounts[account_sid]
            session = account.sessions[session_sid]
            cfg = session.config
            connector = account.connectors.get(cfg.connector)
            card = session.card_details() if cfg.payment_method == "credit-card" else None
        outcome: Outcome
        if connector is None:  # removed by a re-registration meanwhile
            outcome = Outcome("payment-connector-error", pay_error_code="64004", payment_error="Unknown connector")
        elif cfg.payment_method == "ach-debit":
            outcome = ach_outcome(session_sid, charging=cfg.charging, token_type=cfg.token_type)
        else:
            assert card is not None
            gateway = StripeGateway(
                connector.stripe_api_base or self._stripe_api_base, connector.stripe_secret_key, session_sid
            )
            if cfg.charge_amount is not None:
                outcome = gateway.charge(
                    card,
                    amount_minor=rules.to_minor_units(cfg.charge_amount, cfg.currency),
                    currency=cfg.currency,
                    description=cfg.description,
                )
            else:
                outcome = gateway.tokenize(card, token_type=cfg.token_type, description=cfg.description)
        with self._lock:
            session.state, session.result = COMPLETED, outcome.result
            session.touch()
            session.wipe()
            logger.info("pay session %s completed: %s %s", session_sid, outcome.result, outcome.pay_error_code)
            return [Callback(session.status_callback, session.final_params(outcome.as_params()), account.auth_token)]

    def _send(self, account: Account, session: Session, params: dict[str, str]) -> None:
        self._worker.put(Callback(session.status_callback, params, account.auth_token))

    # == the caller's keypad ======================================================

    def keypad(self, call_sid: str, payload: Any) -> dict[str, Any]:
        action, digits = parse_keypad(payload)
        with self._lock:
            found = self._find_call(call_sid)
            if found is None:
                raise ControlError(404, f"unknown call {call_sid}")
            account, call = found
            session = account.sessions.get(call.session_sid or "")
            session_open = session if session is not None and session.state == IN_PROGRESS else None
            if action == "hangup":
                if call.status != IN_PROGRESS:
                    raise ControlError(409, "the call has already ended")
                call.status = "completed"
                if session_open is not None:
                    self._end(account, session_open, "caller-hung-up")
            else:
                if call.status != IN_PROGRESS:
                    raise ControlError(409, "the call is not in progress")
                if session_open is None:
                    raise ControlError(409, "no payment session is in progress on this call")
                if action == "star":
                    self._end(account, session_open, "caller-interrupted-with-star")
                elif session_open.capturing is None:
                    raise ControlError(409, "nothing is being captured")
                else:
                    self._enter(account, session_open, digits if action == "digits" else None)
            return keypad_summary(call, session, action)

    def _find_call(self, call_sid: str) -> tuple[Account, Call] | None:
        found = [(a, a.calls[call_sid]) for a in self._accounts.values() if call_sid in a.calls]
        # A CallSid is globally unique at Twilio; prefer an account with an open session.
        found.sort(key=lambda ac: ac[1].session_sid is None)
        return found[0] if found else None

    def _enter(self, account: Account, session: Session, digits: str | None) -> None:
        """One entry for the field being captured: digits (already without '#') or a timeout."""
        capture = session.capturing
        assert capture is not None
        if digits is None:
            error: str | None = rules.INPUT_TIMEOUT
        else:
            if digits:  # §2: PartialResult=true while DTMF is still arriving
                session.touch()
                self._send(account, session, session.update_params(capture, partial=True))
            error = session.accept(capture, digits, _now().date())
        session.capturing, session.last_error = None, error
        session.touch()
        self._send(account, session, session.update_params(capture, partial=False, error_type=error or ""))

    def _end(self, account: Account, session: Session, result: str) -> None:
        session.state, session.capturing, session.result = ENDED, None, result
        session.touch()
        session.wipe()
        self._send(account, session, session.final_params(Outcome(result=result).as_params()))


# == helpers ===================================================================


def _require_in_progress(call: Call) -> None:
    if call.status != IN_PROGRESS:
        raise TwilioError(400, 21220, "Call is not in-progress")
