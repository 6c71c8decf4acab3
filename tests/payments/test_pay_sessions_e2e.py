"""Whole agent-assisted sessions: Paydesk's REST API → Twilio Pay simulator → signed
callbacks back to Paydesk (live server) → Stripe (localstripe)."""

import secrets
import uuid

import pytest

from payments.sessions.models import PayEvent, PaySession
from payments.sessions.services import pay_sessions_expire

pytestmark = pytest.mark.django_db(transaction=True)

CARD_ENTRIES = {
    "payment-card-number": "4242424242424242",
    "expiration-date": "1230",
    "security-code": "123",
    "postal-code": "94105",
}


def new_call() -> str:
    return "CA" + secrets.token_hex(16)


class Agent:
    """A partner app driving one session through the public API."""

    def __init__(self, desk, api):
        self.desk, self.api, self.sim = desk, api, desk.sim
        self.session = None

    def start(self, **body) -> dict:
        body.setdefault("call_sid", new_call())
        body.setdefault("connector", "Stripe_Dev")
        response = self.api.post(
            "/api/v1/pay-sessions/",
            body,
            format="json",
            HTTP_IDEMPOTENCY_KEY=body.pop("idempotency_key", str(uuid.uuid4())),
        )
        assert response.status_code == 201, response.json()
        self.session = response.json()
        self.call_sid = body["call_sid"]
        self.deliver()
        return self.session

    def deliver(self) -> list:
        delivered = self.sim.flush()
        assert all(cb["status"] == 204 for cb in delivered), delivered
        return delivered

    def get(self) -> dict:
        return self.api.get(f"/api/v1/pay-sessions/{self.session['id']}/").json()

    def post(self, action: str, body=None, **headers):
        return self.api.post(
            f"/api/v1/pay-sessions/{self.session['id']}/{action}/", body or {}, format="json", **headers
        )

    def capture(self, field: str, digits: str | None = None, **keypad) -> dict:
        response = self.post("capture", {"capture": field})
        assert response.status_code == 200, response.json()
        self.deliver()
        if digits is not None:
            self.sim.press(self.call_sid, digits)
        elif keypad:
            self.sim.keypad(self.call_sid, keypad)
        self.deliver()
        return self.get()

    def enter_card(self, card: str = CARD_ENTRIES["payment-card-number"], fields=CARD_ENTRIES) -> dict:
        for field, digits in fields.items():
            state = self.capture(field, card if field == "payment-card-number" else digits)
        return state

    def complete(self) -> dict:
        response = self.post("complete")
        assert response.status_code == 200, response.json()
        # Twilio may report the result before Paydesk has even answered: then it shows already.
        assert response.json()["status"] in ("completing", "succeeded", "failed")
        self.deliver()
        return self.get()


@pytest.fixture
def agent(desk, api_for):
    return Agent(desk, api_for(desk.world.acme.raw_key))


def _no_card_number_anywhere(card: str):
    for event in PayEvent.objects.all():
        assert card not in str(event.payload) and card not in str(event.response)
    for row in PaySession.objects.values():
        assert card not in str(row)


def test_a_charge_succeeds_end_to_end(agent, desk):
    session = agent.start(charge_amount="12.50", currency="USD", description="Invoice 42")
    assert session["status"] == "created" and session["payment_sid"].startswith("PK")
    assert session["required_fields"] == list(CARD_ENTRIES)

    state = agent.enter_card()
    assert state["status"] == "ready"
    assert state["required_fields"] == []
    assert state["card"] == {
        "number_masked": "xxxxxxxxxxxx4242",
        "last4": "4242",
        "type": "visa",
        "expiration": "1230",
        "postal_code": "94105",
    }

    final = agent.complete()
    assert final["status"] == "succeeded"
    code = final["outcome"]["payment_confirmation_code"]
    assert final["outcome"]["result"] == "success" and code.startswith("pi_")

    intent = desk.stripe_get(f"/v1/payment_intents/{code}")
    assert intent["amount"] == 1250 and intent["currency"] == "usd" and intent["status"] == "succeeded"
    assert f"Paydesk {session['id']}" in str(intent["metadata"])  # traceable back to the session
    _no_card_number_anywhere("4242424242424242")

    # every request Paydesk sent carried an IdempotencyKey and an absolute, session-specific StatusCallback
    sent = [r for r in desk.sim.requests() if r["path"].startswith("/2010-04-01/")]
    assert len(sent) == 6  # create, 4 captures, complete
    callback_url = sent[0]["form"]["StatusCallback"]
    assert callback_url.startswith("http://") and PaySession.objects.get().callback_token in callback_url
    assert len({r["form"]["IdempotencyKey"] for r in sent}) == 6
    assert sent[0]["form"]["ChargeAmount"] == "12.50"


def test_a_declined_card_fails_with_the_gateway_message(agent, desk):
    agent.start(charge_amount="20.00")
    agent.enter_card("4000000000000002")
    final = agent.complete()
    assert final["status"] == "failed"
    assert final["outcome"]["result"] == "payment-connector-error"
    assert final["outcome"]["pay_error_code"] == "64012"
    assert "declined" in final["outcome"]["payment_error"].lower()


