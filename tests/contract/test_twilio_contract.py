"""Every request Paydesk sends to Twilio is valid against Twilio's published OpenAPI spec.

The tests drive Paydesk's own REST API with TWILIO_API_BASE_URL pointed at Prism (see
conftest.py), so the requests checked are exactly the ones Paydesk builds. Prism answers
a request that breaks the spec with 422, which Paydesk turns into an error response; a
valid one gets the spec's example (sid PKaaaa…). Between Paydesk and Prism a recording
HTTP client notes each request as sent on the wire and Prism's answer, so a failure
names the violations and each test can check that the shape it claims to cover was the
one sent.

Prism checks shape only (path and SID patterns, required fields, enums, types, URI
format): not state, order or cross-field rules. Behaviour is tested against the Twilio
Pay simulator (tests/payments/).
"""

import json
import secrets
from dataclasses import dataclass

import pytest

from connectors import twilio as twilio_edge
from connectors.base import ConnectorError
from payments.sessions.models import CAPTURE_FIELDS, CARD_FIELDS, MATCHER_FIELDS, PayEvent, PaySession

pytestmark = pytest.mark.django_db

# Prism answers with the spec's static example, whatever SIDs were sent.
PRISM_EXAMPLE_SID = "PK" + "a" * 32
PAYMENTS = "/Payments.json"


def new_call() -> str:
    return "CA" + secrets.token_hex(16)


@dataclass
class Sent:
    """One request as twilio-python put it on the wire, and Prism's answer."""

    method: str
    url: str
    form: dict
    status: int
    answer: str

    @property
    def is_create(self) -> bool:
        return self.url.endswith(PAYMENTS)


@pytest.fixture
def wire(settings, monkeypatch, prism_url) -> list[Sent]:
    """Points Paydesk at Prism and records what it sends there."""
    settings.TWILIO_API_BASE_URL = prism_url
    sent: list[Sent] = []

    class RecordingHttpClient(twilio_edge.TwilioHttpClient):
        # Passes every request through unchanged; only notes it.
        def request(self, method, url, *args, **kwargs):
            response = super().request(method, url, *args, **kwargs)
            sent.append(Sent(method, url, dict(kwargs.get("data") or {}), response.status_code, response.text))
            return response

    monkeypatch.setattr(twilio_edge, "TwilioHttpClient", RecordingHttpClient)
    return sent


@pytest.fixture
def api(world, api_for, wire):
    return api_for(world.acme.raw_key)


def _explain(response, wire: list[Sent]) -> str:
    last = wire[-1] if wire else None
    prism = f"Prism answered {last.status} to {last.form}: {last.answer}" if last else "nothing reached Prism"
    return f"Paydesk answered {response.status_code} {response.content[:500]!r}; {prism}"


def start(api, wire: list[Sent], **body) -> tuple[dict, dict]:
    """Start a session through the API; returns (session, the create form Twilio got)."""
    body = {"call_sid": new_call(), "connector": "Stripe_Dev", **body}
    response = api.post("/api/v1/pay-sessions/", body, format="json")
    assert response.status_code == 201, _explain(response, wire)
    session = response.json()
    assert session["payment_sid"] == PRISM_EXAMPLE_SID
    [create] = [s for s in wire if s.is_create]
    assert create.method == "POST" and create.status == 201, create
    assert f"/Calls/{body['call_sid']}{PAYMENTS}" in create.url
    return session, create.form


def act(api, wire: list[Sent], session: dict, action: str, body=None) -> tuple[dict, dict]:
    """Capture, complete or cancel through the API; returns (session, the update form Twilio got)."""
    before = len(wire)
    response = api.post(f"/api/v1/pay-sessions/{session['id']}/{action}/", body or {}, format="json")
    assert response.status_code == 200, _explain(response, wire)
    [update] = wire[before:]
    assert update.method == "POST" and update.status == 202, update
    assert update.url.endswith(f"/Calls/{session['call_sid']}/Payments/{PRISM_EXAMPLE_SID}.json")
    return response.json(), update.form


def _assert_required_parts(form: dict) -> None:
    # Prism already enforces these; a clearer message when they go missing.
    assert form["IdempotencyKey"]
    assert form["StatusCallback"].startswith("http")


# --- CreatePayments -------------------------------------------------------------------


