"""Whole IVR calls: the simulator's IVR player plays Twilio and the caller against
Paydesk on live_server (TwiML, signed <Gather> answers, <Pay> status callbacks and
action), charging through localstripe."""

import pytest

from payments.ivr.models import IvrPayment, PaymentReference
from payments.sessions.models import PayEvent, PaySession

pytestmark = pytest.mark.django_db(transaction=True)

GOOD = "4242424242424242"
DECLINED = "4000000000000002"


def no_card_number_anywhere(*cards):
    for event in PayEvent.objects.all():
        for card in cards:
            assert card not in str(event.payload) and card not in str(event.response)
    for row in PaySession.objects.values():
        for card in cards:
            assert card not in str(row)


def test_a_caller_keys_dollars_and_cents_and_pays(ivr_desk, make_flow):
    flow = make_flow(description="Water bill")
    result = ivr_desk.call(flow, gather=["12", "50", "1"], card=GOOD)

    assert result.ended == "Paydesk hung up"
    assert "You entered twelve dollars and fifty cents." in result.says
    assert result.says[-1] == "Your payment of twelve dollars and fifty cents was successful. Thank you. Goodbye."
    assert [r["Result"] for r in result.pay_results] == ["success"]
    assert all(r["status"] in (200, 204) for r in result.requests), result.lines

    session = PaySession.objects.get()
    assert (session.channel, session.status, session.result) == ("ivr", "succeeded", "success")
    assert (session.amount_minor, session.currency, session.call_sid) == (1250, "USD", result.call_sid)
    assert (session.card_last4, session.card_type, session.required_fields) == ("4242", "visa", [])
    code = session.payment_confirmation_code
    assert code.startswith("pi_") and code == result.pay_results[0]["PaymentConfirmationCode"]

    intent = ivr_desk.stripe_get(f"/v1/payment_intents/{code}")
    assert (intent["amount"], intent["currency"], intent["status"]) == (1250, "usd", "succeeded")
    assert f"Water bill · Paydesk {session.uuid}" in str(intent["metadata"])

    kinds = list(session.events.values_list("direction", "kind"))
    assert kinds.count(("in", "status-callback")) == 5  # four fields, then payment-processing
    assert ("in", "action") in kinds and ("out", "pay-twiml") in kinds
    assert not PayEvent.objects.filter(payload__has_key="From").exists()  # the caller's number is not kept
    no_card_number_anywhere(GOOD)


def test_star_as_the_decimal_point_end_to_end(ivr_desk, make_flow):
    flow = make_flow(amount_entry="star-decimal")
    result = ivr_desk.call(flow, gather=["7*5", "1"])
    assert "You entered seven dollars and fifty cents." in result.says
    intent = ivr_desk.stripe_get(f"/v1/payment_intents/{PaySession.objects.get().payment_confirmation_code}")
    assert intent["amount"] == 750


@pytest.mark.parametrize(
    "currency,gather,heard,minor",
    [
        ("JPY", ["1250", "1"], "You entered twelve hundred fifty yen.", 1250),
        ("KWD", ["1", "234", "1"], "You entered one dinar and two hundred thirty-four fils.", 1234),
    ],
)
def test_zero_and_three_decimal_currencies_charge_the_right_minor_units(
    ivr_desk, make_flow, currency, gather, heard, minor
):
    flow = make_flow(currency=currency)
    result = ivr_desk.call(flow, gather=gather)
    assert heard in result.says
    assert result.pay_results[-1]["Result"] == "success", result.lines
    session = PaySession.objects.get()
    assert session.amount_minor == minor
    intent = ivr_desk.stripe_get(f"/v1/payment_intents/{session.payment_confirmation_code}")
    assert (intent["amount"], intent["currency"]) == (minor, currency.lower())


