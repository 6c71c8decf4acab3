"""The TwiML of <Pay> and around it, parsed as XML: fixed amounts, tokenization, the
<Pay> attributes and prompts, the answer to every Result, retries after a decline, and
unknown, disabled or failing flows."""

import pytest

from payments.ivr.models import IvrPayment
from payments.sessions.models import PayEvent, PaySession
from tests.ivr.conftest import enter_amount, parse, pay_of, query, says, verbs, voice_url

pytestmark = pytest.mark.django_db


# --- Fixed amounts, references, tokenization ------------------------------------------


def test_a_fixed_amount_flow_goes_straight_to_pay(phone, make_flow):
    flow = make_flow(amount_source="fixed", fixed_amount_minor=4999)
    root = phone().twiml(voice_url(flow))
    assert says(root)[:2] == [
        "Thank you for calling Acme.",
        "The amount to pay is forty-nine dollars and ninety-nine cents.",
    ]
    assert pay_of(root).get("chargeAmount") == "49.99"


def test_a_tokenization_flow_sends_the_token_type_and_no_amount(phone, make_flow):
    flow = make_flow(operation="tokenize", token_type="payment-method")
    root = phone().twiml(voice_url(flow))
    pay = pay_of(root)
    assert pay.get("tokenType") == "payment-method"
    assert pay.get("chargeAmount") is None
    session = PaySession.objects.get()
    assert session.is_tokenization and session.token_type == "payment-method"


# --- <Pay> ----------------------------------------------------------------------------


def test_pay_carries_the_flow_settings_and_paydesk_urls(phone, make_flow):
    flow = make_flow(
        valid_card_types="visa mastercard",
        min_postal_code_length=5,
        max_attempts=5,
        description="Water bill",
        parameters={"department": "water"},
    )
    call = phone()
    pay = pay_of(call.press(enter_amount(call, flow, "12", "50"), "1"))
    session = PaySession.objects.get()
    assert pay.attrib == {
        "input": "dtmf",
        "paymentMethod": "credit-card",
        "paymentConnector": "Stripe_Dev",
        "action": f"http://testserver/twilio/ivr/pay/{session.callback_token}/action/",
        "statusCallback": f"http://testserver/twilio/ivr/pay/{session.callback_token}/status/",
        "statusCallbackMethod": "POST",
        "chargeAmount": "12.50",
        "currency": "usd",
        "description": f"Water bill · Paydesk {session.uuid}",
        "language": "en-US",
        "maxAttempts": "3",  # the flow allows 5; <Pay> takes at most 3
        "timeout": "5",
        "postalCode": "true",
        "securityCode": "true",
        "minPostalCodeLength": "5",
        "validCardTypes": "visa mastercard",
    }
    assert [(p.get("name"), p.get("value")) for p in pay.findall("Parameter")] == [("department", "water")]
    # what was handed to Twilio is in the session's timeline
    event = PayEvent.objects.get(session=session, kind="pay-twiml")
    assert event.payload["charge_amount"] == "12.50" and event.direction == "out"


def test_pay_has_a_prompt_per_field_error_type_and_attempt(phone, make_flow):
    flow = make_flow(max_attempts=2)
    call = phone()
    pay = pay_of(call.press(enter_amount(call, flow, "12", "50"), "1"))
    prompts = [
        (p.get("for"), p.get("attempt"), p.get("errorType"), p.get("cardType"), [s.text for s in p.findall("Say")])
        for p in pay.findall("Prompt")
    ]
    assert (
        "payment-card-number",
        "1",
        None,
        None,
        ["Please enter your card number, then press the pound key."],
    ) in prompts
    assert (
        "payment-card-number",
        "2",
        "invalid-card-number",
        None,
        ["That card number is not valid.", "Please enter your card number, then press the pound key."],
    ) in prompts
    errors = {(f, e) for f, a, e, _, _ in prompts if e}
    assert errors == {
        ("payment-card-number", "timeout"),
        ("payment-card-number", "invalid-card-number"),
        ("payment-card-number", "invalid-card-type"),
        ("expiration-date", "timeout"),
        ("expiration-date", "invalid-date"),
        ("security-code", "timeout"),
        ("security-code", "invalid-security-code"),
        ("postal-code", "timeout"),
        ("postal-code", "invalid-postal-code"),
    }
    security = [(a, c) for f, a, e, c, _ in prompts if f == "security-code" and not e]
    assert security == [("1", "visa mastercard"), ("1", "amex")]  # amex asks for its four digits
    assert prompts[-1][:2] == ("payment-processing", None)


