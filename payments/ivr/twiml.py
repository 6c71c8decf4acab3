"""What each step of an IVR call says and asks, as TwiML.

Pure: a step takes the flow (row attributes only), a Speaker and the values the step
needs, and returns the <Response> (a twilio.twiml VoiceResponse) that `render` turns
into the XML answered to Twilio. TwiML is built here, where it is made, with
twilio.twiml alone: it needs no credentials and makes no request, so this module never
imports Twilio's REST client or request validator (only connectors/twilio.py does).
The state of a call (which entry, which attempt, the amount keyed so far) travels in the
query strings of the URLs given to Twilio: Twilio signs the whole URL it calls back, so
that state is as trustworthy as the signature.
"""

from collections.abc import Iterable
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from twilio.twiml.voice_response import Gather, Hangup, Parameter, Pay, Prompt, Say, VoiceResponse

from core.money import exponent, parse_major, to_major_string
from payments.ivr import amounts
from payments.ivr.models import PaymentFlow
from payments.ivr.prompts import Speaker
from payments.sessions.models import PaySession
from payments.sessions.services import paydesk_reference

Source, Entry = PaymentFlow.AmountSource, PaymentFlow.AmountEntry

# Each <Pay> field, in the order <Pay> asks for them, with the error types it can report
# (the <Prompt errorType> spelling, docs/twilio-pay.md §3.4).
PAY_FIELD_ERRORS = {
    "payment-card-number": ("timeout", "invalid-card-number", "invalid-card-type"),
    "expiration-date": ("timeout", "invalid-date"),
    "security-code": ("timeout", "invalid-security-code"),
    "postal-code": ("timeout", "invalid-postal-code"),
}
# Results after which the caller may try another card (when the flow allows it).
RETRYABLE_RESULTS = frozenset({"payment-connector-error"})


# --- URLs given to Twilio -------------------------------------------------------------


def _absolute(path: str, query: dict) -> str:
    query = {k: v for k, v in query.items() if v not in (None, "")}
    return settings.PAYDESK_PUBLIC_BASE_URL + path + (f"?{urlencode(query)}" if query else "")


def flow_url(flow: PaymentFlow, endpoint: str, **query) -> str:
    """endpoint: voice, amount, reference, confirm, studio."""
    return _absolute(reverse(f"ivr-{endpoint}", kwargs={"token": flow.voice_token}), query)


def pay_url(session: PaySession, endpoint: str) -> str:
    """endpoint: status, action, retry."""
    return _absolute(reverse(f"ivr-pay-{endpoint}", kwargs={"token": session.callback_token}), {})


# --- Building blocks ------------------------------------------------------------------


def response(*verbs) -> VoiceResponse:
    """A <Response> of `verbs` (<Say>, <Gather>, <Pay>, <Hangup>...), in order."""
    document = VoiceResponse()
    for verb in verbs:
        document.append(verb)
    return document


def render(document: VoiceResponse) -> str:
    """The XML answered to Twilio, with its XML declaration."""
    return str(document.to_xml(xml_declaration=True))


def gather(flow: PaymentFlow, action: str, says: Iterable[Say], *, num_digits: int | None = None) -> Gather:
    node = Gather(
        input="dtmf",
        action=action,
        method="POST",
        timeout=flow.timeout,
        finish_on_key="#",
        num_digits=num_digits,
        language=flow.language,
        # No key pressed still reaches the action (with empty Digits), which counts
        # the attempt and answers, instead of falling through the document.
        action_on_empty_result=True,
    )
    for say in says:
        node.append(say)
    return node


def hang_up(speaker: Speaker, *keys: str) -> VoiceResponse:
    return response(*(speaker.say(key) for key in keys), Hangup())


def unavailable(speaker: Speaker | None = None) -> VoiceResponse:
    """For unknown, disabled or broken flows: polite, and the same for every flow."""
    speaker = speaker or Speaker(language="en-US", currency="USD")
    return hang_up(speaker, "unavailable")


# --- Amount and reference entry -------------------------------------------------------


def first_entry(flow: PaymentFlow, speaker: Speaker, *, attempt: int, preface: Iterable[Say] = ()) -> VoiceResponse:
    """Ask for the reference or the amount (its first part in the two-entry mode), after
    the `preface` <Say>s (a greeting, the error of the last attempt)."""
    if flow.amount_source == Source.REFERENCE:
        url = flow_url(flow, "reference", attempt=attempt)
        return response(gather(flow, url, [*preface, speaker.say("reference_entry")]))
    if flow.amount_entry == Entry.STAR_DECIMAL and amounts.needs_minor_entry(flow.currency):
        url = flow_url(flow, "amount", step="star", attempt=attempt)
        return response(gather(flow, url, [*preface, speaker.say("amount_star")]))
    url = flow_url(flow, "amount", step="units", attempt=attempt)
    return response(gather(flow, url, [*preface, speaker.say("amount_units")]))


def minor_entry(flow: PaymentFlow, speaker: Speaker, *, whole: str, attempt: int) -> VoiceResponse:
    url = flow_url(flow, "amount", step="minor", whole=whole, attempt=attempt)
    return response(gather(flow, url, [speaker.say("amount_minor")], num_digits=exponent(flow.currency)))


def confirmation(
    flow: PaymentFlow,
    speaker: Speaker,
    *,
    amount_minor: int,
    attempt: int,
    reference=None,
    preface: Iterable[Say] = (),
) -> VoiceResponse:
    """Read the amount back; 1 confirms, 2 enters it again."""
    if reference is not None:
        readback = speaker.say("reference_readback", amount=amount_minor, reference=reference.reference)
    else:
        readback = speaker.say("readback", amount=amount_minor)
    url = flow_url(
        flow, "confirm", amount=amount_minor, attempt=attempt, ref=str(reference.uuid) if reference else None
    )
    return response(gather(flow, url, [*preface, readback, speaker.say("confirm")], num_digits=1))


