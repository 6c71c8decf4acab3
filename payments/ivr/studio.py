"""Export a payment flow as a Twilio Studio Flow definition (the JSON Studio imports).

For tenants who prefer Studio: the same prompts, the amount in two Gather widgets
(whole units, then cents; or one entry with * as the decimal point), a read-back to
confirm or re-enter, the Capture Payments widget (docs/twilio-pay.md §5), and a Make HTTP
Request widget that reports every outcome back to Paydesk, where it is recorded as an IVR
pay session of the flow (payments/ivr/views.py: studio_result).

What Studio cannot do as Paydesk's own TwiML does: minimum and maximum amounts are not
checked before the payment (Studio's split widget cannot compare decimal amounts), and
flows paid by partner reference cannot be exported (the lookup lives in Paydesk).
The widget output names (`{{widgets.capture_payment.Result}}` and the other
PascalCase fields) follow the <Pay> action parameters; Twilio does not document them
(docs/twilio-pay.md, open question 9).
"""

from core.money import exponent, to_major_string
from payments.ivr import amounts, twiml
from payments.ivr.models import PaymentFlow
from payments.ivr.prompts import Speaker

PAY_WIDGET = "capture_payment"
# Capture Payments transitions (docs/twilio-pay.md §5); every one is reported to Paydesk.
PAY_TRANSITIONS = ("success", "maxFailedAttempts", "providerError", "payInterrupted", "hangup", "validationError")
# Widget outputs sent back to Paydesk: the <Pay> action parameters (§3.2).
REPORTED = (
    "Result",
    "PaymentConfirmationCode",
    "PaymentToken",
    "ProfileId",
    "PaymentError",
    "PayErrorCode",
    "ConnectorError",
    "PaymentCardNumber",
    "PaymentCardType",
    "ExpirationDate",
)


class NotExportable(ValueError):
    pass


def studio_flow_definition(flow: PaymentFlow) -> dict:
    if flow.amount_source == PaymentFlow.AmountSource.REFERENCE and not flow.is_tokenization:
        raise NotExportable("Flows paid by partner reference need Paydesk's own TwiML; Studio cannot look them up.")
    speaker = Speaker.for_flow(flow)
    states: list[dict] = []
    amount_liquid, first = _amount_states(flow, speaker, states)
    greeting = _say("say_greeting", speaker, "greeting", next_state=first)
    if flow.amount_source == PaymentFlow.AmountSource.FIXED and not flow.is_tokenization:
        fixed, _ = speaker.text("fixed_amount", amount=flow.fixed_amount_minor)
        greeting["properties"]["say"] += f" {fixed}"
    states[:0] = [_state("Trigger", "trigger", _trigger("say_greeting"), {}), greeting]
    states.append(_capture_payments(flow, amount_liquid))
    states.append(_report(flow, amount_liquid))
    states.append(
        _state(
            "check_result",
            "split-based-on",
            [
                {"next": "say_failure", "event": "noMatch"},
                _match("say_success", f"{{{{widgets.{PAY_WIDGET}.Result}}}}", "success"),
            ],
            {"input": f"{{{{widgets.{PAY_WIDGET}.Result}}}}"},
        )
    )
    success_key = "success_tokenized" if flow.is_tokenization else "success"
    states.append(_say("say_success", speaker, success_key, amount_text=_spoken_liquid(flow, amount_liquid)))
    states.append(_say("say_failure", speaker, "failure"))
    states.append(_say("say_goodbye", speaker, "too_many_attempts"))
    for index, state in enumerate(states):  # a readable layout when Studio opens it
        state["properties"]["offset"] = {"x": 0, "y": index * 220}
    return {
        "description": f"Paydesk payment flow: {flow.name}",
        "states": states,
        "initial_state": "Trigger",
        "flags": {"allow_concurrent_calls": True},
    }


def _amount_states(flow: PaymentFlow, speaker: Speaker, states: list[dict]) -> tuple[str | None, str]:
    """Add the amount widgets; return (the Liquid amount, the first widget's name)."""
    if flow.is_tokenization:
        return None, PAY_WIDGET
    if flow.amount_source == PaymentFlow.AmountSource.FIXED:
        fixed = to_major_string(flow.fixed_amount_minor, flow.currency)
        return fixed, PAY_WIDGET
    digits = exponent(flow.currency)
    star = flow.amount_entry == PaymentFlow.AmountEntry.STAR_DECIMAL and digits
    whole_say, _ = speaker.text("amount_star" if star else "amount_units")
    states.append(
        _gather(
            "gather_amount",
            flow,
            whole_say,
            next_state="gather_minor" if digits and not star else "confirm_amount",
        )
    )
    whole = "{{widgets.gather_amount.Digits | plus: 0}}"
    if star:
        amount = "{{widgets.gather_amount.Digits | replace: '*', '.'}}"
    elif digits:
        minor_say, _ = speaker.text("amount_minor")
        states.append(_gather("gather_minor", flow, minor_say, next_state="confirm_amount", num_digits=digits))
        padding = "0" * digits
        amount = f"{whole}.{{{{widgets.gather_minor.Digits | prepend: '{padding}' | slice: -{digits}, {digits}}}}}"
    else:
        amount = whole
    readback, _ = speaker.text("readback", amount_text=_spoken_liquid(flow, amount))
    confirm, _ = speaker.text("confirm")
    states.append(
        _gather("confirm_amount", flow, f"{readback} {confirm}", next_state="check_confirmation", num_digits=1)
    )
    choice = "{{widgets.confirm_amount.Digits}}"
    states.append(
        _state(
            "check_confirmation",
            "split-based-on",
            [
                {"next": "say_goodbye", "event": "noMatch"},
                _match(PAY_WIDGET, choice, "1"),
                _match("gather_amount", choice, "2"),
            ],
            {"input": choice},
        )
    )
    return amount, "gather_amount"


