import json
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from connectors.models import ConnectorInstance
from connectors.services import connector_stripe_secret_key
from tenants.models import ApiKey, AuditEvent, Membership, Tenant
from tenants.services import api_key_resolve, tenant_twilio_auth_token

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "fedcba98" * 4


def run(*args) -> dict:
    out = StringIO()
    call_command(*args, "--json", stdout=out)
    return json.loads(out.getvalue())


def _state():
    return (
        list(Tenant.objects.order_by("pk").values()),
        list(ConnectorInstance.objects.order_by("pk").values()),
        list(ApiKey.objects.order_by("pk").values()),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def acme(db):
    run("create_tenant", "--slug", "acme", "--name", "Acme", "--twilio-account-sid", SID, "--twilio-auth-token", TOKEN)
    return Tenant.objects.get(slug="acme")


def test_create_tenant_prints_one_json_object_and_encrypts_the_token(db):
    result = run(
        "create_tenant",
        "--slug",
        "acme",
        "--name",
        "Acme Corp",
        "--twilio-account-sid",
        SID,
        "--twilio-auth-token",
        TOKEN,
        "--time-zone",
        "Europe/London",
        "--default-currency",
        "GBP",
    )
    tenant = Tenant.objects.get(slug="acme")
    assert result == {"id": str(tenant.uuid), "slug": "acme", "name": "Acme Corp", "status": "active"}
    assert tenant.time_zone == "Europe/London" and tenant.default_currency == "GBP"
    assert tenant_twilio_auth_token(tenant=tenant) == TOKEN
    assert TOKEN not in json.dumps(result)


@pytest.mark.parametrize(
    "override,needle",
    [
        ({"--twilio-account-sid": "AC123"}, "twilio_account_sid"),
        ({"--twilio-account-sid": "CA" + "0" * 32}, "twilio_account_sid"),
        ({"--twilio-auth-token": "short"}, "twilio_auth_token"),
        ({"--slug": "has space"}, "slug"),
        ({"--time-zone": "Mars/Olympus"}, "time_zone"),
        ({"--default-currency": "usd"}, "default_currency"),
        ({"--slug": "acme"}, "slug"),  # duplicate
    ],
)
def test_create_tenant_rejects_bad_input_and_changes_nothing(acme, override, needle):
    args = {"--slug": "new", "--name": "New", "--twilio-account-sid": SID, "--twilio-auth-token": TOKEN, **override}
    before = _state()
    with pytest.raises(CommandError, match=needle):
        call_command("create_tenant", *[x for pair in args.items() for x in pair])
    assert _state() == before


def test_add_connector_guards_live_and_test(acme):
    result = run(
        "add_connector",
        "--tenant",
        "acme",
        "--unique-name",
        "Stripe_Prod",
        "--environment",
        "production",
        "--stripe-secret-key",
        "sk_live_" + "1" * 24,
        "--webhook-secret",
        "whsec_" + "2" * 24,
    )
    assert result["mode"] == "live" and result["stripe_secret_key_last4"] == "1111"
    connector = ConnectorInstance.objects.get(uuid=result["id"])
    assert connector_stripe_secret_key(connector=connector) == "sk_live_" + "1" * 24


@pytest.mark.parametrize(
    "override,needle",
    [
        ({"--environment": "production", "--stripe-secret-key": "sk_test_" + "3" * 24}, "live-mode key"),
        ({"--environment": "staging", "--stripe-secret-key": "sk_live_" + "3" * 24}, "test-mode key"),
        ({"--environment": "prod"}, "invalid choice"),
        ({"--stripe-secret-key": "pk_test_" + "3" * 24}, "stripe_secret_key"),
        ({"--unique-name": "Stripe Dev"}, "unique_name"),
        ({"--unique-name": "Existing"}, "already has a connector"),
        ({"--webhook-secret": "secret"}, "whsec_"),
        ({"--tenant": "nobody"}, "No tenant"),
    ],
)
def test_add_connector_rejects_bad_input_and_changes_nothing(acme, override, needle):
    run(
        "add_connector",
        "--tenant",
        "acme",
        "--unique-name",
        "Existing",
        "--environment",
        "development",
        "--stripe-secret-key",
        "sk_test_" + "4" * 24,
    )
    args = {
        "--tenant": "acme",
        "--unique-name": "Stripe_Dev",
        "--environment": "development",
        "--stripe-secret-key": "sk_test_" + "5" * 24,
        **override,
    }
    before = _state()
    with pytest.raises(CommandError, match=needle):
        call_command("add_connector", *[x for pair in args.items() for x in pair])
    assert _state() == before


def test_create_api_key_prints_the_key_once_and_it_works(acme):
    result = run(
        "create_api_key", "--tenant", "acme", "--name", "CRM", "--scope", "payments:read", "--scope", "payments:write"
    )
    assert result["scopes"] == ["payments:read", "payments:write"]
    key = api_key_resolve(raw_key=result["key"])
    assert key is not None and key.tenant == acme
    assert result["key"] not in json.dumps(list(ApiKey.objects.values()), default=str)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--tenant", "acme", "--name", "x", "--scope", "everything"], "Unknown scope"),
        (["--tenant", "nobody", "--name", "x"], "No tenant"),
        (["--tenant", "acme", "--name", "  "], "name"),
    ],
)
def test_create_api_key_rejects_bad_input(acme, args, needle):
    before = _state()
    with pytest.raises(CommandError, match=needle):
        call_command("create_api_key", *args)
    assert _state() == before


def test_seed_demo_is_idempotent_and_prints_how_to_log_in(db, settings):
    settings.DEBUG = True
    first = run("seed_demo")
    state = _state()
    second = run("seed_demo")
    assert first == second
    assert _state() == state
    tenant = Tenant.objects.get(slug="acme")
    assert set(tenant.connectors.values_list("unique_name", "mode")) == {
        ("Stripe_Prod", "live"),
        ("Stripe_Stage", "test"),
        ("Stripe_Dev", "test"),
    }
    assert Membership.objects.get(tenant=tenant, user__username=first["username"]).role == "owner"
    assert api_key_resolve(raw_key=first["api_key"]).tenant == tenant
    assert first["admin_url"].endswith("/admin/")
    assert first["console_url"].endswith("/console/")
    assert Membership.objects.get(tenant=tenant, user__username=first["agent_username"]).role == "agent"


def test_seed_demo_refuses_without_debug(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo")
    assert not Tenant.objects.exists()


def test_a_bad_argument_is_one_line_on_stderr_and_a_non_zero_exit():
    proc = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "add_connector",
            "--tenant",
            "acme",
            "--unique-name",
            "X",
            "--environment",
            "prod",
            "--stripe-secret-key",
            "sk_test_x",
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": "postgres://postgres@127.0.0.1:9/unused"},
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "invalid choice: 'prod'" in lines[0]
