"""The IVR endpoints Twilio calls: signatures on every one, tenant isolation, and the
<Pay> callbacks stored and folded with the agent sessions' guarantees."""

import random

import pytest

from payments.ivr import services
from payments.ivr.models import IvrPayment, PaymentReference
from payments.sessions.models import PayEvent, PaySession
from tenants.services import Actor
from tests.ivr.conftest import BASE, parse, says, voice_url

pytestmark = pytest.mark.django_db

MASKED = {"PaymentCardNumber": "xxxxxxxxxxxx4242", "PaymentCardType": "visa"}


def started(flow, call) -> IvrPayment:
    """A <Pay> started on `call` for 12.50 (as after the caller confirmed)."""
    return services.ivr_payment_start(flow=flow, call_sid=call.call_sid, amount_minor=1250)


def endpoints(flow, payment):
    ref = "&ref=" + str(PaymentReference.objects.first().uuid) if PaymentReference.objects.exists() else ""
    token = payment.pay_session.callback_token
    return {
        "voice": (voice_url(flow), {}),
        "amount": (f"{BASE}/twilio/ivr/{flow.voice_token}/amount/?step=units&attempt=1", {"Digits": "12"}),
        "reference": (f"{BASE}/twilio/ivr/{flow.voice_token}/reference/?attempt=1", {"Digits": "123"}),
        "confirm": (f"{BASE}/twilio/ivr/{flow.voice_token}/confirm/?amount=1250&attempt=1{ref}", {"Digits": "1"}),
        "studio": (f"{BASE}/twilio/ivr/{flow.voice_token}/studio/", {"Result": "success", "ChargeAmount": "12.50"}),
        "pay-status": (f"{BASE}/twilio/ivr/pay/{token}/status/", {"For": "payment-card-number", "Attempt": "1"}),
        "pay-action": (f"{BASE}/twilio/ivr/pay/{token}/action/", {"Result": "success"}),
        "pay-retry": (f"{BASE}/twilio/ivr/pay/{token}/retry/", {"Digits": "1"}),
    }


def snapshot():
    return (
        PaySession.objects.count(),
        PayEvent.objects.count(),
        list(PaySession.objects.values_list("status", "result")),
        list(PaymentReference.objects.values_list("status", flat=True)),
    )