@pytest.mark.parametrize(
    "options,expected",
    [
        pytest.param(
            {
                "postal_code": True,
                "security_code": True,
                "min_postal_code_length": 5,
                "valid_card_types": "visa mastercard amex",
                "timeout": 30,
                "confirmation": True,
                "require_matching_inputs": CARD_FIELDS,
                "description": "Invoice 42",
                "parameter": {"invoice": "42", "attempt": 2, "vip": True, "note": None},
            },
            {
                "PostalCode": "true",
                "SecurityCode": "true",
                "MinPostalCodeLength": 5,
                "ValidCardTypes": "visa mastercard amex",
                "Timeout": 30,
                "Confirmation": "true",
                "RequireMatchingInputs": ",".join(CARD_FIELDS),
                "Parameter": {"attempt": 2, "invoice": "42", "note": None, "vip": True},
            },
            id="every-option",
        ),
        pytest.param(
            {
                "postal_code": False,
                "security_code": False,
                "confirmation": False,
                "require_matching_inputs": ["payment-card-number", "expiration-date"],
            },
            {
                "PostalCode": "false",
                "SecurityCode": "false",
                "RequireMatchingInputs": "payment-card-number,expiration-date",
            },
            id="no-postal-code-no-security-code",
        ),
        pytest.param(
            {"postal_code": True, "security_code": False, "min_postal_code_length": 3, "timeout": 600},
            {"PostalCode": "true", "SecurityCode": "false", "MinPostalCodeLength": 3, "Timeout": 600},
            id="postal-code-only",
        ),
    ],
)
def test_a_card_charge_request_is_valid(api, wire, options, expected):
    session, form = start(api, wire, charge_amount="12.50", currency="USD", **options)
    _assert_required_parts(form)
    assert form["PaymentMethod"] == "credit-card" and form["ChargeAmount"] == "12.50"
    assert "TokenType" not in form and "BankAccountType" not in form
    if not options.get("confirmation"):
        assert "Confirmation" not in form
    sent = {k: json.loads(form[k]) if k == "Parameter" else form[k] for k in expected}
    assert sent == expected
    assert form["Description"].startswith(options.get("description", "Paydesk"))


@pytest.mark.parametrize(
    "currency,amount,charge_amount",
    [
        ("USD", "7", "7.00"),
        ("JPY", "1250", "1250"),  # no minor unit: no decimal point at all
        ("KWD", "12.345", "12.345"),
        ("KWD", "1.5", "1.500"),  # three decimals, padded
    ],
)
def test_charge_amount_is_sent_in_the_currencys_major_units(api, wire, currency, amount, charge_amount):
    _, form = start(api, wire, charge_amount=amount, currency=currency)
    assert form["Currency"] == currency
    assert form["ChargeAmount"] == charge_amount


@pytest.mark.parametrize("token_type", PaySession.TokenType.values)
def test_a_card_tokenization_request_is_valid_for_each_token_type(api, wire, token_type):
    _, form = start(api, wire, token_type=token_type)
    _assert_required_parts(form)
    assert form["TokenType"] == token_type and form["PaymentMethod"] == "credit-card"
    assert "ChargeAmount" not in form


@pytest.mark.parametrize("bank_account_type", PaySession.BankAccountType.values)
def test_an_ach_debit_request_is_valid_for_each_bank_account_type(api, wire, bank_account_type):
    _, form = start(
        api,
        wire,
        payment_method="ach-debit",
        charge_amount="99.99",
        currency="USD",
        bank_account_type=bank_account_type,
        parameter={"AVSName": "Jane Doe"},
    )
    _assert_required_parts(form)
    assert form["PaymentMethod"] == "ach-debit" and form["ChargeAmount"] == "99.99"
    assert form["BankAccountType"] == bank_account_type
    assert json.loads(form["Parameter"]) == {"AVSName": "Jane Doe"}
    assert "PostalCode" not in form and "SecurityCode" not in form


def test_an_ach_tokenization_request_is_valid(api, wire):
    _, form = start(api, wire, payment_method="ach-debit", token_type="one-time", parameter={"AVSName": "Jane Doe"})
    assert form["PaymentMethod"] == "ach-debit" and form["TokenType"] == "one-time"
    assert form["BankAccountType"] == "consumer-checking"  # Paydesk's default
    assert "ChargeAmount" not in form


# --- UpdatePayments -------------------------------------------------------------------

CARD_SESSION = {"charge_amount": "5.00", "require_matching_inputs": CARD_FIELDS}  # every matcher allowed
ACH_SESSION = {"payment_method": "ach-debit", "charge_amount": "5.00", "parameter": {"AVSName": "Jane Doe"}}


