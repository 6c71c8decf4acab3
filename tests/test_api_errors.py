"""No 500 from input: each input that once crashed the API (issue 12) now answers a 4xx
in the error envelope, and unknown routes, disallowed methods and oversized or
overly nested bodies answer theirs."""

import json
import logging
from datetime import timedelta, timezone

import pytest

from payments.sessions.models import PaySession
from tests.factories import PaySessionFactory

pytestmark = pytest.mark.django_db

CALL = "CA" + "0123456789abcdef" * 2


def _error(response, status: int, code: str) -> dict:
    """The envelope of an error answer, checked for status, JSON and code."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]


@pytest.fixture
def api(world, api_for):
    return api_for(world.acme.raw_key)


@pytest.fixture
def no_error_logged(caplog):
    """A 4xx is the caller's problem: nothing is logged at ERROR (a 500 logs its traceback)."""
    with caplog.at_level(logging.ERROR):
        yield
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


# --- 1. Date-time filters whose UTC offset PostgreSQL cannot take ------------------------

DATETIME_FILTERS = [
    ("/api/v1/pay-sessions/", "created_after"),
    ("/api/v1/pay-sessions/", "created_before"),
    ("/api/v1/reconciliation/items/", "opened_after"),
    ("/api/v1/reconciliation/items/", "opened_before"),
    ("/api/v1/reports/payments", "created_after"),
    ("/api/v1/reports/daily-summary", "created_before"),
    ("/api/v1/reports/exceptions", "opened_after"),
]


@pytest.mark.parametrize("offset", ["+16:00", "-16:00", "+23:59"])
@pytest.mark.parametrize("path,name", DATETIME_FILTERS)
def test_a_date_time_filter_with_an_offset_beyond_15_59_is_a_400(api, no_error_logged, path, name, offset):
    error = _error(api.get(path, {name: f"2026-01-01T00:00:00{offset}"}), 400, "invalid")
    assert name in error["fields"], error


@pytest.mark.parametrize("path,name", DATETIME_FILTERS)
def test_a_date_time_filter_with_an_offset_of_15_59_still_works(api, path, name):
    response = api.get(path, {name: "2026-01-01T00:00:00+15:59"})
    assert response.status_code == 200, response.content[:300]


def test_an_offset_within_range_is_honoured(world, api):
    session = PaySessionFactory(tenant=world.acme.tenant, connector=world.acme.connectors["Stripe_Dev"])
    local = session.created_at.astimezone(timezone(timedelta(hours=15, minutes=59)))
    just_after = (local.replace(microsecond=0) + timedelta(seconds=1)).isoformat()
    assert just_after.endswith("+15:59")
    assert api.get("/api/v1/pay-sessions/", {"created_before": just_after}).json()["results"]
    assert not api.get("/api/v1/pay-sessions/", {"created_after": just_after}).json()["results"]


# --- 2. reports/exceptions?format=json: tests/reports/test_summaries.py ------------------


# --- 3. NUL bytes in query parameters -----------------------------------------------------


@pytest.mark.parametrize(
    "path,query",
    [
        ("/api/v1/reports/payouts", "connector=%00"),
        ("/api/v1/pay-sessions/", "call_sid=CA%00"),
        ("/api/v1/reconciliation/items/", "stripe_object_id=%00x"),
        ("/api/v1/connectors/", "unique_name=a%00b"),
        ("/api/v1/tenant/", "anything=%00"),
    ],
)
def test_a_nul_byte_in_a_query_parameter_is_a_400_naming_it(api, no_error_logged, path, query):
    error = _error(api.get(f"{path}?{query}"), 400, "invalid")
    assert query.split("=")[0] in error["fields"], error


# --- 4. Dates the date arithmetic cannot take -------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/reports/payments", "/api/v1/reports/daily-summary", "/api/v1/reports/payouts"]
)  # noqa: E501
@pytest.mark.parametrize("name,value", [("date_to", "9999-12-31"), ("date_from", "0001-01-01")])
def test_a_report_date_out_of_range_is_a_400(api, no_error_logged, path, name, value):
    error = _error(api.get(path, {name: value}), 400, "invalid")
    assert name in error["fields"], error
    assert "2999-12-31" in error["fields"][name][0]


# --- 5. Bodies over PAYDESK_API_MAX_BODY_BYTES --------------------------------------------


