import pytest

from connectors.models import ConnectorInstance
from connectors.services import connector_stripe_secret_key, connector_stripe_webhook_secret
from tenants.models import AuditEvent, Scope
from tenants.services import Actor, api_key_create

LIVE_KEY = "sk_live_" + "a" * 24
TEST_KEY = "sk_test_" + "b" * 24


def _url(connector=None, suffix=""):
    return f"/api/v1/connectors/{connector.uuid}/{suffix}" if connector else "/api/v1/connectors/"


def _snapshot():
    """Everything a failed write must leave untouched."""
    rows = list(ConnectorInstance.objects.order_by("pk").values())
    return rows, AuditEvent.objects.count()


def test_list_shows_only_the_callers_connectors_without_secrets(world, api_for):
    response = api_for(world.acme.raw_key).get(_url())
    assert response.status_code == 200
    results = response.json()["results"]
    assert {c["unique_name"] for c in results} == {"Stripe_Prod", "Stripe_Stage", "Stripe_Dev"}
    assert {c["id"] for c in results} == {str(c.uuid) for c in world.acme.connectors.values()}
    body = response.content.decode()
    for connector in world.acme.connectors.values():
        assert connector_stripe_secret_key(connector=connector) not in body
        assert connector.stripe_secret_key_ciphertext not in body
    assert all("stripe_secret_key" not in c for c in results)
    assert all(len(c["stripe_secret_key_last4"]) == 4 for c in results)


