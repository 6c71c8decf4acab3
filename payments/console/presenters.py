"""What the console shows of a pay session, in words: one `PageState` (a plain dict) that
the template renders first and the page's script applies on every poll. Wording lives
here only, so the first render and the live updates can never disagree.

Card data: the page shows masked values only (last 4, brand, MM/YY; the security code
never). Every string that comes from Twilio, the gateway or a partner passes through
`safe_text`, the card-number tripwire (core/cardsafe.py), so a full card number cannot
reach the page whatever a callback or a stored row says.
"""

import zoneinfo

from core.cardsafe import mask_card_numbers, tripwire_fired
from core.money import to_major_string
from payments.sessions.callbacks import parse_required
from payments.sessions.models import PayEvent, PaySession
from payments.sessions.services import allowed_capture_fields

Status = PaySession.Status

FIELD_LABELS = {
    "payment-card-number": "Card number",
    "expiration-date": "Expiry date",
    "security-code": "Security code",
    "postal-code": "Postal code",
    "bank-routing-number": "Routing number",
    "bank-account-number": "Account number",
}

# Twilio's ErrorType values (docs/twilio-pay.md §2), in words an agent can say to a caller.
ERROR_WORDS = {
    "input-timeout": "No digits were entered in time",
    "invalid-card-number": "Not a valid card number",
    "invalid-card-type": "This type of card is not accepted",
    "invalid-date": "Not a valid expiry date, or the card has expired",
    "invalid-security-code": "The security code does not fit the card",
    "invalid-postal-code": "Not a valid postal code",
    "invalid-bank-routing-number": "Not a valid routing number",
    "invalid-bank-account-number": "Not a valid account number",
    "invalid-bank-account-type": "Not a valid account type",
    "invalid-card-number-security-code-capture-sequence": "Ask for the card number before the security code",
    "input-matching-failed": "The two entries did not match",
    "session-in-progress": "Another payment is already in progress on this call",
    "internal-error": "Twilio had an internal error; ask again",
}

RESULT_WORDS = {
    "success": "Success",
    "payment-connector-error": "The payment gateway refused the payment",
    "caller-interrupted-with-star": "The caller pressed * to stop",
    "caller-hung-up": "The caller hung up",
    "validation-error": "Twilio refused a value of the payment",
    "too-many-failed-attempts": "Too many failed attempts",
    "internal-error": "Twilio had an internal error",
}

# Pay error codes (docs/twilio-pay.md §1.4).
PAY_ERROR_WORDS = {
    "64003": "The amount is not valid for this currency",
    "64004": "The payment connector is not installed in Twilio",
    "64005": "The connector cannot save cards",
    "64007": "The connector cannot take charges",
    "64008": "The payment gateway refused the charge",
    "64010": "The payment gateway refused to save the card",
    "64011": "The connector does not take this currency",
    "64012": "The card was declined",
    "64013": "The connector does not take this payment method",
}

CARD_BRANDS = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "maestro": "Maestro",
    "discover": "Discover",
    "optima": "Optima",
    "jcb": "JCB",
    "diners-club": "Diners Club",
    "enroute": "enRoute",
}

STATE_ICONS = {"waiting": "○", "entering": "◐", "captured": "✓", "invalid": "✗", "confirm": "◑"}
RESULT_ICONS = {"success": "✓", "failed": "✗", "cancelled": "⊘", "expired": "⌛"}


def safe_text(value) -> str:
    """Any text that may carry what a caller typed: card numbers masked (and counted)."""
    text, hits = mask_card_numbers(str(value or ""))
    if hits:
        tripwire_fired(count=hits, source="console page")
    return text


def _sort_key(event: PayEvent) -> tuple:
    # The order payments.sessions.callbacks folds callbacks in.
    params = event.payload
    return (
        event.occurred_at or event.received_at,
        0 if params.get("PartialResult") == "true" else 1,
        event.dedupe_key,
    )


def _base_field(capture: str) -> str:
    return capture.removesuffix("-matcher")


def _masked_value(session: PaySession, field: str) -> tuple[str, str]:
    """(what the page shows, what a screen reader says) for a captured field."""
    if field == "payment-card-number":
        brand = CARD_BRANDS.get(session.card_type, safe_text(session.card_type).title())
        last4 = session.card_last4 if session.card_last4.isdigit() and len(session.card_last4) == 4 else ""
        if not last4:
            return (brand or "Captured", brand or "Captured")
        return (f"{brand} •••• {last4}".strip(), f"{brand} ending {last4}".strip())
    if field == "expiration-date":
        mmyy = session.card_expiration
        if len(mmyy) == 4 and mmyy.isdigit():
            return (f"{mmyy[:2]}/{mmyy[2:]}", f"{mmyy[:2]}/{mmyy[2:]}")
        return ("", "")
    if field == "security-code":
        return ("•••", "hidden")
    if field == "postal-code":
        value = safe_text(session.postal_code_value)
        return (value, value)
    if field == "bank-routing-number":
        value = safe_text(session.bank_routing_number)
        return (value, value)
    if field == "bank-account-number":
        last2 = session.bank_account_last2 if session.bank_account_last2.isdigit() else ""
        return (f"•••• {last2}", f"ending {last2}") if last2 else ("", "")
    return ("", "")


