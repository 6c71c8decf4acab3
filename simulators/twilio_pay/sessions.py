"""Calls and Pay sessions of the simulator: their data, entries and callback shapes.

The request flow that moves sessions between states lives in engine.py.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hmac
from dataclasses import dataclass, field
from decimal import Decimal

from . import rules
from .gateway import CardDetails

# Session states. "processing" is the time between Status=complete and the
# gateway's answer: no longer open to updates, but still the call's active
# session (a new one is refused with 64021).
IN_PROGRESS = "in-progress"
PROCESSING = "processing"
COMPLETED = "completed"
CANCELLED = "cancelled"
ENDED = "ended"  # the caller pressed * or hung up
ACTIVE_STATES = (IN_PROGRESS, PROCESSING)


class TwilioError(Exception):
    """An error answered in Twilio's JSON shape (§1.4)."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


def invalid(message: str) -> TwilioError:
    return TwilioError(400, 64020, message)


def rfc2822(moment: dt.datetime) -> str:
    """REST JSON dates, e.g. "Wed, 18 Dec 2019 20:02:01 +0000" (§1.3)."""
    return email.utils.format_datetime(moment)


def iso_ms(moment: dt.datetime) -> str:
    """Callback dates, e.g. "2021-08-10T03:55:53.408Z" (§2, observed payloads)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _truncate_ms(moment: dt.datetime) -> dt.datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass
class Connector:
    name: str
    stripe_secret_key: str = field(repr=False)
    stripe_api_base: str | None = None


@dataclass
class Call:
    sid: str
    status: str = IN_PROGRESS  # or "completed" once hung up
    session_sid: str | None = None  # the latest session on this call


@dataclass(frozen=True)
class SessionConfig:
    payment_method: str
    connector: str
    charge_amount: Decimal | None  # None: tokenize
    currency: str
    token_type: str
    bank_account_type: str
    description: str
    postal_code: bool
    security_code: bool
    min_postal_code_length: int | None
    valid_card_types: tuple[str, ...]
    timeout: int
    require_matching: frozenset[str]
    confirmation: bool
    parameter: dict[str, object]

    @property
    def charging(self) -> bool:
        return self.charge_amount is not None

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields the caller must give, in canonical order."""
        if self.payment_method == "ach-debit":
            return rules.BANK_FIELDS
        return tuple(
            f
            for f in rules.CARD_FIELDS
            if not (f == rules.SECURITY_CODE and not self.security_code)
            and not (f == rules.POSTAL_CODE and not self.postal_code)
        )