def test_pay_without_postal_or_security_code_asks_neither(phone, make_flow):
    flow = make_flow(postal_code=False, security_code=False, max_attempts=1)
    pay = pay_of(
        phone().twiml(
            voice_url(
                make_flow(
                    amount_source="fixed",
                    fixed_amount_minor=100,
                    postal_code=False,
                    security_code=False,
                    max_attempts=1,
                )
            )
        )
    )
    assert pay.get("postalCode") == "false" and pay.get("securityCode") == "false"
    assert {p.get("for") for p in pay.findall("Prompt")} == {
        "payment-card-number",
        "expiration-date",
        "payment-processing",
    }
    assert not [p for p in pay.findall("Prompt") if p.get("errorType")]  # one attempt: no retry prompts
    assert flow.pay_max_attempts == 1


def test_twilio_retrying_the_confirmation_gets_the_same_session(phone, make_flow):
    flow = make_flow()
    call = phone()
    readback = enter_amount(call, flow, "12", "50")
    first = pay_of(call.press(readback, "1"))
    second = pay_of(call.press(readback, "1"))
    assert first.get("action") == second.get("action")
    assert PaySession.objects.count() == 1


# --- The answer to <Pay action> --------------------------------------------------------


def start_pay(call, flow):
    call.press(enter_amount(call, flow, "12", "50"), "1")
    return IvrPayment.objects.select_related("pay_session").get(pay_session__call_sid=call.call_sid)


@pytest.mark.parametrize(
    "result,heard,last",
    [
        ("success", ["Your payment of twelve dollars and fifty cents was successful. Thank you. Goodbye."], "Hangup"),
        ("caller-interrupted-with-star", ["You cancelled the payment. Goodbye."], "Hangup"),
        ("caller-hung-up", [], "Hangup"),
        ("too-many-failed-attempts", ["Sorry, we could not complete your payment. Goodbye."], "Hangup"),
        ("validation-error", ["Sorry, we could not complete your payment. Goodbye."], "Hangup"),
        ("internal-error", ["Sorry, we could not complete your payment. Goodbye."], "Hangup"),
        (
            "payment-connector-error",
            ["Sorry, your payment could not be processed.", "To try another card, press 1. To end the call, press 2."],
            "Gather",
        ),
    ],
)
def test_every_result_is_recorded_and_told_to_the_caller(phone, make_flow, result, heard, last):
    call = phone()
    payment = start_pay(call, make_flow())
    root = call.twiml(f"/twilio/ivr/pay/{payment.pay_session.callback_token}/action/", {"Result": result})
    assert says(root) == heard
    assert verbs(root)[-1] == last
    session = PaySession.objects.get()
    assert session.result == result
    assert session.status == {"success": "succeeded", "caller-interrupted-with-star": "cancelled",
                              "caller-hung-up": "cancelled"}.get(result, "failed")  # fmt: skip


def test_a_decline_offers_another_card_and_1_starts_a_second_pay(phone, make_flow):
    call = phone()
    first = start_pay(call, make_flow())
    action = f"/twilio/ivr/pay/{first.pay_session.callback_token}/action/"
    offer = call.twiml(action, {"Result": "payment-connector-error", "PayErrorCode": "64012"})
    assert query(offer.find("Gather").get("action")) == {}
    pay = pay_of(call.press(offer, "1"))
    second = IvrPayment.objects.get(pay_try=2)
    assert pay.get("action").endswith(f"/twilio/ivr/pay/{second.pay_session.callback_token}/action/")
    assert pay.get("chargeAmount") == "12.50" and second.pay_session.call_sid == call.call_sid
    assert PaySession.objects.get(pk=first.pay_session_id).result == "payment-connector-error"


def test_2_after_a_decline_says_goodbye(phone, make_flow):
    call = phone()
    first = start_pay(call, make_flow())
    offer = call.twiml(
        f"/twilio/ivr/pay/{first.pay_session.callback_token}/action/", {"Result": "payment-connector-error"}
    )
    root = call.press(offer, "2")
    assert says(root) == ["Goodbye."] and verbs(root) == ["Say", "Hangup"]
    assert PaySession.objects.count() == 1


def test_no_retry_when_the_flow_forbids_it_or_attempts_are_spent(phone, make_flow):
    call = phone()
    payment = start_pay(call, make_flow(retry_on_decline=False))
    root = call.twiml(
        f"/twilio/ivr/pay/{payment.pay_session.callback_token}/action/", {"Result": "payment-connector-error"}
    )
    assert verbs(root) == ["Say", "Say", "Hangup"]

    call = phone()
    payment = start_pay(call, make_flow(max_attempts=1))
    root = call.twiml(
        f"/twilio/ivr/pay/{payment.pay_session.callback_token}/action/", {"Result": "payment-connector-error"}
    )
    assert "Gather" not in verbs(root)


def test_a_retry_request_without_a_recorded_decline_starts_nothing(phone, make_flow):
    call = phone()
    payment = start_pay(call, make_flow())
    root = call.twiml(f"/twilio/ivr/pay/{payment.pay_session.callback_token}/retry/", {"Digits": "1"})
    assert says(root) == ["Goodbye."]
    assert PaySession.objects.count() == 1


