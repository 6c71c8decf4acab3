"""The connector admin: tenant scoping, membership roles, the live/test guard on the form,
write-only Stripe secrets, and actions (verify, delete) through the services."""

import pytest
from django.contrib.messages import get_messages
from django.db.models import ProtectedError
from django.urls import reverse

from connectors.models import ConnectorInstance
from connectors.services import connector_stripe_secret_key, connector_stripe_webhook_secret
from tenants.models import AuditEvent, Role
from tests.factories import MembershipFactory, PaySessionFactory, UserFactory

LIVE_KEY = "sk_live_" + "L1ve" * 6
TEST_KEY = "sk_test_" + "T3st" * 6


def url(name: str, *args) -> str:
    return reverse(f"admin:connectors_connectorinstance_{name}", args=args)


def member(tenant, role: str):
    user = UserFactory()
    MembershipFactory(user=user, tenant=tenant, role=role)
    return user


def form_errors(response) -> dict:
    return response.context["adminform"].form.errors


def action(name: str, *pks) -> dict:
    return {"action": name, "_selected_action": [str(pk) for pk in pks], "index": "0"}


def add_data(tenant, **overrides) -> dict:
    data = {
        "tenant": tenant.pk,
        "unique_name": "Stripe_New",
        "provider": "stripe",
        "environment": "production",
        "is_active": "on",
        "notes": "",
        "stripe_secret_key": LIVE_KEY,
        "stripe_webhook_secret": "",
    }
    return {**data, **overrides}


def change_data(connector, **overrides) -> dict:
    data = {
        "unique_name": connector.unique_name,
        "environment": connector.environment,
        "is_active": "on" if connector.is_active else "",
        "notes": connector.notes,
        "stripe_secret_key": "",
        "stripe_webhook_secret": "",
    }
    return {**data, **overrides}


@pytest.fixture
def as_acme_owner(client, world):
    client.force_login(world.acme.owner)
    return client


# --- Scoping --------------------------------------------------------------------------


def test_owner_sees_only_own_tenant_connectors(world, as_acme_owner):
    response = as_acme_owner.get(url("changelist"))

    assert response.status_code == 200
    rows = list(response.context["cl"].queryset)
    assert {c.unique_name for c in rows} == {"Stripe_Prod", "Stripe_Stage", "Stripe_Dev"}
    assert {c.tenant_id for c in rows} == {world.acme.tenant.pk}
    assert b"globex" not in response.content.lower()


@pytest.mark.parametrize("role", [Role.OWNER, Role.VIEWER])
def test_other_tenants_connector_urls_answer_404(world, client, role):
    client.force_login(world.acme.owner if role == Role.OWNER else member(world.acme.tenant, role))
    connector = world.globex.connectors["Stripe_Prod"]

    assert client.get(url("change", connector.pk)).status_code == 404
    assert client.post(url("change", connector.pk), change_data(connector, notes="hijacked")).status_code == 404
    assert client.get(url("delete", connector.pk)).status_code == 404
    assert client.post(url("delete", connector.pk), {"post": "yes"}).status_code == 404
    assert client.get(url("history", connector.pk)).status_code == 404
    connector.refresh_from_db()
    assert connector.notes == ""


def test_connector_add_form_offers_only_own_tenant(world, as_acme_owner):
    response = as_acme_owner.get(url("add"))

    assert list(response.context["adminform"].form.fields["tenant"].queryset) == [world.acme.tenant]


def test_connector_for_another_tenant_is_rejected(world, as_acme_owner):
    response = as_acme_owner.post(url("add"), add_data(world.globex.tenant))

    assert response.status_code == 200
    assert "tenant" in form_errors(response)
    assert not ConnectorInstance.objects.filter(unique_name="Stripe_New").exists()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.FINANCE, Role.AGENT])
def test_non_manager_member_can_view_connectors_but_not_write(world, client, role):
    client.force_login(member(world.acme.tenant, role))
    connector = world.acme.connectors["Stripe_Dev"]

    page = client.get(url("change", connector.pk))
    assert page.status_code == 200
    assert b'name="stripe_secret_key"' not in page.content
    assert client.get(url("changelist")).status_code == 200
    assert client.get(url("add")).status_code == 403
    assert client.post(url("add"), add_data(world.acme.tenant)).status_code == 403
    assert client.post(url("change", connector.pk), change_data(connector, notes="edited")).status_code == 403
    assert client.post(url("delete", connector.pk), {"post": "yes"}).status_code == 403
    assert not ConnectorInstance.objects.filter(unique_name="Stripe_New").exists()
    assert ConnectorInstance.objects.get(pk=connector.pk).notes == ""


# --- Add: the live/test guard and uniqueness, from the service ------------------------


