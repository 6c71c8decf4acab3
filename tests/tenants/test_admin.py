"""The admin for tenants, memberships, API keys and the audit log: scoping, access by
membership role, write-only secrets, services behind every write, login auditing."""

import re

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from tenants.models import ApiKey, AuditEvent, Membership, Role, Tenant
from tenants.services import Actor, api_key_resolve, tenant_set_status, tenant_twilio_auth_token
from tests.factories import MembershipFactory, UserFactory


def url(name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args)


def member(tenant, role: str, username: str | None = None):
    user = UserFactory(**({"username": username} if username else {}))
    MembershipFactory(user=user, tenant=tenant, role=role)
    return user


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def form_errors(response) -> dict:
    return response.context["adminform"].form.errors


def action(name: str, *pks) -> dict:
    return {"action": name, "_selected_action": [str(pk) for pk in pks], "index": "0"}


@pytest.fixture
def as_acme_owner(client, world):
    client.force_login(world.acme.owner)
    return client


@pytest.fixture
def as_superuser(client, superuser):
    client.force_login(superuser)
    return client


def _other_tenant_objects(world) -> dict[str, int]:
    globex = world.globex.tenant
    return {
        "tenants_tenant": globex.pk,
        "tenants_membership": Membership.objects.get(tenant=globex).pk,
        "tenants_apikey": world.globex.api_key.pk,
        "tenants_auditevent": AuditEvent.objects.filter(tenant=globex).first().pk,
    }


# --- Scoping: lists, object URLs ------------------------------------------------------


@pytest.mark.parametrize("model", ["tenant", "membership", "apikey", "auditevent"])
def test_owner_changelists_show_only_own_tenant_rows(world, as_acme_owner, model):
    response = as_acme_owner.get(url(f"tenants_{model}_changelist"))

    assert response.status_code == 200
    rows = list(response.context["cl"].queryset)
    tenant_ids = {row.pk if model == "tenant" else row.tenant_id for row in rows}
    assert tenant_ids == {world.acme.tenant.pk}
    # Globex has rows of this kind, and nothing on the page names it (list filters included).
    model_class = response.context["cl"].model
    assert model_class.objects.exclude(pk__in=[r.pk for r in rows]).exists()
    assert b"globex" not in response.content.lower()


def test_superuser_changelist_shows_every_tenant(world, as_superuser):
    response = as_superuser.get(url("tenants_tenant_changelist"))

    assert {t.slug for t in response.context["cl"].queryset} == {"acme", "globex"}


@pytest.mark.parametrize("role", [Role.OWNER, Role.VIEWER])
@pytest.mark.parametrize("model", ["tenants_tenant", "tenants_membership", "tenants_apikey", "tenants_auditevent"])
def test_other_tenants_object_urls_answer_404(world, client, model, role):
    client.force_login(world.acme.owner if role == Role.OWNER else member(world.acme.tenant, role))
    pk = _other_tenant_objects(world)[model]

    assert client.get(url(f"{model}_change", pk)).status_code == 404
    assert client.post(url(f"{model}_change", pk), {"name": "Hijacked"}).status_code == 404
    assert client.get(url(f"{model}_delete", pk)).status_code == 404
    assert client.post(url(f"{model}_delete", pk), {"post": "yes"}).status_code == 404
    assert client.get(url(f"{model}_history", pk)).status_code == 404
    assert Tenant.objects.get(slug="globex").name == "Globex"


def test_missing_object_answers_404_not_a_redirect_even_for_superusers(world, as_superuser):
    assert as_superuser.get(url("tenants_tenant_change", 987654)).status_code == 404


def test_staff_without_membership_sees_nothing(world, client):
    client.force_login(UserFactory(username="drifter"))

    assert client.get(url("tenants_apikey_changelist")).status_code == 403
    assert b"Tenants" not in client.get(url("index")).content


