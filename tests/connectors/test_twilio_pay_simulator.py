"""The Twilio Pay simulator, proven against the official twilio SDK, Twilio's
RequestValidator, Twilio's OpenAPI spec and localstripe.

No database: these tests never touch Django models.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from simulators.twilio_pay import SimulatorError, rules, twilio_signature
from tests.peers import CallbackSink, TwilioSim

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC = REPO_ROOT.parent / "shared" / "twilio-oai" / "twilio_api_v2010.json"

VISA = "4242424242424242"
AMEX = "378282246310005"
DECLINED_ON_ATTACH = "4000000000000002"  # Stripe's generic decline card
DECLINED_ON_CHARGE = "4000000000000341"  # attaches, then the charge fails
FUTURE_EXPIRY = f"12{(dt.date.today().year + 5) % 100:02d}"
CVC = "123"
ZIP = "94105"
ROUTING = "121181976"  # the doc's example, ABA checksum valid
BANK_ACCOUNT = "508862392"

COMMON_CHARGE_FIELDS = {
    "AccountSid",
    "CallSid",
    "Sid",
    "DateCreated",
    "PaymentConnector",
    "PaymentMethod",
    "ChargeAmount",
}
MASKED_FIELDS = set(rules.MASKED_PARAM_NAMES)
RESULT_FIELDS = {
    "Result",
    "PaymentConfirmationCode",
    "PaymentToken",
    "ProfileId",
    "PayErrorCode",
    "PaymentError",
    "ConnectorError",
}


@dataclass
class Pay:
    """One account on the simulator, driven through the official SDK."""

    sim: TwilioSim
    sink: CallbackSink
    client: Client
    account_sid: str
    auth_token: str
    call_sid: str

    @property
    def callback_url(self) -> str:
        return self.sink.url_for("/twilio/pay/status?tenant=acme")

    def payments(self, call_sid: str | None = None) -> Any:
        return self.client.api.v2010.accounts(self.account_sid).calls(call_sid or self.call_sid).payments

    def create(self, call_sid: str | None = None, **params: Any) -> Any:
        params.setdefault("payment_connector", "Stripe_Dev")
        if "charge_amount" not in params and "token_type" not in params:
            params["charge_amount"] = "12.50"
        return self.payments(call_sid).create(
            idempotency_key=secrets.token_hex(8), status_callback=self.callback_url, **params
        )

    def update(self, sid: str, call_sid: str | None = None, **params: Any) -> Any:
        return self.payments(call_sid)(sid).update(
            idempotency_key=secrets.token_hex(8), status_callback=self.callback_url, **params
        )

    def capture(self, sid: str, field: str, digits: str | None = None) -> dict[str, Any] | None:
        self.update(sid, capture=field)
        return None if digits is None else self.sim.press(self.call_sid, digits)

    def enter_card(self, sid: str, number: str = VISA, cvc: str | None = CVC, postal: str | None = ZIP) -> None:
        self.capture(sid, "payment-card-number", number + "#")
        self.capture(sid, "expiration-date", FUTURE_EXPIRY)
        if cvc is not None:
            self.capture(sid, "security-code", cvc)
        if postal is not None:
            self.capture(sid, "postal-code", postal)

    def last(self) -> dict[str, str]:
        """The form of the last callback delivered (after waiting for the queue)."""
        self.sim.flush()
        return self.sink.received[-1].form


@pytest.fixture
def pay(twilio_sim: TwilioSim, callback_sink: CallbackSink, monkeypatch: pytest.MonkeyPatch) -> Pay:
    # The SDK rewrites the host when either is set (docs/twilio-pay.md §8).
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    account_sid, auth_token = "AC" + secrets.token_hex(16), secrets.token_hex(16)
    twilio_sim.register_account(
        account_sid,
        auth_token,
        {"Stripe_Dev": {"stripe_secret_key": "sk_test_dev"}, "Default": {"stripe_secret_key": "sk_test_default"}},
    )
    client = Client(account_sid, auth_token)
    client.api.base_url = twilio_sim.url
    return Pay(twilio_sim, callback_sink, client, account_sid, auth_token, "CA" + secrets.token_hex(16))


def twilio_error(call: Any) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as info:
        call()
    return info.value


def stripe_get(base: str, path: str) -> dict[str, Any]:
    response = requests.get(f"{base}/v1/{path}", auth=("sk_test_x", ""), timeout=5)
    response.raise_for_status()
    return dict(response.json())


# --- REST shape -------------------------------------------------------------------


def test_create_answers_201_in_the_spec_shape(pay: Pay) -> None:
    answer = pay.payments().create_with_http_info(
        idempotency_key="k-1", status_callback=pay.callback_url, charge_amount="12.50", payment_connector="Stripe_Dev"
    )
    assert answer.status_code == 201
    raw = pay.sim.requests()[-1]
    assert raw["status"] == 201 and "Authorization" not in raw["headers"]

    body = requests.post(  # the raw JSON, to compare with the spec property by property
        f"{pay.sim.url}/2010-04-01/Accounts/{pay.account_sid}/Calls/{'CA' + secrets.token_hex(16)}/Payments.json",
        data={"IdempotencyKey": "k-2", "StatusCallback": pay.callback_url, "ChargeAmount": "1"},
        auth=(pay.account_sid, pay.auth_token),
        timeout=5,
    ).json()
    schema = json.loads(SPEC.read_text())["components"]["schemas"]["api.v2010.account.call.payments"]
    assert set(body) == set(schema["properties"])
    for name, prop in schema["properties"].items():
        if "pattern" in prop:
            assert re.match(prop["pattern"], body[name]), name
    for name in ("date_created", "date_updated"):
        assert email.utils.parsedate_to_datetime(body[name]).utcoffset() == dt.timedelta(0)
    assert body["uri"] == (
        f"/2010-04-01/Accounts/{body['account_sid']}/Calls/{body['call_sid']}/Payments/{body['sid']}.json"
    )
    assert answer.data.sid.startswith("PK") and answer.data.account_sid == pay.account_sid


def test_update_answers_202_and_create_callback_has_only_the_common_fields(pay: Pay) -> None:
    payment = pay.create()
    first = pay.last()
    assert set(first) == COMMON_CHARGE_FIELDS
    assert first["Sid"] == payment.sid and first["ChargeAmount"] == "12.50"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["DateCreated"])

    answer = pay.payments()(payment.sid).update_with_http_info(
        idempotency_key="u-1", status_callback=pay.callback_url, capture="payment-card-number"
    )
    assert answer.status_code == 202
    assert answer.data.sid == payment.sid


def test_wrong_credentials_answer_401_with_twilio_code_20003(pay: Pay) -> None:
    pay.client = Client(pay.account_sid, "not-the-token")
    pay.client.api.base_url = pay.sim.url
    error = twilio_error(pay.create)
    assert (error.status, error.code) == (401, 20003)


def test_unknown_payment_sid_answers_404(pay: Pay) -> None:
    pay.create()
    error = twilio_error(lambda: pay.update("PK" + "0" * 32, capture="payment-card-number"))
    assert (error.status, error.code) == (404, 20404)


# --- signatures -----------------------------------------------------------------------


def test_callbacks_are_signed_so_that_request_validator_accepts_them(pay: Pay) -> None:
    payment = pay.create()
    pay.capture(payment.sid, "payment-card-number", VISA)
    pay.sim.flush()
    validator = RequestValidator(pay.auth_token)
    assert len(pay.sink.received) == 4  # create, capture, partial, final
    for post in pay.sink.received:
        assert post.url == pay.callback_url
        assert validator.validate(post.url, post.form, post.headers["X-Twilio-Signature"])

    post = pay.sink.received[-1]
    tampered = {**post.form, "PaymentCardNumber": "xxxxxxxxxxxx1111"}
    assert not validator.validate(post.url, tampered, post.headers["X-Twilio-Signature"])
    assert not RequestValidator("another-token").validate(post.url, post.form, post.headers["X-Twilio-Signature"])


def test_stdlib_signer_matches_twilio_on_the_documented_vector() -> None:
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    assert twilio_signature("12345", url, params) == RequestValidator("12345").compute_signature(url, params)


def test_bad_signature_fault_produces_callbacks_the_validator_rejects(pay: Pay) -> None:
    pay.sim.set_faults(bad_signature=True)
    pay.create()
    assert len(pay.sim.flush()) == 1
    post = pay.sink.received[0]
    assert not RequestValidator(pay.auth_token).validate(post.url, post.form, post.headers["X-Twilio-Signature"])


# --- capturing -------------------------------------------------------------------------


def test_partial_then_final_callback_with_masked_card_number(pay: Pay) -> None:
    payment = pay.create()
    summary = pay.capture(payment.sid, "payment-card-number", VISA + "#")
    assert summary is not None and summary["session"]["required"] == ["ExpirationDate", "SecurityCode", "PostalCode"]
    delivered = pay.sim.flush()
    capture, partial, final = (d["params"] for d in delivered[-3:])
    assert (capture["Capture"], capture["PartialResult"]) == ("payment-card-number", "false")
    assert capture["Required"] == "PaymentCardNumber,ExpirationDate,SecurityCode,PostalCode"
    assert partial["PartialResult"] == "true" and partial["PaymentCardNumber"] == ""
    assert final["PartialResult"] == "false" and final["ErrorType"] == ""
    assert final["PaymentCardNumber"] == "xxxxxxxxxxxx4242" and final["PaymentCardType"] == "visa"
    assert final["Required"] == "ExpirationDate,SecurityCode,PostalCode"
    # Every documented update field is there, the ones that do not apply as "".
    expected = (
        COMMON_CHARGE_FIELDS | MASKED_FIELDS | {"DateUpdated", "Capture", "PartialResult", "Required", "ErrorType"}
    )
    assert set(final) == expected
    assert final["BankAccountNumber"] == "" and final["SecurityCode"] == ""
    assert all(d["status"] == 204 for d in delivered)
    # DateUpdated strictly increases, so a receiver can order callbacks that arrive out of order.
    dates = [d["params"]["DateUpdated"] for d in delivered if "DateUpdated" in d["params"]]
    assert len(dates) == 3 and dates == sorted(set(dates))


def test_fields_can_be_captured_in_any_order_and_recaptured(pay: Pay) -> None:
    payment = pay.create()
    pay.capture(payment.sid, "postal-code", ZIP)
    pay.capture(payment.sid, "security-code", CVC)
    pay.capture(payment.sid, "expiration-date", "1299")
    pay.capture(payment.sid, "payment-card-number", VISA)
    assert pay.last()["Required"] == ""
    assert pay.last()["ExpirationDate"] == "1299" and pay.last()["SecurityCode"] == "xxx"
    assert pay.last()["PaymentCardPostalCode"] == ZIP

    pay.update(payment.sid, capture="expiration-date")  # the agent asks again
    again = pay.last()
    assert again["Required"] == "ExpirationDate" and again["ExpirationDate"] == ""
    pay.sim.press(pay.call_sid, FUTURE_EXPIRY)
    assert pay.last()["ExpirationDate"] == FUTURE_EXPIRY and pay.last()["Required"] == ""


def test_card_data_never_leaves_the_simulator(pay: Pay, localstripe: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    payment = pay.create(description="order 77")
    answers = [pay.capture(payment.sid, "payment-card-number", VISA), pay.capture(payment.sid, "security-code", "987")]
    pay.capture(payment.sid, "expiration-date", FUTURE_EXPIRY)
    pay.capture(payment.sid, "postal-code", ZIP)
    pay.update(payment.sid, status="complete")
    flushed = pay.sim.flush()
    assert pay.sink.received[-1].form["Result"] == "success"

    everything = json.dumps(
        [answers, flushed, pay.sim.callbacks(), pay.sim.requests(), [p.form for p in pay.sink.received]]
    )
    assert VISA not in everything and VISA[-8:] not in everything
    assert "completed: success" in caplog.text  # the log was captured, and holds no card number
    assert VISA not in caplog.text
    assert {p.form.get("SecurityCode", "") for p in pay.sink.received} <= {"", "xxx"}


@pytest.mark.parametrize(
    ("field", "digits", "error_type", "create_params"),
    [
        ("payment-card-number", "4242424242424241", "invalid-card-number", {}),  # Luhn fails
        ("payment-card-number", "42424242", "invalid-card-number", {}),  # too short
        ("payment-card-number", AMEX, "invalid-card-type", {"valid_card_types": "visa mastercard"}),
        ("expiration-date", "0120", "invalid-date", {}),  # expired
        ("expiration-date", "1330", "invalid-date", {}),  # no month 13
        ("security-code", "12", "invalid-security-code", {}),
        ("postal-code", "941", "invalid-postal-code", {"min_postal_code_length": 5}),
    ],
)
def test_invalid_entry_reports_error_type_and_field_stays_required(
    pay: Pay, field: str, digits: str, error_type: str, create_params: dict[str, Any]
) -> None:
    payment = pay.create(**create_params)
    summary = pay.capture(payment.sid, field, digits)
    final = pay.last()
    assert final["ErrorType"] == error_type and final["PartialResult"] == "false"
    assert rules.REQUIRED_NAMES[field] in final["Required"].split(",")
    assert final[rules.VALUE_PARAMS[field]] == ""
    assert summary is not None and summary["session"]["error_type"] == error_type


def test_amex_needs_a_four_digit_security_code(pay: Pay) -> None:
    payment = pay.create()
    pay.capture(payment.sid, "payment-card-number", AMEX)
    assert pay.last()["PaymentCardType"] == "amex" and pay.last()["PaymentCardNumber"] == "xxxxxxxxxxx0005"
    pay.capture(payment.sid, "security-code", "123")
    assert pay.last()["ErrorType"] == "invalid-security-code"
    pay.capture(payment.sid, "security-code", "1234")
    assert pay.last()["SecurityCode"] == "xxxx"


def test_timeout_reports_input_timeout_and_field_stays_required(pay: Pay) -> None:
    payment = pay.create(security_code=False, postal_code=False)
    pay.update(payment.sid, capture="expiration-date")
    pay.sim.time_out(pay.call_sid)
    delivered = pay.sim.flush()
    final = delivered[-1]["params"]
    assert final["ErrorType"] == "input-timeout" and final["Required"] == "PaymentCardNumber,ExpirationDate"
    assert not any(d["params"].get("PartialResult") == "true" for d in delivered)  # no digit arrived


def test_keypad_answers_409_when_nothing_is_being_captured(pay: Pay) -> None:
    pay.create()
    with pytest.raises(SimulatorError) as info:
        pay.sim.press(pay.call_sid, VISA)
    assert info.value.status == 409


def test_capture_of_a_field_that_does_not_apply_is_64020(pay: Pay) -> None:
    payment = pay.create(security_code=False)
    for field in ("security-code", "bank-routing-number", "payment-card-number-matcher"):
        error = twilio_error(lambda f=field: pay.update(payment.sid, capture=f))
        assert (error.status, error.code) == (400, 64020), field


def test_matching_inputs_require_the_matcher_to_agree(pay: Pay, localstripe: str) -> None:
    payment = pay.create(require_matching_inputs="payment-card-number", security_code=False, postal_code=False)
    assert twilio_error(lambda: pay.update(payment.sid, capture="payment-card-number-matcher")).code == 64021
    pay.capture(payment.sid, "payment-card-number", VISA)
    assert pay.last()["Required"] == "PaymentCardNumber,ExpirationDate"  # not confirmed yet
    pay.capture(payment.sid, "payment-card-number-matcher", "4111111111111111")
    assert pay.last()["ErrorType"] == "input-matching-failed" and pay.last()["PaymentCardNumber"] == ""

    pay.capture(payment.sid, "payment-card-number", VISA)
    pay.capture(payment.sid, "payment-card-number-matcher", VISA)
    assert pay.last()["Capture"] == "payment-card-number-matcher" and pay.last()["Required"] == "ExpirationDate"


# --- Status and session rules --------------------------------------------------------


def test_complete_is_rejected_while_fields_are_missing(pay: Pay) -> None:
    payment = pay.create()
    pay.capture(payment.sid, "payment-card-number", VISA)
    error = twilio_error(lambda: pay.update(payment.sid, status="complete"))
    assert (error.status, error.code) == (400, 64019)
    assert "ExpirationDate" in error.msg


@pytest.mark.parametrize("params", [{}, {"capture": "postal-code", "status": "complete"}])
def test_update_needs_exactly_one_of_capture_or_status(pay: Pay, params: dict[str, str]) -> None:
    payment = pay.create()
    error = twilio_error(lambda: pay.update(payment.sid, **params))
    assert (error.status, error.code) == (400, 64018)


def test_second_session_on_a_call_is_64021_until_the_first_ends(pay: Pay) -> None:
    payment = pay.create()
    assert twilio_error(pay.create).code == 64021
    pay.update(payment.sid, status="cancel")
    assert pay.last().get("Capture") == "" and "Result" not in pay.last()
    assert twilio_error(lambda: pay.update(payment.sid, capture="postal-code")).code == 64021
    assert pay.create().sid != payment.sid


def test_cancel_callback_carries_common_fields_date_updated_and_empty_capture(pay: Pay) -> None:
    payment = pay.create(token_type="reusable")
    pay.update(payment.sid, status="cancel")
    assert set(pay.last()) == {
        "AccountSid",
        "CallSid",
        "Sid",
        "DateCreated",
        "PaymentConnector",
        "PaymentMethod",
        "TokenType",
        "DateUpdated",
        "Capture",
    }


def test_idempotent_replay_and_key_reuse_with_another_body(pay: Pay) -> None:
    form = {
        "IdempotencyKey": "same-key",
        "StatusCallback": pay.callback_url,
        "ChargeAmount": "5.00",
        "PaymentConnector": "Stripe_Dev",
    }
    url = f"{pay.sim.url}/2010-04-01/Accounts/{pay.account_sid}/Calls/{pay.call_sid}/Payments.json"
    auth = (pay.account_sid, pay.auth_token)
    first = requests.post(url, data=form, auth=auth, timeout=5)
    delivered = len(pay.sim.flush())
    second = requests.post(url, data=form, auth=auth, timeout=5)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json() == second.json()
    assert len(pay.sim.flush()) == 0 and delivered == 1  # the replay did nothing else

    reused = requests.post(url, data={**form, "ChargeAmount": "6.00"}, auth=auth, timeout=5)
    assert reused.status_code == 409
    assert reused.json()["code"] == 64020 and "idempotency key" in reused.json()["message"].lower()
    assert reused.json()["more_info"] == "https://www.twilio.com/docs/errors/64020"


def test_failed_request_is_not_remembered_under_its_idempotency_key(pay: Pay) -> None:
    kwargs = {"idempotency_key": "k", "status_callback": pay.callback_url, "payment_connector": "Nope"}
    assert twilio_error(lambda: pay.payments().create(**kwargs)).code == 64004
    pay.sim.register_account(pay.account_sid, pay.auth_token, {"Nope": {"stripe_secret_key": "sk_test_n"}})
    assert pay.payments().create(**kwargs).sid.startswith("PK")


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"charge_amount": "12.345", "currency": "USD"}, 64003),
        ({"charge_amount": "12.5", "currency": "JPY"}, 64003),
        ({"charge_amount": "-1.00"}, 64003),
        ({"charge_amount": "1000000"}, 64003),
        ({"charge_amount": "ten"}, 64003),
        ({"payment_connector": "Stripe_Prod"}, 64004),
        ({"payment_method": "cash"}, 64020),
        ({"token_type": "forever", "charge_amount": "0"}, 64020),
        ({"timeout": 601}, 64020),
        ({"parameter": {"nested": {"a": 1}}}, 64020),
        ({"payment_method": "ach-debit"}, 64020),  # ACH needs Parameter
        ({"valid_card_types": "visa bogus"}, 64020),
        ({"require_matching_inputs": "security-code", "security_code": False}, 64020),
        ({"confirmation": "yes"}, 64020),
    ],
)
def test_create_validates_parameters_like_twilio(pay: Pay, params: dict[str, Any], code: int) -> None:
    error = twilio_error(lambda: pay.create(**params))
    assert (error.status, error.code) == (400, code)
    assert pay.sim.flush() == []  # a refused request sends no callback


@pytest.mark.parametrize("missing", ["IdempotencyKey", "StatusCallback"])
def test_create_requires_idempotency_key_and_an_absolute_status_callback(pay: Pay, missing: str) -> None:
    form = {"IdempotencyKey": "k", "StatusCallback": pay.callback_url}
    url = f"{pay.sim.url}/2010-04-01/Accounts/{pay.account_sid}/Calls/{pay.call_sid}/Payments.json"
    auth = (pay.account_sid, pay.auth_token)
    answer = requests.post(url, data={k: v for k, v in form.items() if k != missing}, auth=auth, timeout=5)
    assert (answer.status_code, answer.json()["code"]) == (400, 64020)
    relative = requests.post(url, data={**form, "StatusCallback": "/pay/status"}, auth=auth, timeout=5)
    assert relative.status_code == 400


# --- the caller ends it ----------------------------------------------------------------


def test_star_ends_the_session_with_caller_interrupted_with_star(pay: Pay) -> None:
    payment = pay.create()
    pay.capture(payment.sid, "payment-card-number", VISA)
    pay.update(payment.sid, capture="expiration-date")
    summary = pay.sim.press_star(pay.call_sid)
    assert summary["session"]["result"] == "caller-interrupted-with-star"
    final = pay.last()
    assert final["Result"] == "caller-interrupted-with-star"
    assert all(final[name] == "" for name in RESULT_FIELDS - {"Result"})
    assert final["PaymentCardNumber"] == "xxxxxxxxxxxx4242"
    assert twilio_error(lambda: pay.update(payment.sid, capture="expiration-date")).code == 64021
    assert pay.create().sid != payment.sid  # the call goes on; a new session may start


def test_hang_up_ends_the_session_and_the_call(pay: Pay) -> None:
    payment = pay.create()
    pay.sim.hang_up(pay.call_sid)
    final = pay.last()
    assert final["Result"] == "caller-hung-up" and final["PaymentError"] == ""
    for call in (lambda: pay.update(payment.sid, capture="postal-code"), pay.create):
        error = twilio_error(call)
        assert (error.status, error.code) == (400, 21220)


# --- completion through localstripe ----------------------------------------------------


def test_complete_charges_the_card_in_localstripe(pay: Pay, localstripe: str) -> None:
    payment = pay.create(charge_amount="12.50", currency="USD", description="Invoice 42")
    pay.enter_card(payment.sid)
    answer = pay.payments()(payment.sid).update_with_http_info(
        idempotency_key="done", status_callback=pay.callback_url, status="complete"
    )
    assert answer.status_code == 202
    final = pay.last()
    assert final["Result"] == "success" and final["PayErrorCode"] == ""
    assert set(final) == COMMON_CHARGE_FIELDS | MASKED_FIELDS | RESULT_FIELDS | {"DateUpdated"}
    intent = stripe_get(localstripe, f"payment_intents/{final['PaymentConfirmationCode']}")
    assert (intent["amount"], intent["currency"], intent["status"]) == (1250, "usd", "succeeded")
    assert intent["metadata"]["description"] == "Invoice 42"
    assert intent["customer"] == final["ProfileId"]
    assert stripe_get(localstripe, f"charges/{intent['latest_charge']['id']}")["description"] == "Invoice 42"
    assert twilio_error(lambda: pay.update(payment.sid, status="complete")).code == 64021


def test_zero_decimal_currency_is_charged_in_whole_units(pay: Pay, localstripe: str) -> None:
    payment = pay.create(charge_amount="1250", currency="JPY")
    assert pay.last()["ChargeAmount"] == "1250"
    pay.enter_card(payment.sid)
    pay.update(payment.sid, status="complete")
    intent = stripe_get(localstripe, f"payment_intents/{pay.last()['PaymentConfirmationCode']}")
    assert (intent["amount"], intent["currency"]) == (1250, "jpy")


@pytest.mark.parametrize("card", [DECLINED_ON_ATTACH, DECLINED_ON_CHARGE])
def test_declined_card_ends_in_payment_connector_error(pay: Pay, localstripe: str, card: str) -> None:
    payment = pay.create()
    pay.enter_card(payment.sid, number=card)
    pay.update(payment.sid, status="complete")
    final = pay.last()
    assert final["Result"] == "payment-connector-error"
    assert (final["PayErrorCode"], final["PaymentError"]) == ("64012", "Your card was declined.")
    assert final["ConnectorError"] == "card_declined" and final["PaymentConfirmationCode"] == ""


def test_unreachable_stripe_ends_in_64008(pay: Pay) -> None:
    pay.sim.register_account(
        pay.account_sid,
        pay.auth_token,
        {"Stripe_Dev": {"stripe_secret_key": "sk_test_dev", "stripe_api_base": "http://127.0.0.1:9"}},
    )
    payment = pay.create()
    pay.enter_card(payment.sid)
    pay.update(payment.sid, status="complete")
    final = pay.last()
    assert (final["Result"], final["PayErrorCode"]) == ("payment-connector-error", "64008")


@pytest.mark.parametrize(
    ("token_type", "token_prefix", "has_profile"),
    [("one-time", "tok_", False), ("reusable", "tok_", True), ("payment-method", "pm_", True)],
)
def test_tokenization_types(pay: Pay, localstripe: str, token_type: str, token_prefix: str, has_profile: bool) -> None:
    payment = pay.create(token_type=token_type, description="Tokenize 9")
    created = pay.last()
    assert created["TokenType"] == token_type and "ChargeAmount" not in created
    pay.enter_card(payment.sid)
    pay.update(payment.sid, status="complete")
    final = pay.last()
    assert final["Result"] == "success" and final["PaymentConfirmationCode"] == ""
    assert final["PaymentToken"].startswith(token_prefix)
    assert final["ProfileId"].startswith("cus_") if has_profile else final["ProfileId"] == ""
    if token_type == "payment-method":
        method = stripe_get(localstripe, f"payment_methods/{final['PaymentToken']}")
        assert method["customer"] == final["ProfileId"] and method["metadata"]["description"] == "Tokenize 9"
    else:
        assert stripe_get(localstripe, f"tokens/{final['PaymentToken']}")["card"]["last4"] == "4242"
    if has_profile:
        assert stripe_get(localstripe, f"customers/{final['ProfileId']}")["metadata"]["description"] == "Tokenize 9"


def test_ach_debit_succeeds_with_a_deterministic_synthetic_id(pay: Pay) -> None:
    payment = pay.create(payment_method="ach-debit", parameter={"AVSName": "Jane Doe"}, charge_amount="20.00")
    assert pay.last()["BankAccountType"] == "consumer-checking"
    assert twilio_error(lambda: pay.update(payment.sid, capture="payment-card-number")).code == 64020
    pay.capture(payment.sid, "bank-routing-number", "121181977")
    assert pay.last()["ErrorType"] == "invalid-bank-routing-number"
    pay.capture(payment.sid, "bank-routing-number", ROUTING)
    pay.capture(payment.sid, "bank-account-number", BANK_ACCOUNT)
    masked = pay.last()
    assert (masked["BankRoutingNumber"], masked["BankAccountNumber"]) == (ROUTING, "*******92")
    pay.update(payment.sid, status="complete")
    final = pay.last()
    assert final["Result"] == "success" and re.fullmatch(r"py_[0-9a-f]{24}", final["PaymentConfirmationCode"])
    from simulators.twilio_pay.gateway import ach_outcome

    assert final["PaymentConfirmationCode"] == ach_outcome(payment.sid, charging=True, token_type="").confirmation_code


# --- faults and inspection -------------------------------------------------------------


def test_duplicate_callbacks_fault_sends_each_callback_twice_with_one_idempotency_token(pay: Pay) -> None:
    pay.sim.set_faults(duplicate_callbacks=True)
    pay.create()
    delivered = pay.sim.flush()
    assert len(delivered) == 2 and delivered[0]["params"] == delivered[1]["params"]
    tokens = {p.headers["I-Twilio-Idempotency-Token"] for p in pay.sink.received}
    assert len(pay.sink.received) == 2 and len(tokens) == 1


def test_fail_next_rest_fault_answers_one_twilio_shaped_500(pay: Pay) -> None:
    pay.sim.set_faults(fail_next_rest={"status": 500})
    error = twilio_error(pay.create)
    assert error.status == 500
    assert pay.create().sid.startswith("PK")  # only the next one fails


def test_flush_reports_the_receivers_http_status(pay: Pay) -> None:
    pay.sink.status = 500
    pay.create()
    assert [d["status"] for d in pay.sim.flush()] == [500]
    assert len(pay.sim.callbacks()) == 1


def test_keypad_cli_prints_the_json_answer(pay: Pay) -> None:
    payment = pay.create()
    pay.update(payment.sid, capture="payment-card-number")
    done = subprocess.run(  # noqa: S603 - fixed argv: this interpreter, our module
        [
            sys.executable,
            "-m",
            "simulators.twilio_pay",
            "keypad",
            "--url",
            pay.sim.url,
            "--call",
            pay.call_sid,
            "--digits",
            VISA + "#",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    answer = json.loads(done.stdout)
    assert answer["accepted"] == "digits" and answer["session"]["required"][0] == "ExpirationDate"
    assert VISA not in done.stdout
    assert pay.last()["PaymentCardNumber"] == "xxxxxxxxxxxx4242"


# --- rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "card_type"),
    [
        (VISA, "visa"),
        ("5555555555554444", "mastercard"),
        ("2223003122003222", "mastercard"),
        (AMEX, "amex"),
        ("6011111111111117", "discover"),
        ("3566002020360505", "jcb"),
        ("36227206271667", "diners-club"),
        ("6759649826438453", "maestro"),
    ],
)
def test_card_types_are_detected_by_prefix(number: str, card_type: str) -> None:
    assert rules.check_card_number(number, rules.KNOWN_CARD_TYPES) == (card_type, None)


def test_routing_number_checksum() -> None:
    assert rules.check_routing_number(ROUTING) is None
    assert rules.check_routing_number("121181977") == "invalid-bank-routing-number"
    assert rules.check_routing_number("12118197") == "invalid-bank-routing-number"