def test_owner_adds_connector_through_the_service(world, as_acme_owner):
    response = as_acme_owner.post(url("add"), add_data(world.acme.tenant, stripe_webhook_secret="whsec_abcdefgh1234"))

    assert response.status_code == 302, form_errors(response)
    connector = ConnectorInstance.objects.get(unique_name="Stripe_New")
    assert (connector.tenant, connector.environment, connector.mode) == (world.acme.tenant, "production", "live")
    assert connector_stripe_secret_key(connector=connector) == LIVE_KEY
    assert connector_stripe_webhook_secret(connector=connector) == "whsec_abcdefgh1234"
    event = AuditEvent.objects.get(action="connector.created", tenant=world.acme.tenant)
    assert event.actor == "user:acme-owner"
    assert LIVE_KEY not in str(event.changes)


@pytest.mark.parametrize(
    ("environment", "key"), [("production", TEST_KEY), ("staging", LIVE_KEY), ("development", LIVE_KEY)]
)
def test_connector_with_a_key_of_the_wrong_mode_is_a_form_error(world, as_acme_owner, environment, key):
    before = AuditEvent.objects.count()

    response = as_acme_owner.post(
        url("add"), add_data(world.acme.tenant, environment=environment, stripe_secret_key=key)
    )

    assert response.status_code == 200
    assert "stripe_secret_key" in form_errors(response)
    assert not ConnectorInstance.objects.filter(unique_name="Stripe_New").exists()
    assert AuditEvent.objects.count() == before
    assert key.encode() not in response.content  # the rejected secret is not echoed back


def test_duplicate_unique_name_is_a_form_error(world, as_acme_owner):
    response = as_acme_owner.post(url("add"), add_data(world.acme.tenant, unique_name="Stripe_Prod"))

    assert response.status_code == 200
    assert "unique_name" in form_errors(response)
    assert ConnectorInstance.objects.filter(tenant=world.acme.tenant, unique_name="Stripe_Prod").count() == 1


# --- Change: write-only secrets -------------------------------------------------------


def test_connector_change_form_never_contains_the_secrets(world, as_acme_owner):
    connector = world.acme.connectors["Stripe_Prod"]
    secret = connector_stripe_secret_key(connector=connector)
    webhook_secret = connector_stripe_webhook_secret(connector=connector)

    response = as_acme_owner.get(url("change", connector.pk))

    assert response.status_code == 200
    content = response.content.decode()
    for value in (
        secret,
        webhook_secret,
        connector.stripe_secret_key_ciphertext,
        connector.stripe_webhook_secret_ciphertext,
    ):
        assert value not in content
    assert f"…{secret[-4:]}" in content
    assert f"…{webhook_secret[-4:]}" in content
    assert 'name="stripe_secret_key" autocomplete="new-password"' in content or 'type="password"' in content


def test_blank_secret_on_change_keeps_the_stored_one(world, as_acme_owner):
    connector = world.acme.connectors["Stripe_Prod"]
    secret = connector_stripe_secret_key(connector=connector)
    webhook_secret = connector_stripe_webhook_secret(connector=connector)

    response = as_acme_owner.post(url("change", connector.pk), change_data(connector, notes="main line"))

    assert response.status_code == 302, form_errors(response)
    connector.refresh_from_db()
    assert connector.notes == "main line"
    assert connector_stripe_secret_key(connector=connector) == secret
    assert connector_stripe_webhook_secret(connector=connector) == webhook_secret
    assert not AuditEvent.objects.filter(action="connector.secret_replaced").exists()


def test_replacing_the_secret_records_secret_replaced(world, as_acme_owner):
    connector = world.acme.connectors["Stripe_Prod"]
    new_key = "sk_live_" + "N3w" * 8 + "WXYZ"

    response = as_acme_owner.post(url("change", connector.pk), change_data(connector, stripe_secret_key=new_key))

    assert response.status_code == 302, form_errors(response)
    connector.refresh_from_db()
    assert connector_stripe_secret_key(connector=connector) == new_key
    assert connector.stripe_secret_key_last4 == "WXYZ"
    event = AuditEvent.objects.get(action="connector.secret_replaced", tenant=world.acme.tenant)
    assert event.changes == {"secret": "stripe_secret_key", "now_ends_with": "WXYZ"}


def test_change_that_breaks_the_live_test_guard_is_a_form_error(world, as_acme_owner):
    connector = world.acme.connectors["Stripe_Prod"]

    # The stored live key cannot serve staging: refused, nothing changes.
    response = as_acme_owner.post(url("change", connector.pk), change_data(connector, environment="staging"))

    assert response.status_code == 200
    assert "stripe_secret_key" in form_errors(response)
    connector.refresh_from_db()
    assert (connector.environment, connector.mode) == ("production", "live")