ENDPOINTS = ["voice", "amount", "reference", "confirm", "studio", "pay-status", "pay-action", "pay-retry"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("how", ["missing", "other-tenants-token", "tampered-url", "garbage"])
def test_every_ivr_endpoint_refuses_a_bad_signature_and_records_nothing(phone, make_flow, world, endpoint, how):
    flow = make_flow(amount_source="reference")
    services.payment_reference_register(flow=flow, reference="123", amount_minor=1250, actor=Actor.system("t"))
    call = phone()
    payment = started(flow, call)
    url, params = endpoints(flow, payment)[endpoint]
    before = snapshot()
    if how == "missing":
        response = call.post(url, params, signature="")
    elif how == "other-tenants-token":
        response = call.post(url, params, token=world.globex.auth_token)
    elif how == "garbage":
        response = call.post(url, params, signature="bm90IGEgc2lnbmF0dXJl")
    else:  # signed for another URL: the state in the query string cannot be changed
        from twilio.request_validator import RequestValidator

        body = {"AccountSid": world.acme.tenant.twilio_account_sid, "CallSid": call.call_sid, **params}
        signature = RequestValidator(world.acme.auth_token).compute_signature(url + "&x=1", body)
        response = call.post(url, params, signature=signature)
    assert response.status_code == 403
    assert b"Traceback" not in response.content
    assert snapshot() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_signed_request_naming_another_account_is_refused(phone, make_flow, world, endpoint):
    flow = make_flow()
    call = phone()
    url, params = endpoints(flow, started(flow, call))[endpoint]
    before = snapshot()
    response = call.post(url, {**params, "AccountSid": world.globex.tenant.twilio_account_sid})
    assert response.status_code == 403
    assert snapshot() == before


def test_another_tenants_flow_url_neither_answers_nor_records_for_it(phone, make_flow, world):
    acme_flow = make_flow(world.acme, amount_source="fixed", fixed_amount_minor=1000)
    globex_call = phone(world.globex)  # globex's Twilio account calls acme's URL
    assert globex_call.post(voice_url(acme_flow)).status_code == 403
    response = globex_call.post(
        f"{BASE}/twilio/ivr/{acme_flow.voice_token}/studio/", {"Result": "success", "ChargeAmount": "10.00"}
    )
    assert response.status_code == 403
    assert not PaySession.objects.exists()


def test_a_reference_of_one_tenant_is_unknown_to_another_tenants_flow(phone, make_flow, world):
    acme_flow = make_flow(world.acme, amount_source="reference")
    globex_flow = make_flow(world.globex, amount_source="reference")
    services.payment_reference_register(flow=acme_flow, reference="777", amount_minor=999, actor=Actor.system("t"))
    acme_ref = PaymentReference.objects.get()
    call = phone(world.globex)
    root = call.press(call.twiml(voice_url(globex_flow)), "777")
    assert says(root)[0] == "Sorry, we could not find a payment due for that number."
    # nor can globex's flow be made to confirm acme's reference by its id
    url = f"{BASE}/twilio/ivr/{globex_flow.voice_token}/confirm/?amount=999&attempt=1&ref={acme_ref.uuid}"
    root = call.twiml(url, {"Digits": "1"})
    assert says(root)[0] == "Sorry, we could not find a payment due for that number."
    assert not PaySession.objects.exists()


def test_another_tenants_session_url_is_refused(phone, make_flow, world):
    payment = started(make_flow(world.acme), phone())
    globex_call = phone(world.globex)
    url = f"{BASE}/twilio/ivr/pay/{payment.pay_session.callback_token}/action/"
    assert globex_call.post(url, {"Result": "success"}).status_code == 403
    assert PaySession.objects.get().result == ""


def test_unknown_session_tokens(phone):
    call = phone()
    assert call.post(f"{BASE}/twilio/ivr/pay/nope/status/", {"For": "x"}).status_code == 404
    assert says(parse(call.post(f"{BASE}/twilio/ivr/pay/nope/action/", {"Result": "success"})))[0].startswith("Sorry")
    assert call.post(f"{BASE}/twilio/ivr/nope/studio/", {"Result": "success"}).status_code == 404


def test_an_agent_session_token_is_not_an_ivr_session(phone, world):
    from tests.factories import PaySessionFactory

    agent = PaySessionFactory(tenant=world.acme.tenant, connector=world.acme.connectors["Stripe_Dev"])
    assert phone().post(f"{BASE}/twilio/ivr/pay/{agent.callback_token}/status/", {"For": "x"}).status_code == 404


# --- <Pay> status callbacks and the action ---------------------------------------------


def pay_callbacks(call):
    """The status callbacks of a <Pay> in which the card number failed once."""
    return [
        {"For": "payment-card-number", "Attempt": "1"},
        {"For": "payment-card-number", "Attempt": "2", "ErrorType": "invalid-card-number"},
        {"For": "expiration-date", "Attempt": "1", **MASKED},
        {"For": "security-code", "Attempt": "1", **MASKED, "ExpirationDate": "1230"},
        {"For": "security-code", "Attempt": "2", "ErrorType": "timeout", **MASKED, "ExpirationDate": "1230"},
    ]


def post_status(call, payment, params):
    return call.post(f"{BASE}/twilio/ivr/pay/{payment.pay_session.callback_token}/status/", params)


def test_status_callbacks_fold_into_the_session(phone, make_flow):
    call = phone()
    payment = started(make_flow(), call)
    for params in pay_callbacks(call):
        assert post_status(call, payment, params).status_code == 204
    session = PaySession.objects.get()
    assert session.status == "capturing"
    assert session.capturing_field == "security-code"
    assert session.last_error_type == "input-timeout"  # Prompt's "timeout", one spelling stored
    assert session.required_fields == ["security-code", "postal-code"]
    assert (session.card_last4, session.card_type, session.card_expiration) == ("4242", "visa", "1230")

    post_status(call, payment, {"For": "payment-processing", "Attempt": "1", **MASKED})
    session.refresh_from_db()
    assert session.status == "ready" and session.required_fields == [] and session.capturing_field == ""


@pytest.mark.parametrize("seed", range(5))
def test_callbacks_in_any_order_and_repeated_give_the_same_state(phone, make_flow, seed):
    call = phone()
    payment = started(make_flow(), call)
    callbacks = pay_callbacks(call)
    shuffled = callbacks + random.Random(seed).sample(callbacks, len(callbacks))  # every one twice, any order
    random.Random(seed).shuffle(shuffled)
    for params in shuffled:
        assert post_status(call, payment, params).status_code == 204
    session = PaySession.objects.get()
    assert (session.capturing_field, session.last_error_type) == ("security-code", "input-timeout")
    assert session.required_fields == ["security-code", "postal-code"]
    assert session.events.filter(kind="status-callback").count() == len(callbacks)  # duplicates not stored


def test_the_callers_numbers_and_call_details_are_not_stored(phone, make_flow):
    call = phone()
    payment = started(make_flow(), call)
    post_status(call, payment, {"For": "payment-card-number", "Attempt": "1", "From": "+442071234567",
                                "To": "+15005550001", "CallerName": "Jane"})  # fmt: skip
    payload = PayEvent.objects.get(kind="status-callback").payload
    assert payload == {
        "AccountSid": call.tw.tenant.twilio_account_sid,
        "CallSid": call.call_sid,
        "For": "payment-card-number",
        "Attempt": "1",
    }


def test_a_full_card_number_in_a_callback_is_masked_before_storage(phone, make_flow):
    from core.cardsafe import tripwire_count

    call = phone()
    payment = started(make_flow(), call)
    before = tripwire_count()
    post_status(call, payment, {"For": "expiration-date", "Attempt": "1", "PaymentCardNumber": "4242424242424242"})
    assert "4242424242424242" not in str(PayEvent.objects.get(kind="status-callback").payload)
    assert PaySession.objects.get().card_last4 == "4242"
    assert tripwire_count() == before + 1


def test_a_repeated_action_request_is_recorded_once_and_answered_the_same(phone, make_flow):
    call = phone()
    payment = started(make_flow(), call)
    url = f"{BASE}/twilio/ivr/pay/{payment.pay_session.callback_token}/action/"
    params = {"Result": "success", "PaymentConfirmationCode": "pi_123", **MASKED}
    first, second = call.twiml(url, params), call.twiml(url, params)
    assert says(first) == says(second)
    assert PayEvent.objects.filter(kind="action").count() == 1
    session = PaySession.objects.get()
    assert (session.status, session.payment_confirmation_code, session.card_last4) == ("succeeded", "pi_123", "4242")


def test_a_late_action_cannot_change_a_final_result(phone, make_flow):
    call = phone()
    payment = started(make_flow(), call)
    url = f"{BASE}/twilio/ivr/pay/{payment.pay_session.callback_token}/action/"
    call.twiml(url, {"Result": "caller-hung-up"})
    call.twiml(url, {"Result": "success", "PaymentConfirmationCode": "pi_late"})
    session = PaySession.objects.get()
    assert (session.status, session.result, session.payment_confirmation_code) == ("cancelled", "caller-hung-up", "")


# --- Studio reports --------------------------------------------------------------------


def studio_post(call, flow, **params):
    body = {"Result": "success", "ChargeAmount": "12.50", "PaymentConfirmationCode": "pi_studio", **MASKED, **params}
    return call.post(f"{BASE}/twilio/ivr/{flow.voice_token}/studio/", body)


def test_a_studio_report_is_recorded_as_an_ivr_session_of_the_flow(phone, make_flow):
    flow = make_flow()
    call = phone()
    assert studio_post(call, flow).status_code == 204
    assert studio_post(call, flow).status_code == 204  # Studio retrying: the same session, one event
    payment = IvrPayment.objects.get()
    session = payment.pay_session
    assert payment.via_studio and payment.flow == flow
    assert (session.channel, session.status, session.amount_minor) == ("ivr", "succeeded", 1250)
    assert (session.payment_confirmation_code, session.card_last4) == ("pi_studio", "4242")
    assert session.events.filter(kind="studio-result").count() == 1


def test_a_studio_report_of_a_failure(phone, make_flow):
    flow = make_flow()
    studio_post(phone(), flow, Result="payment-connector-error", PaymentConfirmationCode="", PayErrorCode="64012")
    session = PaySession.objects.get()
    assert (session.status, session.result, session.pay_error_code) == ("failed", "payment-connector-error", "64012")


@pytest.mark.parametrize(
    "params", [{"CallSid": "nope"}, {"ChargeAmount": "12.505"}, {"ChargeAmount": ""}, {"ChargeAmount": "0.00"}]
)
def test_a_malformed_studio_report_is_400(phone, make_flow, params):
    assert studio_post(phone(), make_flow(), **params).status_code == 400
    assert not PaySession.objects.exists()
