"""The OpenAPI document (/api/schema/) says what the API does: the error responses each
operation can give, in the error envelope; UUID path parameters; nullable fields as
they come back. tests/test_api_fuzz.py then holds the API to it."""

import pytest
import yaml
from drf_spectacular.validation import validate_schema

pytestmark = pytest.mark.django_db

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        return yaml.safe_load(Client().get("/api/schema/").content)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def test_the_document_is_valid_openapi(schema):
    validate_schema(schema)


def test_the_error_envelope_is_a_component(schema):
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert error["properties"]["error"]["required"] == ["code", "message", "fields"]


def test_every_operation_documents_the_errors_it_can_give_in_the_envelope(schema):
    operations = list(_operations(schema))
    assert len(operations) >= 30
    shared = schema["components"]["responses"]
    for path, method, operation in operations:
        statuses = set(operation["responses"])
        expected = {"400", "401", "403", "429"}
        if "{" in path:
            expected.add("404")
        if method in {"post", "put", "patch"}:
            expected |= {"413", "415"}
        assert expected <= statuses, (method, path, sorted(statuses))
        for status in statuses - {"200", "201", "202", "204"}:
            ref = operation["responses"][status]["$ref"]
            content = shared[ref.rsplit("/", 1)[1]]["content"]["application/json"]["schema"]
            assert content == {"$ref": "#/components/schemas/Error"}, (method, path, status)


@pytest.mark.parametrize(
    "method,path,statuses",
    [
        ("post", "/api/v1/pay-sessions/", {"409", "502", "503"}),
        ("post", "/api/v1/pay-sessions/{id}/complete/", {"409", "502", "503"}),
        ("delete", "/api/v1/connectors/{id}/", {"409"}),
        ("get", "/api/v1/payment-flows/{id}/studio/", {"409"}),
        ("post", "/api/v1/pay-sessions/{id}/refunds/", {"402", "409", "502", "503"}),
    ],
)
def test_errors_only_some_operations_give_are_documented_there(schema, method, path, statuses):
    assert statuses <= set(schema["paths"][path][method]["responses"])
    assert "409" not in schema["paths"]["/api/v1/tenant/"]["get"]["responses"]


def test_429_documents_retry_after(schema):
    assert "Retry-After" in schema["components"]["responses"]["TooManyRequests"]["headers"]


def test_405_is_a_reusable_response(schema):
    assert "MethodNotAllowed" in schema["components"]["responses"]


def test_every_id_path_parameter_is_a_uuid(schema):
    ids = [
        (path, p)
        for path, method, operation in _operations(schema)
        for p in operation.get("parameters", [])
        if p["in"] == "path" and p["name"] == "id"
    ]
    assert len(ids) >= 15
    uuid = {"type": "string", "format": "uuid"}
    # Events are named by their Standard Webhooks message id (webhook-id), evt_<32 hex>.
    event_id = {"type": "string", "pattern": "^evt_[0-9a-f]{32}$"}
    assert all(p["schema"] == (event_id if path.startswith("/api/v1/events/") else uuid) for path, p in ids), ids


def test_fields_that_come_back_null_are_nullable(schema):
    verification = schema["components"]["schemas"]["Verification"]["properties"]
    assert verification["last_verified_at"].get("nullable") is True
    assert verification["last_attempt_at"].get("nullable") is True


def test_the_idempotency_key_header_declares_its_limit(schema):
    [header] = [
        p for p in schema["paths"]["/api/v1/pay-sessions/"]["post"]["parameters"] if p["name"] == "Idempotency-Key"
    ]
    assert header["schema"]["maxLength"] == 200
