"""The TwiML of amount entry, parsed as XML: dollars then cents, one entry with *,
read-back, re-entry, out-of-range amounts, 0- and 3-decimal currencies, attempts
running out, and languages."""

import pytest

from payments.ivr.models import IvrPayment
from payments.sessions.models import PaySession
from tests.ivr.conftest import enter_amount, pay_of, query, says, spoken, verbs, voice_url

pytestmark = pytest.mark.django_db


# --- Amount entry -----------------------------------------------------------------------


def test_the_voice_webhook_greets_and_asks_for_dollars_first(phone, make_flow):
    flow = make_flow()
    root = phone().twiml(voice_url(flow))
    assert verbs(root) == ["Gather"]
    gather = root.find("Gather")
    assert gather.get("finishOnKey") == "#" and gather.get("actionOnEmptyResult") == "true"
    assert gather.get("method") == "POST" and gather.get("timeout") == "5"
    assert gather.get("action").startswith("http://testserver/twilio/ivr/")
    assert query(gather.get("action")) == {"step": "units", "attempt": "1"}
    assert says(root) == [
        "Thank you for calling Acme.",
        "Please enter the amount you wish to pay in dollars, then press the pound key.",
    ]
    assert all(say.get("language") == "en-US" for say in root.iter("Say"))


def test_dollars_then_cents_are_read_back_and_1_starts_pay(phone, make_flow):
    flow = make_flow()
    call = phone()
    cents = enter_amount(call, flow, "12")
    gather = cents.find("Gather")
    assert gather.get("numDigits") == "2"
    assert query(gather.get("action")) == {"step": "minor", "whole": "12", "attempt": "1"}
    assert "Now enter the cents" in spoken(cents)

    readback = call.press(cents, "50")
    assert says(readback) == [
        "You entered twelve dollars and fifty cents.",
        "To confirm, press 1. To enter it again, press 2.",
    ]
    assert readback.find("Gather").get("numDigits") == "1"
    assert query(readback.find("Gather").get("action"))["amount"] == "1250"

    pay = pay_of(call.press(readback, "1"))
    assert pay.get("chargeAmount") == "12.50" and pay.get("currency") == "usd"
    session = PaySession.objects.get()
    assert session.channel == "ivr" and session.amount_minor == 1250 and session.call_sid == call.call_sid
    assert IvrPayment.objects.get().flow == flow


def test_the_dollars_then_cents_flow_also_takes_one_entry_with_star(phone, make_flow):
    flow = make_flow()
    call = phone()
    readback = enter_amount(call, flow, "12*50")
    assert says(readback)[0] == "You entered twelve dollars and fifty cents."
    assert query(readback.find("Gather").get("action"))["amount"] == "1250"
    assert pay_of(call.press(readback, "1")).get("chargeAmount") == "12.50"


@pytest.mark.parametrize(
    "whole,cents,amount,spoken_amount",
    [
        ("12", "5", 1205, "twelve dollars and five cents"),
        ("12", "", 1200, "twelve dollars"),
        ("0", "75", 75, "seventy-five cents"),
        ("007", "01", 701, "seven dollars and one cent"),
        ("1250", "99", 125099, "twelve hundred fifty dollars and ninety-nine cents"),
    ],
)
def test_cents_are_counted_as_cents(phone, make_flow, whole, cents, amount, spoken_amount):
    root = enter_amount(phone(), make_flow(), whole, cents)
    assert says(root)[0] == f"You entered {spoken_amount}."
    assert query(root.find("Gather").get("action"))["amount"] == str(amount)


@pytest.mark.parametrize(
    "entry,amount,words",
    [
        ("12*50", 1250, "twelve dollars and fifty cents"),
        ("12*5", 1250, "twelve dollars and fifty cents"),
        ("12*05", 1205, "twelve dollars and five cents"),
        ("12", 1200, "twelve dollars"),
        ("*99", 99, "ninety-nine cents"),
    ],
)
def test_star_is_the_decimal_point_in_one_entry(phone, make_flow, entry, amount, words):
    flow = make_flow(amount_entry="star-decimal")
    call = phone()
    first = call.twiml(voice_url(flow))
    assert query(first.find("Gather").get("action"))["step"] == "star"
    assert "using the star key as the decimal point" in spoken(first)
    root = call.press(first, entry)
    assert says(root)[0] == f"You entered {words}."
    assert query(root.find("Gather").get("action"))["amount"] == str(amount)


@pytest.mark.parametrize("entry", ["12*505", "1*2*3", "*"])
def test_a_star_entry_with_too_many_decimals_or_stars_is_asked_again(phone, make_flow, entry):
    flow = make_flow(amount_entry="star-decimal")
    root = enter_amount(phone(), flow, entry)
    assert says(root)[0] in (
        "That amount has too many digits after the decimal point.",
        "Sorry, that is not an amount I can take.",
    )
    assert query(root.find("Gather").get("action")) == {"step": "star", "attempt": "2"}