# --- Access by role -------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.FINANCE, Role.AGENT])
def test_non_manager_member_can_view_but_not_write(world, client, role):
    acme = world.acme.tenant
    client.force_login(member(acme, role))
    membership = Membership.objects.get(user=world.acme.owner)

    assert client.get(url("tenants_apikey_change", world.acme.api_key.pk)).status_code == 200
    assert client.get(url("tenants_tenant_change", acme.pk)).status_code == 200
    assert client.get(url("tenants_apikey_add")).status_code == 403
    assert (
        client.post(url("tenants_apikey_add"), {"tenant": acme.pk, "name": "x", "scopes": ["tenant:read"]}).status_code
        == 403
    )
    assert client.post(url("tenants_membership_change", membership.pk), {"role": Role.VIEWER}).status_code == 403
    assert client.post(url("tenants_tenant_change", acme.pk), {"name": "Renamed"}).status_code == 403
    assert client.post(url("tenants_apikey_change", world.acme.api_key.pk), {"_revoke": "1"}).status_code == 403
    assert ApiKey.objects.filter(tenant=acme).count() == 1
    assert Membership.objects.get(pk=membership.pk).role == Role.OWNER
    assert not ApiKey.objects.get(pk=world.acme.api_key.pk).is_revoked
    assert Tenant.objects.get(pk=acme.pk).name == "Acme"


def test_view_only_tenant_page_offers_no_secret_input(world, client):
    client.force_login(member(world.acme.tenant, Role.FINANCE))

    response = client.get(url("tenants_tenant_change", world.acme.tenant.pk))

    assert b'name="twilio_auth_token"' not in response.content
    assert b'name="_save"' not in response.content


# --- Tenants --------------------------------------------------------------------------


def _tenant_post(tenant, **overrides) -> dict:
    data = {
        "name": tenant.name,
        "twilio_account_sid": tenant.twilio_account_sid,
        "time_zone": tenant.time_zone,
        "default_currency": tenant.default_currency,
        "twilio_auth_token": "",
    }
    return {**data, **overrides}


def test_tenant_change_form_never_renders_the_auth_token(world, as_acme_owner):
    tenant = world.acme.tenant

    response = as_acme_owner.get(url("tenants_tenant_change", tenant.pk))

    assert response.status_code == 200
    assert world.acme.auth_token.encode() not in response.content
    assert tenant.twilio_auth_token_ciphertext.encode() not in response.content
    assert f"…{world.acme.auth_token[-4:]}" in response.content.decode()
    assert b'type="password"' in response.content


def test_owner_edits_tenant_and_blank_auth_token_keeps_the_stored_one(world, as_acme_owner):
    tenant = world.acme.tenant

    response = as_acme_owner.post(url("tenants_tenant_change", tenant.pk), _tenant_post(tenant, name="Acme Corp"))

    assert response.status_code == 302, form_errors(response)
    tenant.refresh_from_db()
    assert tenant.name == "Acme Corp"
    assert tenant_twilio_auth_token(tenant=tenant) == world.acme.auth_token
    event = AuditEvent.objects.get(action="tenant.updated", tenant=tenant)
    assert event.changes == {"name": ["Acme", "Acme Corp"]}
    assert event.actor == "user:acme-owner"


def test_new_auth_token_replaces_the_stored_one_and_audits_only_its_last4(world, as_acme_owner):
    tenant, new_token = world.acme.tenant, "f" * 28 + "9876"

    response = as_acme_owner.post(
        url("tenants_tenant_change", tenant.pk), _tenant_post(tenant, twilio_auth_token=new_token)
    )

    assert response.status_code == 302, form_errors(response)
    tenant.refresh_from_db()
    assert tenant_twilio_auth_token(tenant=tenant) == new_token
    assert tenant.twilio_auth_token_last4 == "9876"
    event = AuditEvent.objects.get(action="tenant.updated", tenant=tenant)
    assert new_token not in str(event.changes)
    assert event.changes["twilio_auth_token"] == "replaced (now …9876)"