@pytest.mark.parametrize(
    "token_type,prefix,profile",
    [
        ("one-time", "tok_", False),
        ("reusable", "tok_", True),
        ("payment-method", "pm_", True),
    ],
)
def test_tokenization_with_each_token_type(agent, token_type, prefix, profile):
    session = agent.start(token_type=token_type)
    assert session["charge_amount"] is None and session["token_type"] == token_type
    agent.enter_card()
    final = agent.complete()
    assert final["status"] == "succeeded"
    assert final["outcome"]["payment_token"].startswith(prefix)
    assert final["outcome"]["profile_id"].startswith("cus_") is profile
    assert final["outcome"]["payment_confirmation_code"] == ""


def test_a_zero_amount_means_tokenize(agent):
    session = agent.start(charge_amount="0")
    assert session["charge_amount"] is None and session["token_type"] == "reusable"


def test_an_ach_debit_succeeds(agent):
    session = agent.start(
        payment_method="ach-debit",
        charge_amount="99.99",
        bank_account_type="consumer-savings",
        parameter={"AVSName": "Jane Doe"},
    )
    assert session["required_fields"] == ["bank-routing-number", "bank-account-number"]
    agent.capture("bank-routing-number", "121000358")
    state = agent.capture("bank-account-number", "508862392")
    assert state["bank"] == {"routing_number": "121000358", "account_last2": "92"}
    assert state["status"] == "ready"
    final = agent.complete()
    assert final["status"] == "succeeded" and final["outcome"]["payment_confirmation_code"]
    _no_card_number_anywhere("508862392")


def test_a_field_can_be_asked_again_and_in_any_order(agent):
    agent.start(charge_amount="5.00")
    first = agent.capture("expiration-date", "1299")  # expiry first
    assert first["card"]["expiration"] == "1299"
    bad = agent.capture("payment-card-number", "4242424242424241")  # fails Luhn
    assert bad["last_error_type"] == "invalid-card-number"
    assert "payment-card-number" in bad["required_fields"]
    again = agent.capture("expiration-date", "1230")  # re-requested
    assert again["card"]["expiration"] == "1230"
    state = agent.enter_card(fields={k: v for k, v in CARD_ENTRIES.items() if k != "expiration-date"})
    assert state["status"] == "ready" and state["last_error_type"] == ""
    assert agent.complete()["status"] == "succeeded"


def test_an_input_timeout_is_reported_and_the_field_stays_required(agent):
    agent.start(charge_amount="5.00")
    state = agent.capture("payment-card-number", timeout=True)
    assert state["last_error_type"] == "input-timeout"
    assert state["required_fields"][0] == "payment-card-number"


def test_completing_with_fields_missing_is_409_naming_them(agent, desk):
    agent.start(charge_amount="5.00")
    agent.capture("payment-card-number", "4242424242424242")
    before = len(desk.sim.requests())
    response = agent.post("complete")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "fields_missing"
    assert error["fields"]["required"] == ["expiration-date", "security-code", "postal-code"]
    assert len(desk.sim.requests()) == before  # Twilio was not asked
    assert agent.get()["status"] == "capturing"