@pytest.mark.parametrize("capture", CAPTURE_FIELDS + MATCHER_FIELDS)  # every value the API accepts
def test_a_capture_request_is_valid_for_each_field(api, wire, capture):
    ach = capture.startswith("bank-")
    session, _ = start(api, wire, **(ACH_SESSION if ach else CARD_SESSION))
    state, form = act(api, wire, session, "capture", {"capture": capture})
    _assert_required_parts(form)
    assert form["Capture"] == capture and "Status" not in form
    assert state["status"] == "capturing" and state["capturing_field"] == capture


def test_a_complete_request_is_valid(api, wire):
    session, _ = start(api, wire, **CARD_SESSION)
    # Paydesk refuses to complete while fields are missing, and only Twilio's callbacks
    # clear them; Prism sends none, so play the callbacks' outcome in the database.
    assert PaySession.objects.filter(uuid=session["id"]).update(required_fields=[]) == 1
    state, form = act(api, wire, session, "complete")
    _assert_required_parts(form)
    assert form["Status"] == "complete" and "Capture" not in form
    assert state["status"] == "completing"


def test_a_cancel_request_is_valid(api, wire):
    session, _ = start(api, wire, **CARD_SESSION)
    state, form = act(api, wire, session, "cancel")
    _assert_required_parts(form)
    assert form["Status"] == "cancel" and "Capture" not in form
    assert state["status"] == "cancelled"


# --- The check can fail -----------------------------------------------------------------

ACCOUNT, CALL = "AC" + "0" * 32, "CA" + "0" * 32
CALLBACK = "https://paydesk.example/twilio/pay/x/status/"
VALID = {
    "payments_create": {"params": {"charge_amount": "12.50", "currency": "USD"}},
    "payments_update": {"payment_sid": PRISM_EXAMPLE_SID, "capture": "payment-card-number"},
}


def send(edge_function: str, **change):
    """Call connectors/twilio.py directly with a request that is valid but for `change`."""
    common = {
        "account_sid": ACCOUNT,
        "auth_token": "t",
        "call_sid": CALL,
        "idempotency_key": "k",
        "status_callback": CALLBACK,
    }
    return getattr(twilio_edge, edge_function)(**{**common, **VALID[edge_function], **change})


@pytest.mark.parametrize("edge_function", VALID)
def test_the_unchanged_requests_are_accepted(wire, edge_function):
    # The baseline for the refusals below: each of them is refused for its one change only.
    assert send(edge_function).sid == PRISM_EXAMPLE_SID


@pytest.mark.parametrize(
    "edge_function,change",
    [
        pytest.param("payments_update", {"capture": "card-number"}, id="unknown-capture"),
        pytest.param("payments_update", {"capture": None, "status": "completed"}, id="unknown-status"),
        pytest.param("payments_create", {"status_callback": "/twilio/pay/x/status/"}, id="relative-callback"),
        pytest.param("payments_create", {"params": {"charge_amount": "12,50"}}, id="comma-decimal"),
        pytest.param("payments_create", {"params": {"token_type": "single-use"}}, id="unknown-token-type"),
    ],
)
def test_a_request_that_breaks_the_spec_is_refused_with_422(wire, edge_function, change):
    with pytest.raises(ConnectorError) as refused:
        send(edge_function, **change)
    assert refused.value.status == 422 and refused.value.permanent
    assert wire[-1].status == 422 and json.loads(wire[-1].answer)["validation"]


def test_a_drift_in_paydesks_own_requests_fails_the_api_call(api, wire, settings):
    # A relative StatusCallback breaks the spec's `format: uri`: the same path the tests
    # above take then answers an error, so their 201/200 assertions would catch it.
    settings.PAYDESK_PUBLIC_BASE_URL = ""
    response = api.post(
        "/api/v1/pay-sessions/",
        {"call_sid": new_call(), "connector": "Stripe_Dev", "charge_amount": "5.00"},
        format="json",
    )
    assert response.status_code == 502, _explain(response, wire)
    assert response.json()["error"]["code"].startswith("twilio_")
    assert wire[-1].status == 422
    session = PaySession.objects.get(uuid=response.json()["error"]["fields"]["session"][0])
    assert session.status == "failed" and session.payment_sid == ""
    create = session.events.get(direction=PayEvent.Direction.OUTBOUND, kind="create")
    assert create.http_status == 422