def test_bad_auth_token_is_a_form_error_and_changes_nothing(world, as_acme_owner):
    tenant = world.acme.tenant
    before = AuditEvent.objects.count()

    response = as_acme_owner.post(
        url("tenants_tenant_change", tenant.pk), _tenant_post(tenant, name="Acme Corp", twilio_auth_token="not-hex")
    )

    assert response.status_code == 200
    assert "twilio_auth_token" in form_errors(response)
    assert Tenant.objects.get(pk=tenant.pk).name == "Acme"
    assert AuditEvent.objects.count() == before


def test_only_superusers_add_tenants_through_the_service(world, client, superuser):
    data = {
        "name": "Initech",
        "slug": "initech",
        "twilio_account_sid": "AC" + "0" * 32,
        "twilio_auth_token": "ab" * 16,
        "time_zone": "Europe/London",
        "default_currency": "GBP",
    }
    client.force_login(world.acme.owner)
    assert client.post(url("tenants_tenant_add"), data).status_code == 403
    assert not Tenant.objects.filter(slug="initech").exists()

    client.force_login(superuser)
    response = client.post(url("tenants_tenant_add"), data)

    assert response.status_code == 302, form_errors(response)
    tenant = Tenant.objects.get(slug="initech")
    assert tenant_twilio_auth_token(tenant=tenant) == "ab" * 16
    assert AuditEvent.objects.filter(action="tenant.created", tenant=tenant, actor="user:root").exists()


def test_duplicate_tenant_slug_is_a_form_error(world, as_superuser):
    data = {
        "name": "Acme 2",
        "slug": "acme",
        "twilio_account_sid": "AC" + "0" * 32,
        "twilio_auth_token": "ab" * 16,
        "time_zone": "UTC",
        "default_currency": "USD",
    }

    response = as_superuser.post(url("tenants_tenant_add"), data)

    assert response.status_code == 200
    assert "slug" in form_errors(response)
    assert Tenant.objects.filter(slug="acme").count() == 1


def test_tenants_are_never_deleted_from_the_admin(world, as_superuser):
    assert as_superuser.get(url("tenants_tenant_delete", world.acme.tenant.pk)).status_code == 403


def test_owner_cannot_suspend_or_reactivate_own_tenant(world, as_acme_owner, superuser):
    acme = world.acme.tenant

    as_acme_owner.post(url("tenants_tenant_changelist"), action("suspend", acme.pk))
    assert Tenant.objects.get(pk=acme.pk).status == Tenant.Status.ACTIVE

    tenant_set_status(tenant=acme, status=Tenant.Status.SUSPENDED, actor=Actor.for_user(superuser))
    as_acme_owner.post(url("tenants_tenant_changelist"), action("reactivate", acme.pk))
    assert Tenant.objects.get(pk=acme.pk).status == Tenant.Status.SUSPENDED


def test_superuser_suspends_and_reactivates_through_the_service(world, as_superuser):
    acme, globex = world.acme.tenant, world.globex.tenant

    as_superuser.post(url("tenants_tenant_changelist"), action("suspend", acme.pk))

    assert Tenant.objects.get(pk=acme.pk).status == Tenant.Status.SUSPENDED
    assert Tenant.objects.get(pk=globex.pk).status == Tenant.Status.ACTIVE
    assert AuditEvent.objects.filter(action="tenant.suspended", tenant=acme, actor="user:root").count() == 1

    as_superuser.post(url("tenants_tenant_changelist"), action("reactivate", acme.pk))

    assert Tenant.objects.get(pk=acme.pk).status == Tenant.Status.ACTIVE
    assert AuditEvent.objects.filter(action="tenant.reactivated", tenant=acme).count() == 1


