"""The endpoints Twilio calls during an IVR payment.

Every request is checked against X-Twilio-Signature with the flow's tenant's auth token
before anything beyond the flow (or session) lookup is read or written. A bad signature
answers 403 and changes nothing. Callers never hear a stack trace: an unknown, disabled
or failing flow answers polite TwiML.

    POST twilio/ivr/<flow token>/voice/       the number's voice webhook: greeting, first question
    POST twilio/ivr/<flow token>/amount/      a <Gather> of the amount (?step=units|minor|star)
    POST twilio/ivr/<flow token>/reference/   a <Gather> of the partner's reference
    POST twilio/ivr/<flow token>/confirm/     1 confirms the amount read back (starts <Pay>), 2 re-enters
    POST twilio/ivr/<flow token>/studio/      an exported Studio flow reports its result
    POST twilio/ivr/pay/<session token>/status/   <Pay statusCallback>
    POST twilio/ivr/pay/<session token>/action/   <Pay action>: record the result, tell the caller
    POST twilio/ivr/pay/<session token>/retry/    after a decline, 1 tries another card
"""

import functools
import logging
import re
from functools import partial

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.money import parse_major
from payments.ivr import amounts, selectors, services, twiml
from payments.ivr.amounts import AmountError
from payments.ivr.models import MAX_FLOW_ATTEMPTS, PaymentFlow, PaymentReference
from payments.ivr.prompts import Speaker
from payments.sessions.webhooks import twilio_signature_ok

logger = logging.getLogger(__name__)

CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}\Z")
Source = PaymentFlow.AmountSource


def _twiml(document: twiml.VoiceResponse) -> HttpResponse:
    return HttpResponse(twiml.render(document), content_type="text/xml; charset=utf-8")


def _refused() -> HttpResponse:
    return HttpResponse("Invalid Twilio signature.", status=403, content_type="text/plain")


def _verified(request: HttpRequest, tenant) -> bool:
    if not twilio_signature_ok(request, auth_token_ciphertext=tenant.twilio_auth_token_ciphertext):
        return False
    return request.POST.get("AccountSid") in ("", None, tenant.twilio_account_sid)


def _live(flow: PaymentFlow) -> bool:
    return flow.is_active and flow.tenant.is_active and flow.connector.is_active


def _call_sid(request: HttpRequest) -> str | None:
    value = request.POST.get("CallSid", "")
    return value if CALL_SID.match(value) else None


def _attempt(request: HttpRequest) -> int:
    try:
        value = int(request.GET.get("attempt", "1"))
    except ValueError:
        value = 1
    return max(1, min(value, MAX_FLOW_ATTEMPTS))


def caller_facing(view):
    """csrf_exempt, POST only, and polite TwiML instead of an error page."""

    @csrf_exempt
    @require_POST
    @functools.wraps(view)
    def wrapper(request: HttpRequest, token: str) -> HttpResponse:
        try:
            return view(request, token)
        except Exception:
            logger.exception("IVR step %s failed", view.__name__)
            return _twiml(twiml.unavailable())

    return wrapper


def _flow_or_answer(request: HttpRequest, token: str) -> tuple[PaymentFlow | None, HttpResponse | None]:
    flow = selectors.payment_flow_for_voice(token=token)
    if flow is None:
        return None, _twiml(twiml.unavailable())
    if not _verified(request, flow.tenant):
        logger.warning("IVR request for flow %s refused: bad signature", flow.uuid)
        return None, _refused()
    if not _live(flow):
        return None, _twiml(twiml.unavailable(Speaker.for_flow(flow)))
    return flow, None


# --- The flow's steps -----------------------------------------------------------------


@caller_facing
def voice(request: HttpRequest, token: str) -> HttpResponse:
    flow, answer = _flow_or_answer(request, token)
    if flow is None:
        return answer
    speaker = Speaker.for_flow(flow)
    greeting = [speaker.say("greeting")]
    if flow.is_tokenization or flow.amount_source == Source.FIXED:
        return _start_pay(request, flow, speaker, amount_minor=flow.fixed_amount_minor, preface=greeting)
    return _twiml(twiml.first_entry(flow, speaker, attempt=1, preface=greeting))


def _takes(flow: PaymentFlow, *sources: str) -> bool:
    """Whether this step belongs to the flow (a URL of another kind of flow is refused)."""
    return not flow.is_tokenization and flow.amount_source in sources