def _has_value(session: PaySession, field: str) -> bool:
    return {
        "payment-card-number": bool(session.card_number_masked or session.card_last4),
        "expiration-date": bool(session.card_expiration),
        "postal-code": bool(session.postal_code_value),
        "bank-routing-number": bool(session.bank_routing_number),
        "bank-account-number": bool(session.bank_account_last2),
    }.get(field, False)


def _field_states(session: PaySession, events: list[PayEvent]) -> list[dict]:
    capture_fields = allowed_capture_fields(session)
    fields = [f for f in capture_fields if not f.endswith("-matcher")]
    last_request: dict[str, PayEvent] = {}
    last_callback: dict[str, PayEvent] = {}
    for event in events:
        if event.direction == PayEvent.Direction.OUTBOUND and event.kind == "capture" and event.http_status == 202:
            last_request[_base_field(event.payload.get("capture", ""))] = event
    for event in sorted((e for e in events if e.direction == PayEvent.Direction.INBOUND), key=_sort_key):
        capture = event.payload.get("Capture")
        if capture:
            last_callback[_base_field(capture)] = event
    open_ = not session.is_terminal and session.status != Status.COMPLETING and bool(session.payment_sid)
    capturing = _base_field(session.capturing_field)
    states = []
    for index, field in enumerate(fields):
        callback, request = last_callback.get(field), last_request.get(field)
        fresh = callback is not None and (request is None or callback.received_at >= request.received_at)
        error_type = callback.payload.get("ErrorType", "") if fresh else ""
        shown, spoken = _masked_value(session, field)
        required = field in session.required_fields
        error_text = ""
        if not required:
            state, state_text = "captured", "Captured"
        elif session.is_terminal:
            state, state_text, shown, spoken = "waiting", "Not collected", "", ""
        elif error_type:
            state, state_text = "invalid", "Invalid attempt"
            error_text = ERROR_WORDS.get(error_type, f"Refused ({safe_text(error_type)})")
            shown, spoken = "", ""
        elif capturing == field:
            typing = fresh and callback.payload.get("PartialResult") == "true"
            state, state_text = "entering", "Caller is typing…" if typing else "Being entered now"
            shown, spoken = "", ""
        elif _has_value(session, field):
            state, state_text = "confirm", "Entered, to be confirmed"
        else:
            state, state_text, shown, spoken = "waiting", "Waiting", "", ""
        matcher = f"{field}-matcher"
        states.append(
            {
                "name": field,
                "label": FIELD_LABELS.get(field, field),
                "key": str(index + 1),
                "state": state,
                "icon": STATE_ICONS[state],
                "state_text": state_text,
                "value_text": shown,
                "value_speech": spoken,
                "error_text": error_text,
                "can_request": open_,
                "request_label": "Request again" if (request is not None or not required) else "Request",
                "matcher": matcher if matcher in capture_fields else "",
                "can_confirm": open_ and matcher in capture_fields and _has_value(session, field),
            }
        )
    return states


def amount_text(session: PaySession) -> str:
    if session.amount_minor is None:
        kind = {"one-time": "one-time token", "payment-method": "payment method"}.get(session.token_type, "reusable")
        return f"Save the card ({kind})"
    return f"{to_major_string(session.amount_minor, session.currency)} {session.currency}"


def _status_text(session: PaySession) -> str:
    if session.status == Status.CREATED:
        return "Ready: request a field" if session.payment_sid else "Starting…"
    return {
        Status.CAPTURING: "Collecting details",
        Status.READY: "Everything collected: ready to complete",
        Status.COMPLETING: "Processing the payment…",
        Status.SUCCEEDED: "Card saved" if session.is_tokenization else "Payment taken",
        Status.FAILED: "Payment failed",
        Status.CANCELLED: "Cancelled",
        Status.EXPIRED: "Expired",
    }.get(session.status, session.status)


def _result(session: PaySession) -> dict | None:
    result = _result_words(session)
    if result is not None:
        result["icon"] = RESULT_ICONS[result["kind"]]
    return result