def test_list_filters_by_environment_and_paginates_with_a_cursor(world, api_for):
    client = api_for(world.acme.raw_key)
    response = client.get(_url(), {"environment": "production"})
    assert [c["unique_name"] for c in response.json()["results"]] == ["Stripe_Prod"]
    page = client.get(_url(), {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]
    rest = client.get(page["next"]).json()
    names = {c["unique_name"] for c in page["results"] + rest["results"]}
    assert names == {"Stripe_Prod", "Stripe_Stage", "Stripe_Dev"}


@pytest.mark.parametrize(
    "method,suffix,payload",
    [
        ("get", "", None),
        ("put", "", {"unique_name": "X", "environment": "development", "stripe_secret_key": TEST_KEY}),
        ("patch", "", {"notes": "mine now"}),
        ("delete", "", None),
        ("post", "verify/", None),
    ],
)
def test_another_tenants_connector_answers_404_on_every_endpoint(world, api_for, method, suffix, payload):
    theirs = world.globex.connectors["Stripe_Dev"]
    before = _snapshot()
    response = getattr(api_for(world.acme.raw_key), method)(_url(theirs, suffix), payload, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert _snapshot() == before


def test_create_stores_the_secret_encrypted_and_shows_only_last4(world, api_for):
    response = api_for(world.acme.raw_key).post(
        _url(),
        {
            "unique_name": "Stripe_QA",
            "environment": "staging",
            "stripe_secret_key": TEST_KEY,
            "stripe_webhook_secret": "whsec_" + "c" * 24,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["mode"] == "test"
    assert body["stripe_secret_key_last4"] == TEST_KEY[-4:]
    assert TEST_KEY not in response.content.decode()
    connector = ConnectorInstance.objects.get(uuid=body["id"])
    assert connector.tenant == world.acme.tenant
    assert TEST_KEY not in connector.stripe_secret_key_ciphertext
    assert connector_stripe_secret_key(connector=connector) == TEST_KEY
    assert connector_stripe_webhook_secret(connector=connector) == "whsec_" + "c" * 24
    event = AuditEvent.objects.get(action="connector.created", target_id=body["id"])
    assert event.tenant == world.acme.tenant
    assert TEST_KEY not in str(event.changes)


def test_default_connector_name_is_accepted(world, api_for):
    response = api_for(world.acme.raw_key).post(
        _url(), {"unique_name": "Default", "environment": "development", "stripe_secret_key": TEST_KEY}, format="json"
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"unique_name": "P2", "environment": "production", "stripe_secret_key": TEST_KEY}, "stripe_secret_key"),
        ({"unique_name": "S2", "environment": "staging", "stripe_secret_key": LIVE_KEY}, "stripe_secret_key"),
        (
            {"unique_name": "D2", "environment": "development", "stripe_secret_key": "rk_live_" + "d" * 20},
            "stripe_secret_key",
        ),
        ({"unique_name": "P3", "environment": "production", "mode": "test", "stripe_secret_key": LIVE_KEY}, "mode"),
        ({"unique_name": "D3", "environment": "development", "mode": "live", "stripe_secret_key": TEST_KEY}, "mode"),
        ({"unique_name": "E1", "environment": "prod", "stripe_secret_key": LIVE_KEY}, "environment"),
        (
            {"unique_name": "K1", "environment": "development", "stripe_secret_key": "pk_test_" + "e" * 20},
            "stripe_secret_key",
        ),
        ({"unique_name": "K2", "environment": "development", "stripe_secret_key": "sk_test_"}, "stripe_secret_key"),
        ({"unique_name": "K3", "environment": "development"}, "stripe_secret_key"),
        ({"unique_name": "Stripe_Dev", "environment": "development", "stripe_secret_key": TEST_KEY}, "unique_name"),
        ({"unique_name": "has space", "environment": "development", "stripe_secret_key": TEST_KEY}, "unique_name"),
        ({"unique_name": "", "environment": "development", "stripe_secret_key": TEST_KEY}, "unique_name"),
        (
            {
                "unique_name": "W1",
                "environment": "development",
                "stripe_secret_key": TEST_KEY,
                "stripe_webhook_secret": "nope",
            },
            "stripe_webhook_secret",
        ),
        (
            {"unique_name": "V1", "environment": "development", "stripe_secret_key": TEST_KEY, "provider": "paypal"},
            "provider",
        ),
    ],
)
def test_bad_connector_input_is_a_clear_400_and_changes_nothing(world, api_for, payload, field):
    before = _snapshot()
    response = api_for(world.acme.raw_key).post(_url(), payload, format="json")
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"], error
    assert all(isinstance(m, str) and m for m in error["fields"][field])
    assert _snapshot() == before


def test_the_same_unique_name_is_fine_in_another_tenant(world, api_for):
    response = api_for(world.acme.raw_key).post(
        _url(), {"unique_name": "Stripe_QA", "environment": "development", "stripe_secret_key": TEST_KEY}, format="json"
    )
    assert response.status_code == 201
    response = api_for(world.globex.raw_key).post(
        _url(), {"unique_name": "Stripe_QA", "environment": "development", "stripe_secret_key": TEST_KEY}, format="json"
    )
    assert response.status_code == 201


def test_writing_needs_the_connectors_write_scope(world, api_for):
    _, raw = api_key_create(
        tenant=world.acme.tenant, name="ro", scopes=[Scope.CONNECTORS_READ], actor=Actor.system("t")
    )
    client = api_for(raw)
    assert client.get(_url()).status_code == 200
    before = _snapshot()
    dev = world.acme.connectors["Stripe_Dev"]
    for response in [
        client.post(_url(), {"unique_name": "X", "environment": "development", "stripe_secret_key": TEST_KEY}),
        client.patch(_url(dev), {"notes": "x"}, format="json"),
        client.delete(_url(dev)),
        client.post(_url(dev, "verify/")),
    ]:
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "missing_scope"
    assert _snapshot() == before


def test_update_without_a_secret_keeps_the_stored_one(world, api_for):
    dev = world.acme.connectors["Stripe_Dev"]
    old_key = connector_stripe_secret_key(connector=dev)
    response = api_for(world.acme.raw_key).patch(_url(dev), {"notes": "rotating soon"}, format="json")
    assert response.status_code == 200
    dev.refresh_from_db()
    assert dev.notes == "rotating soon"
    assert connector_stripe_secret_key(connector=dev) == old_key
    assert AuditEvent.objects.filter(action="connector.updated", target_id=str(dev.uuid)).exists()
    assert not AuditEvent.objects.filter(action="connector.secret_replaced").exists()


def test_replacing_the_secret_is_audited_without_the_secret(world, api_for):
    dev = world.acme.connectors["Stripe_Dev"]
    new_key = "sk_test_" + "n" * 24
    response = api_for(world.acme.raw_key).patch(_url(dev), {"stripe_secret_key": new_key}, format="json")
    assert response.status_code == 200
    assert response.json()["stripe_secret_key_last4"] == "nnnn"
    dev.refresh_from_db()
    assert connector_stripe_secret_key(connector=dev) == new_key
    event = AuditEvent.objects.get(action="connector.secret_replaced", target_id=str(dev.uuid))
    assert new_key not in str(event.changes)
    assert event.actor == f"api_key:{world.acme.api_key.prefix}"


def test_moving_a_test_connector_to_production_without_a_live_key_is_refused(world, api_for):
    dev = world.acme.connectors["Stripe_Dev"]
    before = _snapshot()
    response = api_for(world.acme.raw_key).patch(_url(dev), {"environment": "production"}, format="json")
    assert response.status_code == 400
    assert "stripe_secret_key" in response.json()["error"]["fields"]
    assert _snapshot() == before


def test_moving_to_production_with_a_live_key_follows_with_live_mode(world, api_for):
    dev = world.acme.connectors["Stripe_Dev"]
    response = api_for(world.acme.raw_key).patch(
        _url(dev), {"environment": "production", "stripe_secret_key": LIVE_KEY}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["mode"] == "live"


def test_renaming_onto_an_existing_name_is_refused(world, api_for):
    dev = world.acme.connectors["Stripe_Dev"]
    before = _snapshot()
    response = api_for(world.acme.raw_key).patch(_url(dev), {"unique_name": "Stripe_Prod"}, format="json")
    assert response.status_code == 400
    assert "unique_name" in response.json()["error"]["fields"]
    assert _snapshot() == before


def test_delete_removes_the_connector_and_audits_it(world, api_for):
    dev = world.acme.connectors["Stripe_Dev"]
    response = api_for(world.acme.raw_key).delete(_url(dev))
    assert response.status_code == 204
    assert not ConnectorInstance.objects.filter(pk=dev.pk).exists()
    assert AuditEvent.objects.filter(action="connector.deleted", target_id=str(dev.uuid)).exists()


def test_verify_records_success_against_stripe(world, api_for, localstripe, settings):
    settings.STRIPE_API_BASE_URL = localstripe
    dev = world.acme.connectors["Stripe_Dev"]
    response = api_for(world.acme.raw_key).post(_url(dev, "verify/"))
    assert response.status_code == 200
    verification = response.json()["verification"]
    assert verification["status"] == "ok"
    assert verification["last_verified_at"]
    assert AuditEvent.objects.filter(action="connector.verified", target_id=str(dev.uuid)).exists()


def test_verify_records_why_it_failed_when_stripe_is_unreachable(world, api_for, settings):
    settings.STRIPE_API_BASE_URL = "http://127.0.0.1:9"
    dev = world.acme.connectors["Stripe_Dev"]
    response = api_for(world.acme.raw_key).post(_url(dev, "verify/"))
    assert response.status_code == 200
    verification = response.json()["verification"]
    assert verification["status"] == "failed"
    assert "unreachable" in verification["last_error"].lower()
    assert verification["last_verified_at"] is None
    assert AuditEvent.objects.filter(action="connector.verify_failed", target_id=str(dev.uuid)).exists()


def test_verify_records_a_rejected_key(world, api_for, localstripe, settings):
    """localstripe refuses keys that do not start with sk_; a stored rk_ key shows the refusal path."""
    settings.STRIPE_API_BASE_URL = localstripe
    from tests.factories import ConnectorFactory

    connector = ConnectorFactory(tenant=world.acme.tenant, unique_name="Restricted", secret_key="rk_test_" + "r" * 24)
    response = api_for(world.acme.raw_key).post(_url(connector, "verify/"))
    verification = response.json()["verification"]
    assert verification["status"] == "failed"
    assert "rejected" in verification["last_error"].lower()


def test_a_connector_with_pay_sessions_cannot_be_deleted(world, api_for):
    from tests.factories import PaySessionFactory

    dev = world.acme.connectors["Stripe_Dev"]
    PaySessionFactory(tenant=world.acme.tenant, connector=dev)
    before = _snapshot()
    response = api_for(world.acme.raw_key).delete(_url(dev))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "in_use"
    assert ConnectorInstance.objects.filter(pk=dev.pk).exists()
    assert _snapshot() == before  # the audit row written before the refusal was rolled back too