def test_renaming_onto_an_existing_name_is_a_form_error(world, as_acme_owner):
    connector = world.acme.connectors["Stripe_Dev"]

    response = as_acme_owner.post(url("change", connector.pk), change_data(connector, unique_name="Stripe_Stage"))

    assert "unique_name" in form_errors(response)
    assert ConnectorInstance.objects.get(pk=connector.pk).unique_name == "Stripe_Dev"


# --- Actions --------------------------------------------------------------------------


def test_verify_action_records_the_failure_and_skips_other_tenants(world, as_acme_owner, settings):
    settings.STRIPE_API_BASE_URL = "http://127.0.0.1:9"  # closed port: a fast, local failure
    mine, theirs = world.acme.connectors["Stripe_Dev"], world.globex.connectors["Stripe_Dev"]

    response = as_acme_owner.post(url("changelist"), action("verify_selected", mine.pk, theirs.pk), follow=True)

    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.verify_status == "failed"
    assert "Stripe unreachable" in mine.last_verify_error
    assert theirs.last_verify_attempt_at is None
    assert AuditEvent.objects.filter(action="connector.verify_failed", tenant=world.acme.tenant).count() == 1
    assert not AuditEvent.objects.filter(action__startswith="connector.verif", tenant=world.globex.tenant).exists()
    assert any("Verification failed for Stripe_Dev" in str(m) for m in response.context["messages"])


def test_verify_action_skips_connectors_the_user_may_only_view(world, client, settings):
    settings.STRIPE_API_BASE_URL = "http://127.0.0.1:9"
    owner = world.acme.owner
    MembershipFactory(user=owner, tenant=world.globex.tenant, role=Role.VIEWER)
    client.force_login(owner)
    theirs = world.globex.connectors["Stripe_Dev"]

    client.post(url("changelist"), action("verify_selected", world.acme.connectors["Stripe_Dev"].pk, theirs.pk))

    theirs.refresh_from_db()
    assert theirs.last_verify_attempt_at is None
    assert ConnectorInstance.objects.get(pk=world.acme.connectors["Stripe_Dev"].pk).last_verify_attempt_at is not None


def test_viewer_cannot_run_verify(world, client, settings):
    settings.STRIPE_API_BASE_URL = "http://127.0.0.1:9"
    client.force_login(member(world.acme.tenant, Role.VIEWER))
    connector = world.acme.connectors["Stripe_Dev"]

    client.post(url("changelist"), action("verify_selected", connector.pk))

    connector.refresh_from_db()
    assert connector.last_verify_attempt_at is None


def test_delete_goes_through_the_service_and_is_audited(world, as_acme_owner):
    connector = world.acme.connectors["Stripe_Dev"]

    response = as_acme_owner.post(url("delete", connector.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not ConnectorInstance.objects.filter(pk=connector.pk).exists()
    event = AuditEvent.objects.get(action="connector.deleted", tenant=world.acme.tenant)
    assert event.changes == {"unique_name": "Stripe_Dev"}


def test_delete_action_leaves_other_tenants_connectors_alone(world, as_acme_owner):
    mine, theirs = world.acme.connectors["Stripe_Dev"], world.globex.connectors["Stripe_Dev"]

    as_acme_owner.post(url("changelist"), {**action("delete_selected", mine.pk, theirs.pk), "post": "yes"})

    assert not ConnectorInstance.objects.filter(pk=mine.pk).exists()
    assert ConnectorInstance.objects.filter(pk=theirs.pk).exists()


def test_connector_with_pay_sessions_cannot_be_deleted(world, as_acme_owner):
    connector = world.acme.connectors["Stripe_Prod"]
    PaySessionFactory(tenant=world.acme.tenant, connector=connector)

    single = as_acme_owner.post(url("delete", connector.pk), {"post": "yes"})
    bulk = as_acme_owner.post(url("changelist"), {**action("delete_selected", connector.pk), "post": "yes"})

    assert single.status_code == 200
    assert single.context["protected"]
    assert bulk.status_code == 200
    assert ConnectorInstance.objects.filter(pk=connector.pk).exists()
    assert not AuditEvent.objects.filter(action="connector.deleted").exists()


def test_delete_refused_by_the_database_is_a_message_not_an_error(world, as_acme_owner, monkeypatch):
    # The race Django's pre-check cannot see: a pay session starts between page and POST.
    connector = world.acme.connectors["Stripe_Prod"]

    def refuse(*, connector, actor):
        raise ProtectedError("referenced by pay sessions", set())

    monkeypatch.setattr("connectors.admin.connector_delete", refuse)

    response = as_acme_owner.post(url("delete", connector.pk), {"post": "yes"})

    assert response.status_code == 302
    assert response.url == url("change", connector.pk)
    assert ConnectorInstance.objects.filter(pk=connector.pk).exists()
    assert any("not deleted" in str(m) for m in get_messages(response.wsgi_request))