def test_2_at_the_read_back_enters_the_amount_again(phone, make_flow):
    flow = make_flow()
    call = phone()
    root = call.press(enter_amount(call, flow, "12", "50"), "2")
    assert query(root.find("Gather").get("action")) == {"step": "units", "attempt": "2"}
    root = call.press(call.press(root, "20"), "00")
    assert says(root)[0] == "You entered twenty dollars."
    pay = pay_of(call.press(root, "1"))
    assert pay.get("chargeAmount") == "20.00"


@pytest.mark.parametrize(
    "entries,error",
    [
        (("4", "99"), "The smallest amount you can pay is five dollars."),
        (("500", "01"), "The largest amount you can pay is five hundred dollars."),
        (("501",), "The largest amount you can pay is five hundred dollars."),  # refused before the cents
        (("0", "00"), "The amount must be more than zero."),
        (("1000000",), "The largest amount you can pay is five hundred dollars."),
    ],
)
def test_amounts_out_of_range_are_refused_and_asked_again(phone, make_flow, entries, error):
    flow = make_flow(min_amount_minor=500, max_amount_minor=50000)
    root = enter_amount(phone(), flow, *entries)
    assert says(root)[0] == error
    assert query(root.find("Gather").get("action")) == {"step": "units", "attempt": "2"}
    assert not PaySession.objects.exists()


def test_the_edges_of_the_range_are_accepted(phone, make_flow):
    flow = make_flow(min_amount_minor=500, max_amount_minor=50000)
    assert says(enter_amount(phone(), flow, "5", ""))[0] == "You entered five dollars."
    assert says(enter_amount(phone(), flow, "500", "00"))[0] == "You entered five hundred dollars."


def test_silence_and_errors_end_politely_after_the_last_attempt(phone, make_flow):
    flow = make_flow(max_attempts=2)
    call = phone()
    root = call.press(call.twiml(voice_url(flow)), "")
    assert says(root)[0] == "Sorry, I did not get that."
    assert query(root.find("Gather").get("action"))["attempt"] == "2"
    root = call.press(root, "")
    assert verbs(root) == ["Say", "Say", "Hangup"]
    assert says(root) == [
        "Sorry, I did not get that.",
        "Sorry, we could not take your payment. Please call again later. Goodbye.",
    ]


def test_re_entering_counts_as_an_attempt(phone, make_flow):
    flow = make_flow(max_attempts=1)
    call = phone()
    root = call.press(enter_amount(call, flow, "12", "50"), "2")
    assert verbs(root) == ["Say", "Hangup"]


def test_no_answer_at_the_read_back_asks_again(phone, make_flow):
    call = phone()
    root = call.press(enter_amount(call, make_flow(), "12", "50"), "")
    assert says(root)[:2] == ["Sorry, I did not get that.", "You entered twelve dollars and fifty cents."]
    assert query(root.find("Gather").get("action"))["attempt"] == "2"


def test_a_zero_decimal_currency_is_asked_once_in_whole_units(phone, make_flow):
    flow = make_flow(currency="JPY", amount_entry="star-decimal")  # no decimals: no star either
    call = phone()
    first = call.twiml(voice_url(flow))
    assert "in yen" in spoken(first) and query(first.find("Gather").get("action"))["step"] == "units"
    root = call.press(first, "1250")
    assert says(root)[0] == "You entered twelve hundred fifty yen."
    assert pay_of(call.press(root, "1")).get("chargeAmount") == "1250"
    assert PaySession.objects.get().amount_minor == 1250


def test_a_three_decimal_currency_takes_up_to_three_digits_of_fils(phone, make_flow):
    flow = make_flow(currency="KWD")
    call = phone()
    cents = enter_amount(call, flow, "1")
    assert cents.find("Gather").get("numDigits") == "3" and "enter the fils" in spoken(cents)
    root = call.press(cents, "234")
    assert says(root)[0] == "You entered one dinar and two hundred thirty-four fils."
    assert pay_of(call.press(root, "1")).get("chargeAmount") == "1.234"


def test_a_three_decimal_star_entry(phone, make_flow):
    flow = make_flow(currency="KWD", amount_entry="star-decimal")
    root = enter_amount(phone(), flow, "1*5")
    assert says(root)[0] == "You entered one dinar and five hundred fils."
    root = enter_amount(phone(), flow, "1*2345")
    assert says(root)[0] == "That amount has too many digits after the decimal point."


def test_a_non_english_flow_speaks_its_own_prompts_and_figures(phone, make_flow):
    flow = make_flow(
        currency="EUR",
        language="fr-FR",
        prompts={"readback": "Vous avez saisi {amount}.", "confirm": "Tapez 1 pour confirmer, 2 pour recommencer."},
    )
    root = enter_amount(phone(), flow, "12", "50")
    readback, confirm = root.findall("Gather/Say")
    assert (readback.text, readback.get("language")) == ("Vous avez saisi 12,50 EUR.", "fr-FR")
    assert confirm.get("language") == "fr-FR"
    first = phone().twiml(voice_url(flow))
    # a prompt the tenant did not translate is spoken in English by an English voice
    assert first.find("Gather/Say").get("language") == "en-US"