def test_a_body_over_the_limit_is_a_413_before_it_is_read(api, settings, no_error_logged):
    settings.PAYDESK_API_MAX_BODY_BYTES = 1000
    body = json.dumps({"call_sid": CALL, "description": "x" * 2000})
    error = _error(api.post("/api/v1/pay-sessions/", body, content_type="application/json"), 413, "payload_too_large")
    assert "1000" in error["message"]
    assert not PaySession.objects.exists()


def test_the_default_limit_is_one_mebibyte(api, settings):
    assert settings.PAYDESK_API_MAX_BODY_BYTES == 2**20
    big = json.dumps({"call_sid": CALL, "description": "x" * (3 * 2**20)})  # beyond Django's own 2.5 MB too
    _error(api.post("/api/v1/pay-sessions/", big, content_type="application/json"), 413, "payload_too_large")
    at_limit = json.dumps({"call_sid": "bad", "description": "x" * (2**20 - 100)})
    _error(api.post("/api/v1/pay-sessions/", at_limit, content_type="application/json"), 400, "invalid")


# --- 6. JSON nested 5,000 deep ----------------------------------------------------------


@pytest.mark.parametrize("depth", [33, 5000])
def test_deeply_nested_json_is_a_400(world, api, no_error_logged, depth):
    nested = "[" * depth + "]" * depth
    body = f'{{"call_sid": "{CALL}", "parameter": {{"a": {nested}}}}}'
    error = _error(api.post("/api/v1/pay-sessions/", body, content_type="application/json"), 400, "parse_error")
    assert "nested deeper than 32" in error["message"]
    connector = world.acme.connectors["Stripe_Dev"]
    body = f'{{"notes": {nested}}}'
    response = api.patch(f"/api/v1/connectors/{connector.uuid}/", body, content_type="application/json")
    _error(response, 400, "parse_error")


@pytest.mark.parametrize("text", ["\\u0000", "a\\u0000b", "\\ud800"])
def test_a_json_string_postgresql_cannot_store_is_a_400(world, api, no_error_logged, text):
    connector = world.acme.connectors["Stripe_Dev"]
    body = f'{{"notes": "{text}"}}'
    response = api.patch(f"/api/v1/connectors/{connector.uuid}/", body, content_type="application/json")
    _error(response, 400, "parse_error")
    body = f'{{"call_sid": "{CALL}", "connector": "Stripe_Dev", "parameter": {{"{text}": "x"}}}}'
    _error(api.post("/api/v1/pay-sessions/", body, content_type="application/json"), 400, "parse_error")


# --- Routes and methods -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nothing-here/",
        "/api/v2/pay-sessions/",
        "/api/v1/pay-sessions/not-a-uuid/",
        "/api/v1/connectors/12/",
        "/api/v1/payment-flows/00000000-0000-0000-0000-000000000000/references/abc/",
    ],
)
def test_an_unknown_api_route_is_the_json_404(api, path):
    error = _error(api.get(path), 404, "not_found")
    assert path in error["message"]


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_a_missing_trailing_slash_is_a_json_404_naming_the_route(api, method):
    error = _error(getattr(api, method)("/api/v1/pay-sessions"), 404, "not_found")
    assert "'/api/v1/pay-sessions/'" in error["message"]


def test_the_json_404_does_not_depend_on_debug(api, settings):
    settings.DEBUG = True
    _error(api.get("/api/v1/nothing-here/"), 404, "not_found")


def test_outside_the_api_a_404_is_still_a_page(client, db):
    response = client.get("/nothing-here/")
    assert response.status_code == 404 and not response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    "method,path,allowed",
    [
        ("delete", "/api/v1/tenant/", "GET"),
        ("post", "/api/v1/tenant/", "GET"),
        ("put", "/api/v1/pay-sessions/", "GET, POST"),
        ("delete", "/api/v1/reports/payments", "GET"),
        ("patch", "/api/v1/reconciliation/items/", "GET"),
    ],
)
def test_a_method_the_route_does_not_have_is_a_405_not_a_missing_scope(api, method, path, allowed):
    error = _error(getattr(api, method)(path), 405, "method_not_allowed")
    assert "scope" not in error["message"]
    response = getattr(api, method)(path)
    assert all(m in response["Allow"] for m in allowed.split(", "))


def test_a_missing_method_is_a_405_even_without_a_key(api_for, db):
    _error(api_for(None).delete("/api/v1/tenant/"), 405, "method_not_allowed")


def test_an_invalid_cursor_is_a_400_naming_it(api):
    error = _error(api.get("/api/v1/pay-sessions/", {"cursor": "garbage"}), 400, "invalid")
    assert "cursor" in error["fields"]