def _result_words(session: PaySession) -> dict | None:
    if not session.is_terminal:
        return None
    if session.status == Status.SUCCEEDED:
        if session.is_tokenization:
            return {
                "kind": "success",
                "title": "Card saved",
                "detail": "The card was saved for later payments.",
                "code_label": "Token",
                "code": safe_text(session.payment_token),
            }
        return {
            "kind": "success",
            "title": "Payment taken",
            "detail": f"{amount_text(session)} charged.",
            "code_label": "Confirmation code",
            "code": safe_text(session.payment_confirmation_code),
        }
    if session.status == Status.FAILED:
        if not session.payment_sid:
            detail = f"Twilio refused to start the payment: {safe_text(session.twilio_error_message)}"
            return {"kind": "failed", "title": "Could not start", "detail": detail, "code_label": "", "code": ""}
        declined = session.pay_error_code == "64012"
        reason = safe_text(session.payment_error) or PAY_ERROR_WORDS.get(session.pay_error_code, "")
        words = PAY_ERROR_WORDS.get(session.pay_error_code) or RESULT_WORDS.get(session.result, "")
        detail = reason if not words or words.lower() in reason.lower() else f"{words}: {reason}".rstrip(": ")
        return {
            "kind": "failed",
            "title": "Declined" if declined else "Payment failed",
            "detail": detail or "The payment did not go through.",
            "code_label": "Error code" if session.pay_error_code else "",
            "code": safe_text(session.pay_error_code),
        }
    if session.status == Status.CANCELLED:
        detail = RESULT_WORDS.get(session.result, "") if session.result else "Cancelled by the agent."
        return {"kind": "cancelled", "title": "Cancelled", "detail": detail, "code_label": "", "code": ""}
    return {
        "kind": "expired",
        "title": "Expired",
        "detail": "Nothing happened for too long, so the payment was abandoned.",
        "code_label": "",
        "code": "",
    }


def _timeline(session: PaySession, events: list[PayEvent]) -> list[dict]:
    zone = zoneinfo.ZoneInfo(session.tenant.time_zone)
    lines = []
    for event in events:
        text = _event_text(event)
        if text:
            lines.append({"at": event.received_at.astimezone(zone).strftime("%H:%M:%S"), "text": safe_text(text)})
    return lines[-TIMELINE_LINES:]


TIMELINE_LINES = 12


def _event_text(event: PayEvent) -> str:
    p = event.payload
    if event.direction == PayEvent.Direction.OUTBOUND:
        failed = event.http_status not in (201, 202)
        error = (event.response or {}).get("error", "")
        if event.kind == "create":
            return f"Could not start: {error}" if failed else "Payment started on the call"
        if event.kind == "capture":
            capture = p.get("capture", "")
            label = FIELD_LABELS.get(_base_field(capture), capture).lower()
            asked = f"Asked to confirm the {label}" if capture.endswith("-matcher") else f"Asked for the {label}"
            return f"{asked}: failed ({error})" if failed else asked
        if event.kind == "complete":
            return f"Complete refused: {error}" if failed else "Sent for payment"
        if event.kind == "cancel":
            return f"Cancel refused: {error}" if failed else "Cancelled by the agent"
        return ""
    if p.get("Result"):
        if p["Result"] == "success":
            return "Result: success"
        return f"Result: {RESULT_WORDS.get(p['Result'], p['Result'])}"
    capture = p.get("Capture")
    if not capture or p.get("PartialResult") == "true":
        return ""
    label = FIELD_LABELS.get(_base_field(capture), capture)
    if p.get("ErrorType"):
        return f"{label}: {ERROR_WORDS.get(p['ErrorType'], p['ErrorType'])}"
    if "Required" in p and _base_field(capture) not in parse_required(p["Required"]):
        return f"{label} captured"
    return ""


def page_state(session: PaySession, events: list[PayEvent], *, version: str) -> dict:
    """Everything the session page shows. `version` fingerprints what it is built from
    (selectors.console_session_version): the poll's ETag."""
    fields = _field_states(session, events)
    open_ = not session.is_terminal and session.status != Status.COMPLETING and bool(session.payment_sid)
    applied = [e.pk for e in events if e.direction == PayEvent.Direction.INBOUND and e.applied_at is not None]
    state = {
        "session": str(session.uuid),
        "status": session.status,
        "status_text": _status_text(session),
        "terminal": session.is_terminal,
        "amount_text": amount_text(session),
        "fields": fields,
        "can_complete": open_ and not session.required_fields,
        "can_cancel": not session.is_terminal,
        "can_retry": session.status == Status.FAILED,
        "missing_text": ", ".join(f["label"] for f in fields if f["name"] in session.required_fields),
        "result": _result(session),
        "notice": (
            safe_text(f"Twilio: {session.twilio_error_message}")
            if session.twilio_error_message and not session.is_terminal
            else ""
        ),
        "timeline": _timeline(session, events),
        # The newest callback this state includes: the browser test measures, per callback,
        # the time from its arrival to the page showing it.
        "last_event_id": max(applied, default=0),
    }
    state["version"] = version
    return state