def test_tenant_autocomplete_offers_only_tenants_the_user_manages(world, client):
    owner = world.acme.owner
    MembershipFactory(user=owner, tenant=world.globex.tenant, role=Role.VIEWER)
    MembershipFactory(user=owner, tenant=Tenant.objects.create(slug="initech", name="Initech"), role=Role.ADMIN)
    client.force_login(owner)

    response = client.get(
        url("autocomplete"), {"app_label": "tenants", "model_name": "apikey", "field_name": "tenant", "term": ""}
    )

    assert response.status_code == 200
    assert sorted(r["text"] for r in response.json()["results"]) == ["Acme", "Initech"]


# --- Memberships ----------------------------------------------------------------------


def test_owner_adds_member_by_username_through_the_service(world, as_acme_owner):
    newcomer = UserFactory(username="newcomer")

    response = as_acme_owner.post(
        url("tenants_membership_add"), {"tenant": world.acme.tenant.pk, "username": "newcomer", "role": Role.FINANCE}
    )

    assert response.status_code == 302, form_errors(response)
    assert Membership.objects.get(user=newcomer).role == Role.FINANCE
    event = AuditEvent.objects.get(action="membership.created", tenant=world.acme.tenant)
    assert event.changes == {"user": "newcomer", "role": "finance"}


def test_membership_for_another_tenant_is_rejected(world, as_acme_owner):
    newcomer = UserFactory(username="newcomer")

    response = as_acme_owner.post(
        url("tenants_membership_add"), {"tenant": world.globex.tenant.pk, "username": "newcomer", "role": Role.OWNER}
    )

    assert response.status_code == 200
    assert "tenant" in form_errors(response)
    assert not Membership.objects.filter(user=newcomer).exists()


def test_membership_add_rejects_unknown_user_and_existing_member(world, as_acme_owner):
    acme = world.acme.tenant

    unknown = as_acme_owner.post(
        url("tenants_membership_add"), {"tenant": acme.pk, "username": "nobody", "role": "viewer"}
    )
    existing = as_acme_owner.post(
        url("tenants_membership_add"), {"tenant": acme.pk, "username": "acme-owner", "role": "viewer"}
    )

    assert "username" in form_errors(unknown)
    assert "username" in form_errors(existing)
    assert Membership.objects.get(user=world.acme.owner, tenant=acme).role == Role.OWNER