def test_cancel_ends_the_session_and_further_actions_are_409(agent, desk):
    agent.start(charge_amount="5.00")
    agent.capture("payment-card-number", "4242424242424242")
    response = agent.post("cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    from tenants.models import AuditEvent

    event = AuditEvent.objects.get(action="pay_session.cancelled", target_id=agent.session["id"])
    assert event.actor.startswith("api_key:")
    agent.deliver()
    assert desk.sim.requests()[-1]["form"]["Status"] == "cancel"
    for action, body in (("capture", {"capture": "expiration-date"}), ("complete", {}), ("cancel", {})):
        response = agent.post(action, body)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "session_ended"
    assert agent.get()["status"] == "cancelled"


@pytest.mark.parametrize(
    "keypad,result",
    [
        ({"digits": "*"}, "caller-interrupted-with-star"),
        ({"hangup": True}, "caller-hung-up"),
    ],
)
def test_the_caller_can_interrupt_or_hang_up(agent, keypad, result):
    agent.start(charge_amount="5.00")
    agent.post("capture", {"capture": "payment-card-number"})
    agent.deliver()
    agent.sim.keypad(agent.call_sid, keypad)
    agent.deliver()
    state = agent.get()
    assert state["status"] == "cancelled"
    assert state["outcome"]["result"] == result


def test_a_session_with_no_news_expires(agent, settings):
    from datetime import timedelta

    from django.utils import timezone

    agent.start(charge_amount="5.00")
    settings.PAYDESK_PAY_SESSION_EXPIRY_SECONDS = 60
    assert pay_sessions_expire(now=timezone.now() + timedelta(seconds=30)) == 0
    assert pay_sessions_expire(now=timezone.now() + timedelta(seconds=61)) == 1
    state = agent.get()
    assert state["status"] == "expired"
    assert agent.post("capture", {"capture": "payment-card-number"}).status_code == 409


def test_a_second_session_on_the_call_is_refused_by_twilio_as_409(agent, desk, api_for):
    agent.start(charge_amount="5.00")
    api = api_for(desk.world.acme.raw_key)
    response = api.post(
        "/api/v1/pay-sessions/",
        {"call_sid": agent.call_sid, "charge_amount": "6.00", "connector": "Stripe_Dev"},
        format="json",
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "twilio_64021"
    failed = PaySession.objects.get(uuid=error["fields"]["session"][0])
    assert failed.status == "failed" and failed.twilio_error_code == "64021"


def test_the_same_idempotency_key_and_body_give_the_same_session(agent, desk, api_for):
    api = api_for(desk.world.acme.raw_key)
    body = {"call_sid": new_call(), "charge_amount": "7.00", "connector": "Stripe_Dev"}
    first = api.post("/api/v1/pay-sessions/", body, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    second = api.post("/api/v1/pay-sessions/", body, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second["Idempotent-Replayed"] == "true"
    creates = [r for r in desk.sim.requests() if r["path"].endswith("/Payments.json")]
    assert len(creates) == 1
    other = api.post(
        "/api/v1/pay-sessions/", {**body, "charge_amount": "8.00"}, format="json", HTTP_IDEMPOTENCY_KEY="order-1"
    )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert PaySession.objects.count() == 1


def test_a_retried_capture_with_the_same_key_is_sent_to_twilio_once(agent, desk):
    agent.start(charge_amount="5.00")
    for _ in range(2):
        response = agent.post("capture", {"capture": "payment-card-number"}, HTTP_IDEMPOTENCY_KEY="cap-1")
        assert response.status_code == 200
    captures = [r for r in desk.sim.requests() if r["form"].get("Capture") == "payment-card-number"]
    assert len(captures) == 1


def test_twilio_unavailable_is_503_and_a_retry_with_the_same_key_goes_through(agent, desk, api_for):
    api = api_for(desk.world.acme.raw_key)
    desk.sim.set_faults(fail_next_rest={"status": 500})
    body = {"call_sid": new_call(), "charge_amount": "7.00", "connector": "Stripe_Dev"}
    failed = api.post("/api/v1/pay-sessions/", body, format="json", HTTP_IDEMPOTENCY_KEY="retry-me")
    assert failed.status_code == 503
    assert failed.json()["error"]["code"] == "provider_unavailable"
    retried = api.post("/api/v1/pay-sessions/", body, format="json", HTTP_IDEMPOTENCY_KEY="retry-me")
    assert retried.status_code == 201
    assert retried.json()["payment_sid"].startswith("PK") and retried.json()["status"] == "created"
    keys = {r["form"]["IdempotencyKey"] for r in desk.sim.requests() if r["path"].endswith("/Payments.json")}
    assert len(keys) == 1  # the same Twilio IdempotencyKey on the retry


def test_the_event_timeline_records_requests_and_callbacks(agent):
    agent.start(charge_amount="5.00")
    agent.capture("payment-card-number", "4242424242424242")
    events = agent.api.get(f"/api/v1/pay-sessions/{agent.session['id']}/events/").json()
    kinds = [(e["direction"], e["kind"]) for e in events]
    # Twilio's first callback may be stored before the answer to create is (the simulator,
    # like Twilio, can call back before Paydesk has read its answer): order within each side.
    outbound = [kind for direction, kind in kinds if direction == "out"]
    assert outbound[0] == "create" and "capture" in outbound
    assert sum(1 for d, _ in kinds if d == "in") >= 3
    assert all(e["applied_at"] for e in events if e["direction"] == "in")


def test_simulate_payment_runs_a_whole_session_through_the_public_api(desk, live_server):
    from io import StringIO

    from django.core.management import call_command

    from tenants.models import ApiKey

    out = StringIO()
    call_command(
        "simulate_payment",
        "--tenant",
        "acme",
        "--connector",
        "Stripe_Dev",
        "--amount",
        "12.50",
        "--base-url",
        live_server.url,
        "--sim-url",
        desk.sim.url,
        stdout=out,
    )
    text = out.getvalue()
    assert "succeeded: result=success confirmation=pi_" in text
    assert "4242424242424242" not in text and "xxxxxxxxxxxx4242" in text
    assert "→ Twilio complete" in text
    assert not ApiKey.objects.filter(name__startswith="simulate_payment", revoked_at__isnull=True).exists()

    out = StringIO()
    call_command(
        "simulate_payment",
        "--tenant",
        "acme",
        "--connector",
        "Stripe_Dev",
        "--decline",
        "--json",
        "--base-url",
        live_server.url,
        "--sim-url",
        desk.sim.url,
        stdout=out,
    )
    import json

    session = json.loads(out.getvalue())["session"]
    assert session["status"] == "failed" and session["outcome"]["result"] == "payment-connector-error"
