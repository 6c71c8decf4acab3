"""Pay-session API behaviour that is decided before Twilio is called: validation,
scopes, tenant isolation, filters."""

import pytest

from payments.sessions.models import PayEvent, PaySession
from tenants.models import Scope
from tenants.services import Actor, api_key_create
from tests.factories import PaySessionFactory

CALL = "CA" + "0123456789abcdef" * 2
URL = "/api/v1/pay-sessions/"


def _snapshot():
    return list(PaySession.objects.order_by("pk").values()), PayEvent.objects.count()


@pytest.mark.parametrize(
    "override,field",
    [
        ({"call_sid": "CA123"}, "call_sid"),
        ({"call_sid": "PK" + "0" * 32}, "call_sid"),
        ({"call_sid": None}, "call_sid"),
        ({"connector": "Stripe_Nope"}, "connector"),
        ({"charge_amount": "-5"}, "charge_amount"),
        ({"charge_amount": "12.345"}, "charge_amount"),
        ({"charge_amount": "1000000"}, "charge_amount"),
        ({"charge_amount": "twelve"}, "charge_amount"),
        ({"charge_amount": "1e3"}, "charge_amount"),
        ({"charge_amount": "12.5", "currency": "JPY"}, "charge_amount"),
        ({"charge_amount": "1.2345", "currency": "KWD"}, "charge_amount"),
        ({"currency": "usd"}, "currency"),
        ({"currency": "XYZ"}, "currency"),
        ({"payment_method": "paypal"}, "payment_method"),
        ({"token_type": "forever"}, "token_type"),
        ({"token_type": "one-time"}, "token_type"),  # with an amount: Twilio would charge, not tokenize
        ({"postal_code": "maybe"}, "postal_code"),
        ({"security_code": "perhaps"}, "security_code"),
        ({"min_postal_code_length": 0}, "min_postal_code_length"),
        ({"min_postal_code_length": "five"}, "min_postal_code_length"),
        ({"min_postal_code_length": 5, "postal_code": False}, "min_postal_code_length"),
        ({"valid_card_types": "visa bitcoin"}, "valid_card_types"),
        ({"valid_card_types": 7}, "valid_card_types"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": 601}, "timeout"),
        ({"bank_account_type": "consumer-checking"}, "bank_account_type"),  # credit-card
        (
            {"bank_account_type": "piggy-bank", "payment_method": "ach-debit", "parameter": {"a": "b"}},
            "bank_account_type",
        ),
        ({"confirmation": "sure"}, "confirmation"),
        ({"require_matching_inputs": ["payment-card-number", "pin"]}, "require_matching_inputs"),
        ({"require_matching_inputs": ["security-code"], "security_code": False}, "require_matching_inputs"),
        ({"description": "x" * 201}, "description"),
        ({"parameter": "not an object"}, "parameter"),
        ({"parameter": {"nested": {"a": 1}}}, "parameter"),
        ({"payment_method": "ach-debit"}, "parameter"),  # required for ACH
        ({"payment_method": "ach-debit", "parameter": {"a": "b"}, "valid_card_types": "visa"}, "valid_card_types"),
    ],
)
def test_bad_input_is_a_clear_400_before_twilio_and_changes_nothing(world, api_for, settings, override, field):
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"  # any call to Twilio would fail loudly
    body = {"call_sid": CALL, "connector": "Stripe_Dev", "charge_amount": "12.50", **override}
    body = {k: v for k, v in body.items() if v is not None}
    before = _snapshot()
    response = api_for(world.acme.raw_key).post(URL, body, format="json")
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"], error
    assert _snapshot() == before


def test_a_disabled_connector_is_refused(world, api_for):
    connector = world.acme.connectors["Stripe_Dev"]
    connector.is_active = False
    connector.save()
    response = api_for(world.acme.raw_key).post(URL, {"call_sid": CALL, "connector": "Stripe_Dev"}, format="json")
    assert response.status_code == 400
    assert "disabled" in response.json()["error"]["fields"]["connector"][0]


def test_another_tenants_connector_name_is_unknown(world, api_for):
    from connectors.models import ConnectorInstance

    ConnectorInstance.objects.filter(tenant=world.acme.tenant, unique_name="Stripe_Stage").delete()
    response = api_for(world.acme.raw_key).post(URL, {"call_sid": CALL, "connector": "Stripe_Stage"}, format="json")
    assert response.status_code == 400  # globex has a Stripe_Stage; acme does not see it
    assert "connector" in response.json()["error"]["fields"]


@pytest.fixture
def theirs(world):
    return PaySessionFactory(tenant=world.globex.tenant, connector=world.globex.connectors["Stripe_Dev"])


@pytest.mark.parametrize(
    "method,suffix,body",
    [
        ("get", "", None),
        ("get", "events/", None),
        ("post", "capture/", {"capture": "payment-card-number"}),
        ("post", "complete/", {}),
        ("post", "cancel/", {}),
    ],
)
def test_another_tenants_session_answers_404_on_every_endpoint(world, api_for, theirs, method, suffix, body):
    before = _snapshot()
    response = getattr(api_for(world.acme.raw_key), method)(f"{URL}{theirs.uuid}/{suffix}", body, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert _snapshot() == before


def test_the_list_shows_only_the_callers_sessions_and_filters(world, api_for, theirs):
    acme = world.acme
    mine = PaySessionFactory(
        tenant=acme.tenant, connector=acme.connectors["Stripe_Dev"], status="succeeded", call_sid=CALL
    )
    PaySessionFactory(tenant=acme.tenant, connector=acme.connectors["Stripe_Prod"], status="failed")
    client = api_for(acme.raw_key)
    everything = client.get(URL).json()["results"]
    assert len(everything) == 2 and str(theirs.uuid) not in {s["id"] for s in everything}
    for query, expected in [
        ({"status": "succeeded"}, [mine]),
        ({"connector": "Stripe_Dev"}, [mine]),
        ({"call_sid": CALL}, [mine]),
        ({"created_after": "2000-01-01T00:00:00Z", "status": "succeeded"}, [mine]),
        ({"created_before": "2000-01-01T00:00:00Z"}, []),
    ]:
        results = client.get(URL, query).json()["results"]
        assert [r["id"] for r in results] == [str(s.uuid) for s in expected], query
    assert client.get(URL, {"status": "nope"}).status_code == 400


def test_reading_and_writing_need_the_payments_scopes(world, api_for, theirs):
    _, read_only = api_key_create(
        tenant=world.acme.tenant, name="ro", scopes=[Scope.PAYMENTS_READ], actor=Actor.system("t")
    )
    _, no_payments = api_key_create(
        tenant=world.acme.tenant, name="none", scopes=[Scope.TENANT_READ], actor=Actor.system("t")
    )
    mine = PaySessionFactory(tenant=world.acme.tenant, connector=world.acme.connectors["Stripe_Dev"])
    assert api_for(read_only).get(URL).status_code == 200
    assert api_for(no_payments).get(URL).status_code == 403
    for path, body in [
        (URL, {"call_sid": CALL}),
        (f"{URL}{mine.uuid}/cancel/", {}),
        (f"{URL}{mine.uuid}/capture/", {"capture": "payment-card-number"}),
    ]:
        response = api_for(read_only).post(path, body, format="json")
        assert response.status_code == 403 and response.json()["error"]["code"] == "missing_scope"


@pytest.mark.parametrize(
    "capture", ["card-number", "security-code", "bank-routing-number", "payment-card-number-matcher"]
)
def test_capturing_a_field_the_session_does_not_ask_for_is_400(world, api_for, capture):
    session = PaySessionFactory(
        tenant=world.acme.tenant, connector=world.acme.connectors["Stripe_Dev"], security_code=False
    )
    response = api_for(world.acme.raw_key).post(f"{URL}{session.uuid}/capture/", {"capture": capture}, format="json")
    assert response.status_code == 400
    assert "capture" in response.json()["error"]["fields"]


def test_money_is_shown_in_major_units_for_each_currency(world, api_for):
    for amount_minor, currency, expected in [(1250, "USD", "12.50"), (1250, "JPY", "1250"), (1234, "KWD", "1.234")]:
        session = PaySessionFactory(
            tenant=world.acme.tenant,
            connector=world.acme.connectors["Stripe_Dev"],
            amount_minor=amount_minor,
            currency=currency,
        )
        body = api_for(world.acme.raw_key).get(f"{URL}{session.uuid}/").json()
        assert (body["charge_amount"], body["amount_minor"], body["currency"]) == (expected, amount_minor, currency)
        assert "reconciliation" in body