def test_owner_changes_a_role_and_removes_a_member_with_audit(world, as_acme_owner):
    acme = world.acme.tenant
    clerk = member(acme, Role.VIEWER, username="clerk")
    membership = Membership.objects.get(user=clerk)

    response = as_acme_owner.post(url("tenants_membership_change", membership.pk), {"role": Role.AGENT})
    assert response.status_code == 302, form_errors(response)
    assert Membership.objects.get(pk=membership.pk).role == Role.AGENT
    assert AuditEvent.objects.filter(action="membership.updated", tenant=acme).exists()

    response = as_acme_owner.post(url("tenants_membership_delete", membership.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert AuditEvent.objects.get(action="membership.deleted", tenant=acme).changes == {
        "user": "clerk",
        "role": "agent",
    }


def test_membership_delete_action_leaves_other_tenants_alone(world, as_acme_owner):
    clerk = Membership.objects.get(user=member(world.acme.tenant, Role.VIEWER))
    globex_owner = Membership.objects.get(user=world.globex.owner)

    as_acme_owner.post(
        url("tenants_membership_changelist"), {**action("delete_selected", clerk.pk, globex_owner.pk), "post": "yes"}
    )

    assert not Membership.objects.filter(pk=clerk.pk).exists()
    assert Membership.objects.filter(pk=globex_owner.pk).exists()


# --- API keys -------------------------------------------------------------------------


def test_api_key_add_form_offers_only_own_tenant(world, as_acme_owner):
    response = as_acme_owner.get(url("tenants_apikey_add"))

    form = response.context["adminform"].form
    assert list(form.fields["tenant"].queryset) == [world.acme.tenant]
    assert form.initial["tenant"] == world.acme.tenant.pk


def test_api_key_for_another_tenant_is_rejected(world, as_acme_owner):
    response = as_acme_owner.post(
        url("tenants_apikey_add"), {"tenant": world.globex.tenant.pk, "name": "forged", "scopes": ["payments:write"]}
    )

    assert response.status_code == 200
    assert "tenant" in form_errors(response)
    assert not ApiKey.objects.filter(name="forged").exists()


def test_creating_an_api_key_shows_the_raw_key_once_and_stores_only_its_hash(world, as_acme_owner):
    response = as_acme_owner.post(
        url("tenants_apikey_add"),
        {"tenant": world.acme.tenant.pk, "name": "crm", "scopes": ["tenant:read", "payments:read"]},
        follow=True,
    )

    assert response.status_code == 200
    shown = re.findall(r"pdk_[0-9a-f]+_[A-Za-z0-9_-]+", " ".join(str(m) for m in response.context["messages"]))
    assert len(shown) == 1
    raw_key = shown[0]
    key = ApiKey.objects.get(name="crm")
    assert key.tenant == world.acme.tenant
    assert key.scopes == ["tenant:read", "payments:read"]
    assert api_key_resolve(raw_key=raw_key) == key
    assert raw_key not in str(list(ApiKey.objects.filter(pk=key.pk).values()))
    assert AuditEvent.objects.filter(action="api_key.created", target_repr=str(key), actor="user:acme-owner").exists()
    # Never again: not on the next page, not on the key's own page.
    assert raw_key.encode() not in as_acme_owner.get(url("tenants_apikey_changelist")).content
    assert raw_key.encode() not in as_acme_owner.get(url("tenants_apikey_change", key.pk)).content


def test_api_key_change_page_is_read_only_with_a_revoke_button(world, as_acme_owner):
    key = world.acme.api_key

    page = as_acme_owner.get(url("tenants_apikey_change", key.pk))
    as_acme_owner.post(url("tenants_apikey_change", key.pk), {"name": "renamed", "scopes": ["tenant:read"]})

    assert b'name="_save"' not in page.content
    assert b'name="_revoke"' in page.content
    assert f"pdk_{key.prefix}_…" in page.content.decode()
    assert key.secret_hash.encode() not in page.content
    key.refresh_from_db()
    assert (key.name, key.is_revoked) == ("partner", False)

    response = as_acme_owner.post(url("tenants_apikey_change", key.pk), {"_revoke": "Revoke this key"})

    assert response.status_code == 302
    key.refresh_from_db()
    assert key.is_revoked
    assert AuditEvent.objects.filter(action="api_key.revoked", tenant=world.acme.tenant).count() == 1


def test_revoke_action_only_touches_keys_the_user_manages(world, client):
    owner = world.acme.owner
    MembershipFactory(user=owner, tenant=world.globex.tenant, role=Role.VIEWER)  # sees globex, may not change it
    client.force_login(owner)

    client.post(
        url("tenants_apikey_changelist"), action("revoke_selected", world.acme.api_key.pk, world.globex.api_key.pk)
    )

    assert ApiKey.objects.get(pk=world.acme.api_key.pk).is_revoked
    assert not ApiKey.objects.get(pk=world.globex.api_key.pk).is_revoked


def test_revoke_action_ignores_a_forged_id_of_an_invisible_key(world, as_acme_owner):
    as_acme_owner.post(url("tenants_apikey_changelist"), action("revoke_selected", world.globex.api_key.pk))

    assert not ApiKey.objects.get(pk=world.globex.api_key.pk).is_revoked


def test_api_key_changelist_filters_by_revoked(world, as_superuser):
    tenant_ids = {world.acme.tenant.pk}
    as_superuser.post(url("tenants_apikey_changelist"), action("revoke_selected", world.acme.api_key.pk))

    revoked = as_superuser.get(url("tenants_apikey_changelist"), {"revoked": "yes"}).context["cl"].queryset
    active = as_superuser.get(url("tenants_apikey_changelist"), {"revoked": "no"}).context["cl"].queryset

    assert {k.tenant_id for k in revoked} == tenant_ids
    assert {k.tenant_id for k in active} == {world.globex.tenant.pk}


# --- Audit log ------------------------------------------------------------------------


def test_audit_admin_refuses_add_change_and_delete_even_for_superusers(world, as_superuser):
    event = AuditEvent.objects.filter(tenant=world.acme.tenant).first()

    assert as_superuser.get(url("tenants_auditevent_add")).status_code == 403
    assert as_superuser.post(url("tenants_auditevent_change", event.pk), {"action": "x"}).status_code == 403
    assert as_superuser.get(url("tenants_auditevent_delete", event.pk)).status_code == 403
    page = as_superuser.get(url("tenants_auditevent_changelist"))
    assert b'name="action"' not in page.content  # no actions, so no bulk delete
    assert AuditEvent.objects.get(pk=event.pk).action == event.action


def test_audit_detail_pretty_prints_the_changes(world, as_acme_owner):
    event = AuditEvent.objects.get(action="api_key.created", tenant=world.acme.tenant)

    response = as_acme_owner.get(url("tenants_auditevent_change", event.pk))

    assert response.status_code == 200
    assert "<pre>{\n  &quot;name&quot;: &quot;partner&quot;," in response.content.decode()


# --- Login auditing -------------------------------------------------------------------


def test_admin_login_is_audited_with_ip_in_the_tenant_of_the_users_membership(world, client):
    response = client.post(url("login"), {"username": "acme-owner", "password": "pw"})

    assert response.status_code == 302
    event = AuditEvent.objects.get(action="admin.login")
    assert (event.actor, event.actor_user, event.tenant, event.ip_address) == (
        "user:acme-owner",
        world.acme.owner,
        world.acme.tenant,
        "127.0.0.1",
    )


def test_a_login_of_a_member_of_two_tenants_shows_in_both_audit_logs(world, client):
    MembershipFactory(user=world.acme.owner, tenant=world.globex.tenant, role=Role.VIEWER)
    client.post(url("login"), {"username": "acme-owner", "password": "pw"})

    tenants = set(AuditEvent.objects.filter(action="admin.login").values_list("tenant__slug", flat=True))
    assert tenants == {"acme", "globex"}


def test_a_superusers_login_without_membership_has_no_tenant(superuser, client):
    superuser.set_password("pw")
    superuser.save()
    client.post(url("login"), {"username": "root", "password": "pw"})
    assert AuditEvent.objects.get(action="admin.login").tenant is None


def test_failed_login_is_audited_with_the_username_and_never_the_password(world, client):
    response = client.post(url("login"), {"username": "acme-owner", "password": "Wrong-Guess-42"})

    assert response.status_code == 200
    event = AuditEvent.objects.get(action="admin.login_failed")
    assert event.changes == {"username": "acme-owner"}
    assert (event.tenant, event.actor_user, event.ip_address) == (world.acme.tenant, None, "127.0.0.1")
    assert "Wrong-Guess-42" not in str(list(AuditEvent.objects.values()))


def test_the_tenant_owner_sees_failed_logins_on_their_users_and_not_on_others(world, client):
    client.post(url("login"), {"username": "acme-owner", "password": "Wrong-Guess-42"})
    client.post(url("login"), {"username": "globex-owner", "password": "Wrong-Guess-42"})
    client.post(url("login"), {"username": "nobody-at-all", "password": "Wrong-Guess-42"})
    assert AuditEvent.objects.get(changes__username="nobody-at-all").tenant is None

    client.force_login(world.acme.owner)
    page = client.get(reverse("admin:tenants_auditevent_changelist") + "?action=admin.login_failed")
    assert page.status_code == 200
    shown = {event.changes["username"] for event in page.context["cl"].result_list}
    assert shown == {"acme-owner"}
