import pytest
from django.db import DatabaseError, transaction

from connectors.services import connector_update, connector_verify
from tenants.models import AuditEvent, Tenant
from tenants.services import Actor, api_key_create, api_key_revoke, tenant_set_status


def test_each_security_action_is_recorded_with_actor_and_tenant(world, settings):
    settings.STRIPE_API_BASE_URL = "http://127.0.0.1:9"
    actor = Actor.for_user(world.acme.owner, ip_address="203.0.113.7")
    tenant = world.acme.tenant
    dev = world.acme.connectors["Stripe_Dev"]

    key, raw = api_key_create(tenant=tenant, name="crm", actor=actor)
    api_key_revoke(api_key=key, actor=actor)
    connector_update(connector=dev, actor=actor, notes="changed")
    connector_update(connector=dev, actor=actor, stripe_secret_key="sk_test_" + "z" * 24)
    connector_verify(connector=dev, actor=actor)
    tenant_set_status(tenant=tenant, status=Tenant.Status.SUSPENDED, actor=Actor.system("ops"))

    events = AuditEvent.objects.filter(tenant=tenant)
    actions = set(events.values_list("action", flat=True))
    assert {
        "api_key.created",
        "api_key.revoked",
        "connector.updated",
        "connector.secret_replaced",
        "connector.verify_failed",
        "tenant.suspended",
    } <= actions
    revoked = events.get(action="api_key.revoked")
    assert revoked.actor_user_id == world.acme.owner.pk
    assert revoked.actor == "user:acme-owner"
    assert revoked.ip_address == "203.0.113.7"
    assert revoked.target_id == str(key.uuid)
    for event in events:
        assert raw not in str(event.changes)
        assert "z" * 24 not in str(event.changes)


def test_repeating_a_suspension_records_it_once(world):
    for _ in range(2):
        tenant_set_status(tenant=world.acme.tenant, status="suspended", actor=Actor.system("ops"))
    assert AuditEvent.objects.filter(action="tenant.suspended").count() == 1


def test_revoking_twice_records_it_once(world):
    for _ in range(2):
        api_key_revoke(api_key=world.acme.api_key, actor=Actor.system("ops"))
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 1


@pytest.mark.parametrize("operation", ["update", "delete"])
def test_the_database_refuses_to_change_the_audit_log(world, operation):
    event = AuditEvent.objects.filter(tenant=world.acme.tenant).first()
    rows = AuditEvent.objects.filter(pk=event.pk)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        rows.update(action="tampered") if operation == "update" else rows.delete()
    assert AuditEvent.objects.get(pk=event.pk).action == event.action


def test_deleting_a_user_keeps_their_audit_trail(world):
    user = world.acme.owner
    user_pk = user.pk
    api_key_create(tenant=world.acme.tenant, name="x", actor=Actor.for_user(user))
    user.memberships.all().delete()
    user.delete()
    event = AuditEvent.objects.get(action="api_key.created", actor="user:acme-owner")
    assert event.actor_user_id == user_pk