# --- Unknown, disabled and broken flows -------------------------------------------------


def test_an_unknown_flow_answers_polite_twiml(phone):
    root = phone().twiml("/twilio/ivr/no-such-flow/voice/")
    assert says(root) == ["Sorry, we cannot take payments on this number right now. Goodbye."]
    assert verbs(root) == ["Say", "Hangup"]


def test_a_disabled_flow_answers_politely_and_records_nothing(phone, make_flow):
    flow = make_flow(amount_source="fixed", fixed_amount_minor=100, is_active=False)
    root = phone().twiml(voice_url(flow))
    assert verbs(root) == ["Say", "Hangup"]
    assert not PaySession.objects.exists()


def test_a_flow_of_a_suspended_tenant_or_disabled_connector_answers_politely(phone, make_flow, world):
    from tenants.services import Actor, tenant_set_status

    flow = make_flow(amount_source="fixed", fixed_amount_minor=100)
    flow.connector.is_active = False
    flow.connector.save()
    assert verbs(phone().twiml(voice_url(flow))) == ["Say", "Hangup"]
    other = make_flow(world.globex, amount_source="fixed", fixed_amount_minor=100)
    tenant_set_status(tenant=world.globex.tenant, status="suspended", actor=Actor.system("t"))
    assert verbs(phone(world.globex).twiml(voice_url(other))) == ["Say", "Hangup"]
    assert not PaySession.objects.exists()


def test_a_failing_step_answers_polite_twiml_not_a_stack_trace(phone, make_flow, monkeypatch):
    from payments.ivr import services

    def broken(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(services, "ivr_payment_start", broken)
    flow = make_flow(amount_source="fixed", fixed_amount_minor=100)
    response = phone().post(voice_url(flow))
    root = parse(response)
    assert says(root) == ["Sorry, we cannot take payments on this number right now. Goodbye."]
    assert b"database on fire" not in response.content


def test_tampered_state_in_the_url_is_refused(phone, make_flow):
    flow = make_flow(max_amount_minor=1000)
    call = phone()
    root = call.twiml(f"/twilio/ivr/{flow.voice_token}/confirm/?amount=999999&attempt=1", {"Digits": "1"})
    assert says(root)[0] == "Sorry, that is not an amount I can take."
    assert not PaySession.objects.exists()


def test_get_is_not_allowed(client, make_flow):
    assert client.get(voice_url(make_flow())[len("http://testserver") :]).status_code == 405


@pytest.mark.parametrize("endpoint", ["amount/?step=units&attempt=1", "confirm/?amount=100&attempt=1"])
def test_a_step_of_another_kind_of_flow_is_refused_politely(phone, make_flow, endpoint):
    flow = make_flow(amount_source="fixed", fixed_amount_minor=5000)
    root = phone().twiml(f"/twilio/ivr/{flow.voice_token}/{endpoint}", {"Digits": "1"})
    assert says(root) == ["Sorry, we cannot take payments on this number right now. Goodbye."]
    assert not PaySession.objects.exists()


def test_a_reference_payment_passes_the_reference_as_a_parameter(phone, make_flow):
    from payments.ivr import services
    from tenants.services import Actor

    flow = make_flow(amount_source="reference", parameters={"site": "north"})
    services.payment_reference_register(
        flow=flow, reference="5150", amount_minor=2575, description="Invoice 5150", actor=Actor.system("t")
    )
    call = phone()
    readback = call.press(call.twiml(voice_url(flow)), "5150")
    assert says(readback)[0] == "For reference 5 1 5 0, the amount due is twenty-five dollars and seventy-five cents."
    pay = pay_of(call.press(readback, "1"))
    assert pay.get("chargeAmount") == "25.75"
    assert [(p.get("name"), p.get("value")) for p in pay.findall("Parameter")] == [
        ("reference", "5150"),
        ("site", "north"),
    ]
    session = PaySession.objects.get()
    assert session.parameter == {"reference": "5150", "site": "north"}
    assert pay.get("description") == f"Invoice 5150 · Paydesk {session.uuid}"
    assert IvrPayment.objects.get().reference.reference == "5150"


def test_a_reference_changed_after_the_read_back_is_read_again(phone, make_flow):
    from payments.ivr import services
    from tenants.services import Actor

    flow = make_flow(amount_source="reference")
    services.payment_reference_register(flow=flow, reference="77", amount_minor=1000, actor=Actor.system("t"))
    call = phone()
    readback = call.press(call.twiml(voice_url(flow)), "77")
    services.payment_reference_register(flow=flow, reference="77", amount_minor=1100, actor=Actor.system("t"))
    root = call.press(readback, "1")
    assert "the amount due is eleven dollars" in says(root)[0]
    assert not PaySession.objects.exists()
