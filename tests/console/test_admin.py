"""Console settings in the admin: owners and admins of a tenant set which origins may
frame the embedded console and which options agents get, through the service, audited."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from payments.console.models import ConsoleSettings, validate_frame_origins
from tenants.models import AuditEvent

pytestmark = pytest.mark.django_db


def url(name: str, *args) -> str:
    return reverse(f"admin:console_consolesettings_{name}", args=args)


def data(tenant, **overrides) -> dict:
    return {
        "tenant": tenant.pk,
        "frame_origins": "https://crm.example.com\nhttp://localhost:8080",
        "allow_tokenize": "on",
        **overrides,
    }


def test_an_owner_sets_the_framing_origins_and_it_is_audited(client, world):
    client.force_login(world.acme.owner)
    response = client.post(url("add"), data(world.acme.tenant))
    assert response.status_code == 302, response.context["adminform"].form.errors
    row = ConsoleSettings.objects.get(tenant=world.acme.tenant)
    assert row.frame_origin_list == ["https://crm.example.com", "http://localhost:8080"]
    assert row.allow_tokenize and not row.allow_ach
    audit = AuditEvent.objects.get(action="console.settings_updated")
    assert audit.actor == f"user:{world.acme.owner.username}" and "frame_origins" in audit.changes


def test_a_bad_origin_is_refused_on_the_form(client, world):
    client.force_login(world.acme.owner)
    response = client.post(url("add"), data(world.acme.tenant, frame_origins="https://crm.example.com/path"))
    assert response.status_code == 200
    assert "Not an origin" in str(response.context["adminform"].form.errors["frame_origins"])
    assert not ConsoleSettings.objects.exists()


@pytest.mark.parametrize(
    "origin,ok",
    [
        ("https://crm.example.com", True),
        ("http://127.0.0.1:8765", True),
        ("https://crm.example.com/", True),
        ("https://crm.example.com/app", False),
        ("crm.example.com", False),
        ("https://*.example.com", True),
        ("https://*", False),
        ("https://a.*.example.com", False),
        ("javascript:alert(1)", False),
        ("https://a.example.com; script-src *", False),
        ("https://user@crm.example.com", False),
        ("https://crm.example.com:99999", False),
    ],
)
def test_origins_are_exactly_scheme_host_and_port(origin, ok):
    if ok:
        validate_frame_origins(origin)
    else:
        with pytest.raises(ValidationError):
            validate_frame_origins(origin)


def test_another_tenants_settings_do_not_exist_for_an_owner(client, world):
    theirs = ConsoleSettings.objects.create(tenant=world.globex.tenant, frame_origins="https://globex.example")
    client.force_login(world.acme.owner)
    assert client.get(url("change", theirs.pk)).status_code == 404
    assert "globex.example" not in client.get(url("changelist")).content.decode()