def again_or_give_up(flow: PaymentFlow, speaker: Speaker, *, attempt: int, error_key: str, ask) -> VoiceResponse:
    """After a failed entry: ask again (`ask(attempt=, preface=)`) or, at the last
    attempt, give up politely."""
    if attempt >= flow.max_attempts:
        return hang_up(speaker, error_key, "too_many_attempts")
    return ask(attempt=attempt + 1, preface=[speaker.say(error_key)])


def error_key(code: str) -> str:
    """The prompt for an amounts.AmountError code."""
    return "no_input" if code == "no_input" else f"amount_{code}"


# --- <Pay> ----------------------------------------------------------------------------


def pay_attributes(flow: PaymentFlow, session: PaySession) -> dict:
    """<Pay> attributes from the session, so what Twilio is asked is what was recorded."""
    description = f"{session.description} · {paydesk_reference(session)}".lstrip(" ·")
    attrs = {
        "input": "dtmf",
        "payment_method": "credit-card",
        "payment_connector": session.connector.unique_name,
        "action": pay_url(session, "action"),
        "status_callback": pay_url(session, "status"),
        "status_callback_method": "POST",
        "currency": session.currency.lower(),
        "description": description,
        "language": flow.language,
        "max_attempts": flow.pay_max_attempts,
        "timeout": session.timeout,
        "postal_code": session.postal_code,
        "security_code": session.security_code,
        "min_postal_code_length": session.min_postal_code_length if session.postal_code else None,
        "valid_card_types": session.valid_card_types or None,
    }
    if session.amount_minor is None:
        attrs["token_type"] = session.token_type or PaySession.TokenType.REUSABLE
    else:
        attrs["charge_amount"] = to_major_string(session.amount_minor, session.currency)
    return attrs


def pay_fields(flow: PaymentFlow) -> list[str]:
    return [
        f
        for f in PAY_FIELD_ERRORS
        if not (f == "security-code" and not flow.security_code) and not (f == "postal-code" and not flow.postal_code)
    ]


def pay_prompts(flow: PaymentFlow, speaker: Speaker) -> list[Prompt]:
    """A <Prompt> per field for the first attempt, one per error type for the next
    attempts (the error, then the question again), and one for payment processing."""
    retries = " ".join(str(n) for n in range(2, flow.pay_max_attempts + 1)) or None
    prompts = []
    for field in pay_fields(flow):
        key = "pay_" + field.replace("-", "_")
        if field == "security-code" and "amex" in flow.card_types:
            others = " ".join(t for t in flow.card_types if t != "amex")
            if others:
                prompts.append(_prompt(field, [speaker.say(key)], attempt="1", card_type=others))
            prompts.append(_prompt(field, [speaker.say(key + "_amex")], attempt="1", card_type="amex"))
        else:
            prompts.append(_prompt(field, [speaker.say(key)], attempt="1"))
        if retries:
            for error_type in PAY_FIELD_ERRORS[field]:
                says = [speaker.say("error_" + error_type.replace("-", "_")), speaker.say(key)]
                prompts.append(_prompt(field, says, attempt=retries, error_type=error_type))
    prompts.append(_prompt("payment-processing", [speaker.say("processing")]))
    return prompts


def _prompt(field: str, says: list[Say], **attrs) -> Prompt:
    node = Prompt(for_=field, **attrs)
    for say in says:
        node.append(say)
    return node


def pay(flow: PaymentFlow, speaker: Speaker, session: PaySession, *, preface: Iterable[Say] = ()) -> VoiceResponse:
    """<Pay> for the session, after the `preface` <Say>s; its <Parameter>s are the
    session's (the flow's parameters, plus the partner's reference when there is one)."""
    # The SDK leaves out the attributes whose value is None.
    node = Pay(**pay_attributes(flow, session))
    for prompt in pay_prompts(flow, speaker):
        node.append(prompt)
    for name, value in (session.parameter or {}).items():
        node.append(Parameter(name=str(name), value=str(value)))
    return response(*preface, node)


# --- The outcome ----------------------------------------------------------------------


def outcome(flow: PaymentFlow, speaker: Speaker, session: PaySession, *, result: str, can_retry: bool) -> VoiceResponse:
    """What the caller hears after <Pay> (the answer to its action request)."""
    if result == "success":
        if session.amount_minor is None:
            return hang_up(speaker, "success_tokenized")
        return response(speaker.say("success", amount=session.amount_minor), Hangup())
    if result == "caller-hung-up":
        return response(Hangup())
    if result == "caller-interrupted-with-star":
        return hang_up(speaker, "cancelled")
    if result in RETRYABLE_RESULTS:
        if can_retry:
            return response(
                speaker.say("declined"),
                gather(flow, pay_url(session, "retry"), [speaker.say("retry_offer")], num_digits=1),
            )
        return hang_up(speaker, "declined", "goodbye")
    return hang_up(speaker, "failure")


def sample_amount(flow: PaymentFlow) -> int:
    """A plausible amount for previews: the fixed amount, the minimum, or 12.50."""
    if flow.fixed_amount_minor:
        return flow.fixed_amount_minor
    if flow.min_amount_minor:
        return flow.min_amount_minor
    return parse_major("12.50" if exponent(flow.currency) else "1250", flow.currency)
