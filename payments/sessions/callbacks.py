"""Twilio Pay callbacks: normalising what Twilio posts, and folding a session's
callbacks into its state.

Callbacks can arrive twice and out of order (docs/twilio-pay.md §2, "Implementation notes").
So the state a session shows is never "the last callback applied" but a fold over every
callback stored for it, in a deterministic order (Twilio's own timestamps, then a content
key). The same set of callbacks therefore always gives the same state, however and
however often they arrived. A final result is final: once a session is terminal,
nothing moves it again.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime

from django.utils.dateparse import parse_datetime

from core.cardsafe import scrub_mapping
from payments.sessions.models import ACH_FIELDS, CARD_FIELDS, PaySession

# Twilio's `Required` names fields in PascalCase ("Required=ExpirationDate"); we use the
# `Capture` spelling. Both spellings, and the callback field names, are understood.
_REQUIRED_ALIASES = {
    "paymentcardnumber": "payment-card-number",
    "expirationdate": "expiration-date",
    "securitycode": "security-code",
    "postalcode": "postal-code",
    "paymentcardpostalcode": "postal-code",
    "bankroutingnumber": "bank-routing-number",
    "bankaccountnumber": "bank-account-number",
}
# The <Prompt errorType> list spells it `timeout`, the status callbacks `input-timeout`
# (docs/twilio-pay.md §2, §3.4): one name here.
_ERROR_TYPE_ALIASES = {"timeout": "input-timeout"}

# Results that end a session, and the status each one leaves it in.
RESULT_STATUS = {
    "success": PaySession.Status.SUCCEEDED,
    "caller-interrupted-with-star": PaySession.Status.CANCELLED,
    "caller-hung-up": PaySession.Status.CANCELLED,
}


def normalize(raw: dict[str, str], *, source: str) -> dict[str, str]:
    """Masked, trimmed callback parameters; empty strings dropped (Twilio sends fields
    that do not apply as empty strings). `Required` is kept when empty on a capture
    callback, because there an empty list means "nothing left to collect"."""
    clean = scrub_mapping({k: str(v).strip() for k, v in raw.items()}, source=source)
    params = {k: v for k, v in clean.items() if v != ""}
    if "Required" in clean and clean.get("Capture"):
        params["Required"] = clean["Required"]
    if "ErrorType" in params:
        params["ErrorType"] = _ERROR_TYPE_ALIASES.get(params["ErrorType"], params["ErrorType"])
    return params


def content_key(params: dict[str, str]) -> str:
    """The same callback delivered twice has the same key."""
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def occurred_at(params: dict[str, str]) -> datetime | None:
    for name in ("DateUpdated", "DateCreated"):
        value = params.get(name)
        if value:
            try:
                parsed = parse_datetime(value)
            except ValueError:
                parsed = None
            if parsed is None:
                from email.utils import parsedate_to_datetime

                try:
                    parsed = parsedate_to_datetime(value)  # RFC 2822, as in the REST JSON
                except (TypeError, ValueError):
                    parsed = None
            if parsed is not None:
                return parsed
    return None


def parse_required(value: str) -> list[str]:
    fields = []
    for token in re.split(r"[,\s]+", value):
        if token:
            name = _REQUIRED_ALIASES.get(re.sub(r"[^a-z]", "", token.lower()), token.lower())
            if name not in fields:
                fields.append(name)
    return fields


def initial_required(session: PaySession) -> list[str]:
    if session.payment_method == PaySession.PaymentMethod.ACH_DEBIT:
        return list(ACH_FIELDS)
    fields = ["payment-card-number", "expiration-date"]
    if session.security_code:
        fields.append("security-code")
    if session.postal_code:
        fields.append("postal-code")
    return [f for f in CARD_FIELDS if f in fields]


@dataclass
class Folded:
    """What a session's callbacks say about it."""

    required_fields: list[str]
    capturing_field: str = ""
    last_error_type: str = ""
    captured_any: bool = False
    masked: dict[str, str] = field(default_factory=dict)
    result: dict[str, str] | None = None


def _sort_key(event) -> tuple:
    params = event.payload
    when = event.occurred_at or event.received_at
    # Within one instant, a partial result comes before the final one for that field.
    partial_rank = 0 if params.get("PartialResult") == "true" else 1
    return (when, partial_rank, event.dedupe_key)


# <Pay> TwiML asks for its fields in this order and reports each prompt with For=<field>
# and Attempt=<n> (docs/twilio-pay.md §3.3), not Capture/Required: the fields before the one
# asked for are in. "payment-processing" comes once all of them are.
_PAY_ORDER = [*CARD_FIELDS, *ACH_FIELDS, "payment-processing"]


def _pay_stage(params: dict[str, str]) -> tuple[int, int]:
    field = params["For"]
    attempt = params.get("Attempt", "")
    return (_PAY_ORDER.index(field) if field in _PAY_ORDER else -1, int(attempt) if attempt.isdigit() else 1)


def fold(session: PaySession, events) -> Folded:
    state = Folded(required_fields=initial_required(session))
    pay_stage = (-1, 0)
    for event in sorted(events, key=_sort_key):
        params = event.payload
        if params.get("Result"):
            # The first result by time wins; callers never see two (a final result is final).
            if state.result is None:
                state.result = params
            continue
        if params.get("Capture"):
            state.captured_any = True
            if "Required" in params:
                state.required_fields = parse_required(params["Required"])
            state.last_error_type = params.get("ErrorType", "")
            state.capturing_field = params["Capture"] if params["Capture"] in state.required_fields else ""
        elif params.get("For"):
            # <Pay> callbacks carry no timestamp: progress only moves forward, whatever
            # order they arrive in.
            state.captured_any = True
            stage = _pay_stage(params)
            if stage >= pay_stage:
                pay_stage = stage
                done = _PAY_ORDER[: max(stage[0], 0)]
                state.required_fields = [f for f in initial_required(session) if f not in done]
                state.last_error_type = params.get("ErrorType", "")
                state.capturing_field = params["For"] if params["For"] in state.required_fields else ""
        _merge_masked(state.masked, params)
    if state.result is not None:
        _merge_masked(state.masked, state.result)
    return state


def _merge_masked(masked: dict[str, str], params: dict[str, str]) -> None:
    card = params.get("PaymentCardNumber")
    if card:
        masked["card_number_masked"] = card[:32]
        # The mask's format varies (xxxx-xxxxxx-x4001, xxxxxxxxxxxx1111): read only the last 4.
        tail = card[-4:]
        masked["card_last4"] = tail if tail.isdigit() else ""
    for param, attr, width in (
        ("PaymentCardType", "card_type", 32),
        ("ExpirationDate", "card_expiration", 4),
        ("PaymentCardPostalCode", "postal_code_value", 16),
        ("BankRoutingNumber", "bank_routing_number", 16),
    ):
        if params.get(param):
            masked[attr] = params[param][:width]
    account = params.get("BankAccountNumber")
    if account and account[-2:].isdigit():
        masked["bank_account_last2"] = account[-2:]