def test_a_declined_card_is_retried_with_another_card(ivr_desk, make_flow):
    flow = make_flow()
    result = ivr_desk.call(flow, gather=["20", "", "1", "1"], card=[DECLINED, GOOD])
    assert [r["Result"] for r in result.pay_results] == ["payment-connector-error", "success"]
    assert result.pay_results[0]["PayErrorCode"] == "64012"
    assert "To try another card, press 1. To end the call, press 2." in result.says
    first, second = (p.pay_session for p in IvrPayment.objects.order_by("pay_try"))
    assert (first.status, first.pay_error_code, first.amount_minor) == ("failed", "64012", 2000)
    assert (second.status, second.amount_minor, second.call_sid) == ("succeeded", 2000, first.call_sid)
    no_card_number_anywhere(GOOD, DECLINED)


def test_an_invalid_entry_is_asked_again_inside_pay(ivr_desk, make_flow):
    flow = make_flow(amount_source="fixed", fixed_amount_minor=500)
    result = ivr_desk.call(flow, card=["4242424242424241", GOOD])
    assert "That card number is not valid." in result.says
    assert result.pay_results[-1]["Result"] == "success"
    retry = PayEvent.objects.get(payload__For="payment-card-number", payload__Attempt="2")
    assert retry.payload["ErrorType"] == "invalid-card-number"
    session = PaySession.objects.get()
    assert session.status == "succeeded" and session.last_error_type == ""


def test_too_many_failed_entries_end_the_payment(ivr_desk, make_flow):
    flow = make_flow(amount_source="fixed", fixed_amount_minor=500, max_attempts=2)
    result = ivr_desk.call(flow, card=["1234", "5678"])
    assert result.pay_results[-1]["Result"] == "too-many-failed-attempts"
    assert result.says[-1] == "Sorry, we could not complete your payment. Goodbye."
    session = PaySession.objects.get()
    assert (session.status, session.result) == ("failed", "too-many-failed-attempts")
    assert session.required_fields == ["payment-card-number", "expiration-date", "security-code", "postal-code"]


@pytest.mark.parametrize("key,result,ended", [("*", "caller-interrupted-with-star", "Paydesk hung up"),
                                              ("hangup", "caller-hung-up", "the caller hung up")])  # fmt: skip
def test_the_caller_can_cancel_with_star_or_hang_up_during_pay(ivr_desk, make_flow, key, result, ended):
    flow = make_flow(amount_source="fixed", fixed_amount_minor=500)
    call = ivr_desk.call(flow, card=GOOD, expiry=key)
    assert call.ended == ended
    session = PaySession.objects.get()
    assert (session.status, session.result, session.card_last4) == ("cancelled", result, "4242")


def test_a_tokenization_flow_saves_the_card(ivr_desk, make_flow):
    flow = make_flow(operation="tokenize", token_type="reusable")
    result = ivr_desk.call(flow)
    assert result.says[-1] == "Your card has been saved. Thank you. Goodbye."
    session = PaySession.objects.get()
    assert session.status == "succeeded" and session.amount_minor is None
    assert session.payment_token.startswith("tok_") and session.profile_id.startswith("cus_")


def test_a_caller_pays_a_reference_a_partner_registered(ivr_desk, make_flow, api_for, world):
    flow = make_flow(amount_source="reference")
    api = api_for(world.acme.raw_key)
    registered = api.post(
        f"/api/v1/payment-flows/{flow.uuid}/references/", {"reference": "40012", "amount": "88.10"}, format="json"
    )
    assert registered.status_code == 201

    result = ivr_desk.call(flow, gather=["40012", "1"])
    assert "For reference 4 0 0 1 2, the amount due is eighty-eight dollars and ten cents." in result.says
    assert result.pay_results[-1]["Result"] == "success"
    row = PaymentReference.objects.get()
    assert row.status == "paid" and row.paid_session.amount_minor == 8810
    assert api.get(f"/api/v1/payment-flows/{flow.uuid}/references/40012/").json()["status"] == "paid"

    again = ivr_desk.call(flow, gather=["40012", "40012"])  # a paid reference cannot be paid twice
    assert "Sorry, we could not find a payment due for that number." in again.says
    assert PaySession.objects.count() == 1


def test_another_tenants_token_is_refused_and_nothing_is_recorded(ivr_desk, make_flow, world):
    flow = make_flow(amount_source="fixed", fixed_amount_minor=500)
    result = ivr_desk.call(flow, tw=world.acme, auth_token=world.globex.auth_token)
    assert result.ended == "the webhook answered HTTP 403"
    assert not PaySession.objects.exists()


