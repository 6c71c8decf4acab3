import pytest
from django.utils import timezone

from tenants.models import ApiKey, Scope, Tenant
from tenants.services import Actor, api_key_create, api_key_revoke, tenant_set_status


def _error(response):
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    return body["error"]


def test_tenant_endpoint_answers_the_callers_own_tenant(world, api_for):
    response = api_for(world.acme.raw_key).get("/api/v1/tenant/")
    assert response.status_code == 200
    body = response.json()
    assert body["slug"] == "acme"
    assert body["id"] == str(world.acme.tenant.uuid)
    assert body["twilio_auth_token_last4"] == world.acme.auth_token[-4:]
    assert world.acme.auth_token not in response.content.decode()


def test_request_without_credentials_is_401_in_the_envelope(world, api_for):
    response = api_for(None).get("/api/v1/tenant/")
    assert response.status_code == 401
    assert _error(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer pdk_nope_nope", "Token abc", "Bearer", "Bearer a b"])
def test_malformed_or_unknown_key_is_401(world, header):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/tenant/")
    assert response.status_code == 401
    assert _error(response)["code"] == "authentication_failed"


def test_a_key_with_the_right_prefix_but_wrong_secret_is_refused(world, api_for):
    prefix_part = world.acme.raw_key.rsplit("_", 1)[0]
    response = api_for(prefix_part + "_" + "x" * 43).get("/api/v1/tenant/")
    assert response.status_code == 401


def test_revoked_key_is_401_with_its_own_code(world, api_for):
    api_key_revoke(api_key=world.acme.api_key, actor=Actor.system("test"))
    response = api_for(world.acme.raw_key).get("/api/v1/tenant/")
    assert response.status_code == 401
    error = _error(response)
    assert error["code"] == "key_revoked"
    assert "revoked" in error["message"]


def test_suspended_tenant_is_403_and_other_tenants_still_work(world, api_for):
    tenant_set_status(tenant=world.acme.tenant, status=Tenant.Status.SUSPENDED, actor=Actor.system("test"))
    response = api_for(world.acme.raw_key).get("/api/v1/tenant/")
    assert response.status_code == 403
    assert _error(response)["code"] == "tenant_suspended"
    assert api_for(world.globex.raw_key).get("/api/v1/tenant/").status_code == 200


def test_a_key_without_the_scope_is_403_naming_the_scope(world, api_for):
    _, raw = api_key_create(
        tenant=world.acme.tenant, name="payments only", scopes=[Scope.PAYMENTS_READ], actor=Actor.system("t")
    )
    response = api_for(raw).get("/api/v1/tenant/")
    assert response.status_code == 403
    error = _error(response)
    assert error["code"] == "missing_scope"
    assert "tenant:read" in error["message"]


def test_use_is_recorded_on_the_key_at_most_once_per_interval(world, api_for):
    key = world.acme.api_key
    assert key.last_used_at is None
    api_for(world.acme.raw_key).get("/api/v1/tenant/")
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first is not None and first <= timezone.now()
    api_for(world.acme.raw_key).get("/api/v1/tenant/")
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first


def test_only_a_hash_of_the_key_is_stored(world):
    key = ApiKey.objects.get(pk=world.acme.api_key.pk)
    stored = " ".join(str(v) for v in ApiKey.objects.filter(pk=key.pk).values().first().values())
    secret_part = world.acme.raw_key.rsplit("_", 1)[1]
    assert secret_part not in stored
    assert key.prefix in world.acme.raw_key


def test_unknown_api_route_is_404_envelope_for_authenticated_caller(world, api_for):
    response = api_for(world.acme.raw_key).get(f"/api/v1/connectors/{world.globex.tenant.uuid}/")
    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"


def test_schema_and_docs_are_served_without_a_cdn(client, db):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/connectors/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger" in html.lower()
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html