@caller_facing
def amount(request: HttpRequest, token: str) -> HttpResponse:
    flow, answer = _flow_or_answer(request, token)
    if flow is None:
        return answer
    if not _takes(flow, Source.CALLER):
        return _twiml(twiml.unavailable(Speaker.for_flow(flow)))
    speaker = Speaker.for_flow(flow)
    step, attempt, digits = request.GET.get("step"), _attempt(request), request.POST.get("Digits", "")
    bounds = {"minimum": flow.min_amount_minor, "maximum": flow.max_amount_minor}
    try:
        if step == "units" and "*" in digits:
            # A caller who keys the amount in one go, star as the decimal point (12*50#), is
            # understood in the two-entry flow as well.
            value = amounts.parse_star_entry(digits, flow.currency)
        elif step == "units":
            value = amounts.parse_whole_units(digits, flow.currency)
            if amounts.needs_minor_entry(flow.currency):
                if value:  # the whole units alone may already be too much
                    amounts.check_bounds(value, minimum=None, maximum=flow.max_amount_minor)
                whole = digits.lstrip("0") or "0"
                return _twiml(twiml.minor_entry(flow, speaker, whole=whole, attempt=attempt))
        elif step == "minor":
            value = amounts.parse_units_and_cents(request.GET.get("whole", ""), digits, flow.currency)
        elif step == "star":
            value = amounts.parse_star_entry(digits, flow.currency)
        else:
            return _twiml(twiml.unavailable(speaker))
        amounts.check_bounds(value, **bounds)
    except AmountError as error:
        ask = partial(twiml.first_entry, flow, speaker)
        return _twiml(
            twiml.again_or_give_up(flow, speaker, attempt=attempt, error_key=twiml.error_key(error.code), ask=ask)
        )
    return _twiml(twiml.confirmation(flow, speaker, amount_minor=value, attempt=attempt))


@caller_facing
def reference(request: HttpRequest, token: str) -> HttpResponse:
    flow, answer = _flow_or_answer(request, token)
    if flow is None:
        return answer
    if not _takes(flow, Source.REFERENCE):
        return _twiml(twiml.unavailable(Speaker.for_flow(flow)))
    speaker = Speaker.for_flow(flow)
    attempt, digits = _attempt(request), request.POST.get("Digits", "")
    found = selectors.payment_reference_open(flow=flow, reference=digits) if digits.isdigit() else None
    if found is None or found.currency != flow.currency:
        ask = partial(twiml.first_entry, flow, speaker)
        key = "no_input" if not digits else "reference_not_found"
        return _twiml(twiml.again_or_give_up(flow, speaker, attempt=attempt, error_key=key, ask=ask))
    return _twiml(twiml.confirmation(flow, speaker, amount_minor=found.amount_minor, attempt=attempt, reference=found))


@caller_facing
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    flow, answer = _flow_or_answer(request, token)
    if flow is None:
        return answer
    if not _takes(flow, Source.CALLER, Source.REFERENCE):
        return _twiml(twiml.unavailable(Speaker.for_flow(flow)))
    speaker = Speaker.for_flow(flow)
    attempt, digits = _attempt(request), request.POST.get("Digits", "")
    ask = partial(twiml.first_entry, flow, speaker)
    try:
        value = int(request.GET.get("amount", ""))
        amounts.check_bounds(value, minimum=flow.min_amount_minor, maximum=flow.max_amount_minor)
    except (ValueError, AmountError):
        return _twiml(twiml.again_or_give_up(flow, speaker, attempt=attempt, error_key="amount_unreadable", ask=ask))
    found = None
    if flow.amount_source == Source.REFERENCE:
        found = selectors.payment_reference_for_confirm(flow=flow, uuid=request.GET.get("ref") or None)
        if found is None or found.status != PaymentReference.Status.OPEN:
            return _twiml(
                twiml.again_or_give_up(flow, speaker, attempt=attempt, error_key="reference_not_found", ask=ask)
            )
        if found.amount_minor != value:  # the partner changed it since it was read out: read it again
            return _twiml(
                twiml.confirmation(flow, speaker, amount_minor=found.amount_minor, attempt=attempt, reference=found)
            )
    if digits == "1":
        return _start_pay(request, flow, speaker, amount_minor=value, reference=found)
    if digits == "2":
        if attempt >= flow.max_attempts:
            return _twiml(twiml.hang_up(speaker, "too_many_attempts"))
        return _twiml(twiml.first_entry(flow, speaker, attempt=attempt + 1))
    again = partial(twiml.confirmation, flow, speaker, amount_minor=value, reference=found)
    return _twiml(twiml.again_or_give_up(flow, speaker, attempt=attempt, error_key="no_input", ask=again))