def test_simulate_ivr_call_prints_the_conversation(ivr_desk, make_flow):
    from io import StringIO

    from django.core.management import call_command

    flow = make_flow()
    out = StringIO()
    call_command(
        "simulate_ivr_call",
        flow=str(flow.uuid),
        amount_digits=["12", "50"],
        base_url=ivr_desk.url,
        stripe_api_base=ivr_desk.stripe_url,
        stdout=out,
    )
    text = out.getvalue()
    assert "Paydesk says: You entered twelve dollars and fifty cents." in text
    assert "caller keys payment-card-number: xxxxxxxxxxxx4242" in text
    assert "result=success confirmation=pi_" in text
    assert GOOD not in text
    assert PaySession.objects.get().status == "succeeded"


def test_simulate_ivr_call_takes_12_star_50_as_the_readme_says(ivr_desk, make_flow):
    from io import StringIO

    from django.core.management import call_command

    flow = make_flow()
    out = StringIO()
    call_command(
        "simulate_ivr_call",
        flow=str(flow.uuid),
        amount_digits=["12*50"],
        base_url=ivr_desk.url,
        stripe_api_base=ivr_desk.stripe_url,
        stdout=out,
    )
    assert "Paydesk says: You entered twelve dollars and fifty cents." in out.getvalue()
    assert PaySession.objects.get().amount_minor == 1250


def test_simulate_ivr_call_fails_when_the_call_ends_before_the_payment(ivr_desk, make_flow):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    flow = make_flow(max_amount_minor=1000)
    out = StringIO()
    with pytest.raises(CommandError, match="ended before the payment step"):
        call_command(
            "simulate_ivr_call",
            flow=str(flow.uuid),
            amount_digits=["99*00"],  # above the flow's maximum, every attempt
            base_url=ivr_desk.url,
            stripe_api_base=ivr_desk.stripe_url,
            stdout=out,
        )
    assert not PaySession.objects.exists()


def test_simulate_ivr_call_fails_when_the_payment_is_declined_unless_a_failure_is_expected(ivr_desk, make_flow):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    flow = make_flow(amount_source="fixed", fixed_amount_minor=500)
    call = dict(
        flow=str(flow.uuid),
        card=["4000000000000002"],
        then=["2"],  # no second card
        base_url=ivr_desk.url,
        stripe_api_base=ivr_desk.stripe_url,
        stdout=StringIO(),
    )
    with pytest.raises(CommandError, match="did not succeed"):
        call_command("simulate_ivr_call", **call)
    call_command("simulate_ivr_call", expect="failure", **call)


def test_the_simulator_command_line_plays_a_call(ivr_desk, make_flow, world, capsys):
    from connectors.services import connector_stripe_secret_key
    from simulators.twilio_pay.__main__ import main

    flow = make_flow(amount_source="fixed", fixed_amount_minor=300)
    key = connector_stripe_secret_key(connector=world.acme.connectors["Stripe_Dev"])
    code = main(
        [
            "ivr",
            "--url", f"{ivr_desk.url}/twilio/ivr/{flow.voice_token}/voice/",
            "--account-sid", world.acme.tenant.twilio_account_sid,
            "--auth-token", world.acme.auth_token,
            "--connector", f"Stripe_Dev={key}",
            "--stripe-api-base", ivr_desk.stripe_url,
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Paydesk says: The amount to pay is three dollars." in out and "<Pay> result: success pi_" in out
    assert PaySession.objects.get().status == "succeeded"


def test_simulate_ivr_call_never_uses_a_live_connector(make_flow, world):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    flow = make_flow(connector=world.acme.connectors["Stripe_Prod"], amount_source="fixed", fixed_amount_minor=100)
    with pytest.raises(CommandError, match="live mode"):
        call_command("simulate_ivr_call", flow=str(flow.uuid), stripe_api_base="http://127.0.0.1:9")
    assert not PaySession.objects.exists()