# --- Every invalid field at once ----------------------------------------------------------


def test_every_invalid_pay_session_field_is_reported_at_once(api):
    body = {
        "call_sid": "CA123",
        "connector": "Stripe_Nope",
        "currency": "XYZ",
        "charge_amount": "twelve",
        "timeout": 0,
        "valid_card_types": "bitcoin",
    }
    error = _error(api.post("/api/v1/pay-sessions/", body, format="json"), 400, "invalid")
    assert set(error["fields"]) == set(body), error


def test_cross_field_rules_are_reported_with_field_errors(api):
    body = {"call_sid": "CA123", "connector": "Stripe_Dev", "charge_amount": "12.50", "token_type": "one-time",
            "postal_code": False, "min_postal_code_length": 5}  # fmt: skip
    error = _error(api.post("/api/v1/pay-sessions/", body, format="json"), 400, "invalid")
    assert set(error["fields"]) == {"call_sid", "token_type", "min_postal_code_length"}, error


def test_every_invalid_connector_field_is_reported_at_once(api):
    body = {"unique_name": "", "environment": "production", "mode": "test", "stripe_secret_key": "nope"}
    error = _error(api.post("/api/v1/connectors/", body, format="json"), 400, "invalid")
    assert set(error["fields"]) == {"unique_name", "mode", "stripe_secret_key"}, error


def test_every_invalid_report_parameter_is_reported_at_once(api):
    query = {"format": "pdf", "date_from": "yesterday", "created_after": "2026-01-01T00:00:00+20:00"}
    error = _error(api.get("/api/v1/reports/payments", query), 400, "invalid")
    assert set(error["fields"]) == set(query), error


# --- Amounts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [
        "١٢.٥٠",  # Arabic-Indic digits
        "１２.５０",  # full-width digits
        "۱۲.۵۰",  # Extended Arabic-Indic (Persian) digits
        "-0.00",  # would have been 0: a tokenization instead of a charge
        "-0",
        "+12.50",
        "12,50",
    ],
)
def test_an_amount_in_anything_but_plain_ascii_digits_is_refused(api, settings, amount):
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"  # any call to Twilio would fail loudly
    body = {"call_sid": CALL, "connector": "Stripe_Dev", "charge_amount": amount}
    error = _error(api.post("/api/v1/pay-sessions/", body, format="json"), 400, "invalid")
    assert "charge_amount" in error["fields"]
    assert not PaySession.objects.exists()


# --- Idempotency-Key ------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["", "{id}/capture/", "{id}/complete/"])
def test_an_idempotency_key_over_200_characters_is_refused_not_cut(world, api, settings, action):
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"
    session = PaySessionFactory(tenant=world.acme.tenant, connector=world.acme.connectors["Stripe_Dev"])
    body = {"call_sid": CALL, "connector": "Stripe_Dev", "charge_amount": "12.50", "capture": "payment-card-number"}
    path = "/api/v1/pay-sessions/" + action.format(id=session.uuid)
    before = PaySession.objects.count()
    response = api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="k" * 201)
    error = _error(response, 400, "invalid")
    assert "Idempotency-Key" in error["fields"] and "201" in error["fields"]["Idempotency-Key"][0]
    assert PaySession.objects.count() == before


def test_an_idempotency_key_with_a_control_character_is_refused(world, api):
    body = {"call_sid": CALL, "connector": "Stripe_Dev", "charge_amount": "12.50"}
    response = api.post("/api/v1/pay-sessions/", body, format="json", HTTP_IDEMPOTENCY_KEY="order\x001")
    assert "Idempotency-Key" in _error(response, 400, "invalid")["fields"]
    assert not PaySession.objects.exists()


def test_a_key_of_exactly_200_characters_is_kept_whole(world, api, settings):
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"  # Twilio unreachable: 503, the session is kept
    body = {"call_sid": CALL, "connector": "Stripe_Dev", "charge_amount": "12.50"}
    key = "k" * 199 + "z"
    response = api.post("/api/v1/pay-sessions/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 503, response.content
    assert PaySession.objects.get().idempotency_key == key


# --- A 500 outside DRF ------------------------------------------------------------------


def test_a_server_error_under_the_api_is_the_json_envelope(rf):
    from config.api import server_error

    response = server_error(rf.get("/api/v1/tenant/"))
    assert response.status_code == 500
    assert json.loads(response.content)["error"]["code"] == "server_error"
    assert server_error(rf.get("/admin/"))["Content-Type"].startswith("text/html")