@dataclass
class Session:
    sid: str
    account_sid: str
    call_sid: str
    config: SessionConfig
    status_callback: str
    created: dt.datetime
    updated: dt.datetime
    state: str = IN_PROGRESS
    capturing: str | None = None  # a payments_enum_capture value
    card_type: str | None = None
    last_error: str | None = None
    result: str | None = None
    confirmed: set[str] = field(default_factory=set)  # matched by a -matcher entry
    masked: dict[str, str] = field(default_factory=dict)
    # Raw digits: memory only, never in a callback, log or /_sim answer, and
    # wiped when the session ends.
    _raw: dict[str, str] = field(default_factory=dict, repr=False)

    def touch(self) -> None:
        """Move DateUpdated on, strictly increasing by at least 1 ms.

        The simulator runs far faster than a caller types, so without this
        several callbacks would share one millisecond; receivers that order
        callbacks by DateUpdated (they can arrive out of order, §2) could not.
        """
        now = _truncate_ms(dt.datetime.now(dt.UTC))
        self.updated = max(now, _truncate_ms(self.updated) + dt.timedelta(milliseconds=1))

    # -- values ----------------------------------------------------------------

    def set_value(self, name: str, digits: str) -> None:
        self._raw[name] = digits
        self.masked[name] = rules.mask(name, digits)

    def drop_value(self, name: str) -> None:
        self._raw.pop(name, None)
        self.masked.pop(name, None)
        self.confirmed.discard(name)
        if name == rules.CARD_NUMBER:
            self.card_type = None

    def wipe(self) -> None:
        self._raw.clear()

    def missing_fields(self) -> list[str]:
        return [
            f
            for f in self.config.fields
            if f not in self.masked or (f in self.config.require_matching and f not in self.confirmed)
        ]

    def card_details(self) -> CardDetails:
        expiry = self._raw[rules.EXPIRATION_DATE]
        return CardDetails(
            number=self._raw[rules.CARD_NUMBER],
            exp_month=int(expiry[:2]),
            exp_year=2000 + int(expiry[2:]),
            cvc=self._raw.get(rules.SECURITY_CODE),
            postal_code=self._raw.get(rules.POSTAL_CODE),
        )

    def accept(self, capture: str, digits: str, today: dt.date) -> str | None:
        """Take the caller's entry for ``capture``; return its ErrorType or None."""
        field_name, matcher = rules.split_capture(capture)
        if matcher:
            if hmac.compare_digest(digits, self._raw.get(field_name, "")):
                self.confirmed.add(field_name)
                return None
            self.drop_value(field_name)  # both entries are needed again
            return rules.INPUT_MATCHING_FAILED
        cfg = self.config
        error: str | None
        if field_name == rules.CARD_NUMBER:
            card_type, error = rules.check_card_number(digits, cfg.valid_card_types)
            if error is None:
                self.set_value(field_name, digits)
                self.card_type = card_type
                # A CVC captured before the number may not fit its type (4
                # digits for amex, 3 otherwise): it must then be given again.
                cvc = self._raw.get(rules.SECURITY_CODE)
                if cvc is not None and rules.check_security_code(cvc, card_type):
                    self.drop_value(rules.SECURITY_CODE)
            return error
        if field_name == rules.EXPIRATION_DATE:
            error = rules.check_expiration(digits, today)
        elif field_name == rules.SECURITY_CODE:
            error = rules.check_security_code(digits, self.card_type)
        elif field_name == rules.POSTAL_CODE:
            error = rules.check_postal_code(digits, cfg.min_postal_code_length)
        elif field_name == rules.ROUTING_NUMBER:
            error = rules.check_routing_number(digits)
        else:
            error = rules.check_account_number(digits)
        if error is None:
            self.set_value(field_name, digits)
        return error

    # -- REST and callback shapes ---------------------------------------------

    def resource(self) -> dict[str, str]:
        """The api.v2010.account.call.payments JSON (§1.3)."""
        return {
            "account_sid": self.account_sid,
            "call_sid": self.call_sid,
            "sid": self.sid,
            "date_created": rfc2822(self.created),
            "date_updated": rfc2822(self.updated),
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{self.call_sid}/Payments/{self.sid}.json",
        }

    def common_params(self) -> dict[str, str]:
        """Fields of every callback (§2). The conditional ones are left out
        when they do not apply, as in the observed create callback."""
        cfg = self.config
        params = {
            "AccountSid": self.account_sid,
            "CallSid": self.call_sid,
            "Sid": self.sid,
            "DateCreated": iso_ms(self.created),
            "PaymentConnector": cfg.connector,
            "PaymentMethod": cfg.payment_method,
        }
        if cfg.charge_amount is not None:
            params["ChargeAmount"] = rules.format_amount(cfg.charge_amount, cfg.currency)
        else:
            params["TokenType"] = cfg.token_type
        if cfg.payment_method == "ach-debit":
            params["BankAccountType"] = cfg.bank_account_type
        return params

    def masked_params(self) -> dict[str, str]:
        """All seven value fields, empty when not captured or not applicable."""
        params = dict.fromkeys(rules.MASKED_PARAM_NAMES, "")
        for name, value in self.masked.items():
            params[rules.VALUE_PARAMS[name]] = value
        if self.card_type and rules.CARD_NUMBER in self.masked:
            params["PaymentCardType"] = self.card_type
        return params

    def update_params(self, capture: str, *, partial: bool, error_type: str = "") -> dict[str, str]:
        params = self.common_params()
        params.update(
            DateUpdated=iso_ms(self.updated),
            Capture=capture,
            PartialResult="true" if partial else "false",
            # Comma-separated PascalCase names, canonical order (open question 6).
            Required=",".join(rules.REQUIRED_NAMES[f] for f in self.missing_fields()),
            ErrorType=error_type,
        )
        params.update(self.masked_params())
        return params

    def final_params(self, result_fields: dict[str, str]) -> dict[str, str]:
        params = self.common_params()
        params["DateUpdated"] = iso_ms(self.updated)
        params.update(result_fields)
        params.update(self.masked_params())
        return params

    def cancel_params(self) -> dict[str, str]:
        # What Twilio posts after Status=cancel is not documented beyond "the
        # common parameters plus DateUpdated..." (open question 8). We send the
        # common fields, DateUpdated and an empty Capture, and no Result.
        params = self.common_params()
        params.update(DateUpdated=iso_ms(self.updated), Capture="")
        return params