def _spoken_liquid(flow: PaymentFlow, amount: str | None) -> str:
    major_units, _ = amounts.unit_names(flow.currency)
    return f"{amount} {major_units}" if amount else ""


def _capture_payments(flow: PaymentFlow, amount: str | None) -> dict:
    properties = {
        "payment_connector": flow.connector.unique_name,
        "payment_method": "credit-card",
        "currency": flow.currency.lower(),
        "language": flow.language,
        "max_attempts": flow.pay_max_attempts,
        "timeout": flow.timeout,
        "security_code": flow.security_code,
        "postal_code": flow.postal_code,
        "valid_card_types": flow.card_types,
        "description": flow.description,
        "parameters": [{"key": str(k), "value": str(v)} for k, v in (flow.parameters or {}).items()],
    }
    if flow.postal_code and flow.min_postal_code_length:
        properties["min_postal_code_length"] = flow.min_postal_code_length
    if amount is None:
        properties["payment_token_type"] = flow.token_type
    else:
        properties["payment_amount"] = amount
    transitions = [{"next": "report_result", "event": event} for event in PAY_TRANSITIONS]
    return _state(PAY_WIDGET, "capture-payments", transitions, properties)


def _report(flow: PaymentFlow, amount: str | None) -> dict:
    parameters = [
        {"key": "AccountSid", "value": "{{trigger.call.AccountSid}}"},
        {"key": "CallSid", "value": "{{trigger.call.CallSid}}"},
        {"key": "Currency", "value": flow.currency},
    ]
    if amount is not None:
        parameters.append({"key": "ChargeAmount", "value": amount})
    parameters += [{"key": name, "value": f"{{{{widgets.{PAY_WIDGET}.{name}}}}}"} for name in REPORTED]
    properties = {
        "method": "POST",
        "content_type": "application/x-www-form-urlencoded;charset=utf-8",
        "url": twiml.flow_url(flow, "studio"),
        "parameters": parameters,
    }
    transitions = [{"next": "check_result", "event": "success"}, {"next": "check_result", "event": "failed"}]
    return _state("report_result", "make-http-request", transitions, properties)


def _trigger(first: str) -> list[dict]:
    return [
        {"event": "incomingMessage"},
        {"next": first, "event": "incomingCall"},
        {"event": "incomingConversationMessage"},
        {"event": "incomingRequest"},
        {"event": "incomingParent"},
    ]


def _gather(name: str, flow: PaymentFlow, say: str, *, next_state: str, num_digits: int | None = None) -> dict:
    properties = {
        "say": say,
        "language": flow.language,
        "finish_on_key": "#",
        "stop_gather": True,
        "timeout": flow.timeout,
        "loop": 1,
        "gather_language": flow.language,
        "speech_timeout": "auto",
        "profanity_filter": "true",
    }
    if num_digits:
        properties["number_of_digits"] = num_digits
    transitions = [
        {"next": next_state, "event": "keypress"},
        {"event": "speech"},
        {"next": "say_goodbye", "event": "timeout"},
    ]
    return _state(name, "gather-input-on-call", transitions, properties)


def _say(name: str, speaker: Speaker, key: str, *, next_state: str | None = None, **kwargs) -> dict:
    text, language = speaker.text(key, **kwargs)
    transition = {"next": next_state, "event": "audioComplete"} if next_state else {"event": "audioComplete"}
    return _state(name, "say-play", [transition], {"say": text, "language": language, "loop": 1})


def _match(next_state: str, argument: str, value: str) -> dict:
    return {
        "next": next_state,
        "event": "match",
        "conditions": [{"friendly_name": value, "arguments": [argument], "type": "equal_to", "value": value}],
    }


def _state(name: str, kind: str, transitions: list[dict], properties: dict) -> dict:
    return {"name": name, "type": kind, "transitions": transitions, "properties": properties}