def _start_pay(request, flow, speaker, *, amount_minor, reference=None, preface=()) -> HttpResponse:
    call_sid = _call_sid(request)
    if call_sid is None:
        return _twiml(twiml.unavailable(speaker))
    payment = services.ivr_payment_start(flow=flow, call_sid=call_sid, amount_minor=amount_minor, reference=reference)
    if not flow.is_tokenization and flow.amount_source == Source.FIXED:
        preface = [*preface, speaker.say("fixed_amount", amount=amount_minor)]
    return _twiml(twiml.pay(flow, speaker, payment.pay_session, preface=preface))


# --- <Pay> callbacks ------------------------------------------------------------------


@csrf_exempt
@require_POST
def pay_status(request: HttpRequest, token: str) -> HttpResponse:
    payment = selectors.ivr_payment_for_token(token=token)
    if payment is None:
        return HttpResponse(status=404)
    if not _verified(request, payment.tenant):
        logger.warning("IVR pay callback for session %s refused: bad signature", payment.pay_session.uuid)
        return _refused()
    services.ivr_pay_event_record(payment=payment, raw_params=request.POST.dict(), kind="status-callback")
    return HttpResponse(status=204)


def _can_retry(payment, result: str) -> bool:
    flow = payment.flow
    if payment.reference is not None and payment.reference.status != PaymentReference.Status.OPEN:
        return False
    return (
        result in twiml.RETRYABLE_RESULTS
        and flow.retry_on_decline
        and payment.pay_try < flow.max_attempts
        and _live(flow)
    )


@caller_facing
def pay_action(request: HttpRequest, token: str) -> HttpResponse:
    payment = selectors.ivr_payment_for_token(token=token)
    if payment is None:
        return _twiml(twiml.unavailable())
    if not _verified(request, payment.tenant):
        logger.warning("IVR pay action for session %s refused: bad signature", payment.pay_session.uuid)
        return _refused()
    services.ivr_pay_event_record(payment=payment, raw_params=request.POST.dict(), kind="action")
    result = request.POST.get("Result", "")
    flow, speaker = payment.flow, Speaker.for_flow(payment.flow)
    can_retry = _can_retry(payment, result)
    return _twiml(twiml.outcome(flow, speaker, payment.pay_session, result=result, can_retry=can_retry))


@caller_facing
def pay_retry(request: HttpRequest, token: str) -> HttpResponse:
    payment = selectors.ivr_payment_for_token(token=token)
    if payment is None:
        return _twiml(twiml.unavailable())
    if not _verified(request, payment.tenant):
        return _refused()
    flow, speaker = payment.flow, Speaker.for_flow(payment.flow)
    session = payment.pay_session
    same_call = request.POST.get("CallSid", session.call_sid) == session.call_sid
    # The decline is read from the stored action request, not from the request in hand.
    if (
        request.POST.get("Digits") != "1"
        or not same_call
        or not _can_retry(payment, selectors.ivr_action_result(payment=payment))
    ):
        return _twiml(twiml.hang_up(speaker, "goodbye"))
    following = services.ivr_payment_start(
        flow=flow,
        call_sid=session.call_sid,
        amount_minor=session.amount_minor,
        pay_try=payment.pay_try + 1,
        reference=payment.reference,
    )
    return _twiml(twiml.pay(flow, speaker, following.pay_session))


# --- Studio ---------------------------------------------------------------------------


@csrf_exempt
@require_POST
def studio_result(request: HttpRequest, token: str) -> HttpResponse:
    """An exported Studio flow's Make HTTP Request widget reports the Capture Payments
    result. Recorded even for a disabled flow: the payment happened at Twilio."""
    flow = selectors.payment_flow_for_voice(token=token)
    if flow is None:
        return HttpResponse(status=404)
    if not _verified(request, flow.tenant):
        logger.warning("Studio report for flow %s refused: bad signature", flow.uuid)
        return _refused()
    if _call_sid(request) is None:
        return HttpResponse("CallSid is missing or malformed.", status=400, content_type="text/plain")
    amount_minor = None
    if not flow.is_tokenization:
        try:
            amount_minor = parse_major(request.POST.get("ChargeAmount", ""), flow.currency)
        except ValidationError:
            amount_minor = 0
        if amount_minor <= 0:
            return HttpResponse("ChargeAmount is not a positive amount.", status=400, content_type="text/plain")
    services.ivr_studio_result_record(flow=flow, raw_params=request.POST.dict(), amount_minor=amount_minor)
    return HttpResponse(status=204)
