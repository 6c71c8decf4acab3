"""The step builders of payments/ivr/twiml.py called directly (no view, no request):
each returns a twilio.twiml <Response>, and `render` gives the XML Twilio is answered
with. Asserted on that XML, as a caller of the builders meets it."""

import xml.etree.ElementTree as ET

import pytest

from payments.ivr import services, twiml
from payments.ivr.prompts import Speaker
from tests.ivr.conftest import BASE, query, says, verbs

pytestmark = pytest.mark.django_db

DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def xml_of(document) -> ET.Element:
    text = twiml.render(document)
    assert text.startswith(DECLARATION)
    root = ET.fromstring(text)  # noqa: S314 - TwiML of the app under test
    assert root.tag == "Response"
    return root


def test_a_step_renders_to_the_exact_document_twilio_gets():
    assert twiml.render(twiml.unavailable()) == (
        f'{DECLARATION}<Response><Say language="en-US">Sorry, we cannot take payments on this number right now.'
        " Goodbye.</Say><Hangup /></Response>"
    )
    speaker = Speaker(language="en-US", currency="USD")
    assert twiml.render(twiml.hang_up(speaker, "declined", "goodbye")) == (
        f'{DECLARATION}<Response><Say language="en-US">Sorry, your payment could not be processed.</Say>'
        '<Say language="en-US">Goodbye.</Say><Hangup /></Response>'
    )


def test_a_say_is_spoken_in_the_language_of_its_text(make_flow):
    flow = make_flow(language="fr-FR", prompts={"greeting": "Bonjour de {business} & cie."})
    speaker = Speaker.for_flow(flow)
    root = xml_of(twiml.response(speaker.say("greeting"), speaker.say("goodbye")))
    # the tenant's text in the flow's language, an English default in en-US
    assert [(s.get("language"), s.text) for s in root] == [("fr-FR", "Bonjour de Acme & cie."), ("en-US", "Goodbye.")]


def test_the_first_entry_is_one_gather_that_reaches_its_action_even_on_silence(make_flow):
    flow = make_flow(timeout=9)
    speaker = Speaker.for_flow(flow)
    root = xml_of(twiml.first_entry(flow, speaker, attempt=2, preface=[speaker.say("greeting")]))
    assert verbs(root) == ["Gather"]
    gather = root.find("Gather")
    assert gather.attrib == {
        "action": f"{BASE}/twilio/ivr/{flow.voice_token}/amount/?step=units&attempt=2",
        "actionOnEmptyResult": "true",
        "finishOnKey": "#",
        "input": "dtmf",
        "language": "en-US",
        "method": "POST",
        "timeout": "9",
    }
    assert says(gather) == [
        "Thank you for calling Acme.",
        "Please enter the amount you wish to pay in dollars, then press the pound key.",
    ]


def test_giving_up_after_the_last_attempt_hangs_up(make_flow):
    flow = make_flow(max_attempts=2)
    speaker = Speaker.for_flow(flow)

    def ask(**kwargs):
        return twiml.confirmation(flow, speaker, amount_minor=1250, **kwargs)

    again = xml_of(twiml.again_or_give_up(flow, speaker, attempt=1, error_key="no_input", ask=ask))
    assert verbs(again) == ["Gather"] and query(again.find("Gather").get("action"))["attempt"] == "2"
    assert says(again) == [
        "Sorry, I did not get that.",
        "You entered twelve dollars and fifty cents.",
        "To confirm, press 1. To enter it again, press 2.",
    ]
    last = xml_of(twiml.again_or_give_up(flow, speaker, attempt=2, error_key="no_input", ask=ask))
    assert verbs(last) == ["Say", "Say", "Hangup"]
    assert says(last)[0] == "Sorry, I did not get that."


def test_pay_follows_its_preface_with_prompts_then_parameters(make_flow):
    flow = make_flow(max_attempts=1, parameters={"site": "north"})
    speaker = Speaker.for_flow(flow)
    session = services.ivr_pay_session_preview(flow=flow, amount_minor=1250)
    root = xml_of(twiml.pay(flow, speaker, session, preface=[speaker.say("greeting")]))
    assert verbs(root) == ["Say", "Pay"]
    pay = root.find("Pay")
    assert [(child.tag, child.get("for"), child.get("cardType")) for child in pay] == [
        ("Prompt", "payment-card-number", None),
        ("Prompt", "expiration-date", None),
        ("Prompt", "security-code", "visa mastercard"),
        ("Prompt", "security-code", "amex"),
        ("Prompt", "postal-code", None),
        ("Prompt", "payment-processing", None),
        ("Parameter", None, None),
    ]
    assert pay.find("Parameter").attrib == {"name": "site", "value": "north"}
    assert pay.get("chargeAmount") == "12.50" and pay.get("tokenType") is None
    assert pay.get("minPostalCodeLength") is None  # None values are left out, not sent empty


@pytest.mark.parametrize(
    "result,can_retry,expected",
    [
        ("caller-hung-up", True, ["Hangup"]),
        ("success", False, ["Say", "Hangup"]),
        ("payment-connector-error", True, ["Say", "Gather"]),
        ("payment-connector-error", False, ["Say", "Say", "Hangup"]),
    ],
)
def test_the_outcome_documents(make_flow, result, can_retry, expected):
    flow = make_flow()
    session = services.ivr_pay_session_preview(flow=flow, amount_minor=1250)
    root = xml_of(twiml.outcome(flow, Speaker.for_flow(flow), session, result=result, can_retry=can_retry))
    assert verbs(root) == expected
