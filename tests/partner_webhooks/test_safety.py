"""Where endpoints may point (SSRF), checked when saved and again at each delivery."""

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from payments.outbox.services import NewEvent, events_record
from payments.partner_webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.partner_webhooks.conftest import endpoint_for, pump

pytestmark = pytest.mark.django_db


@pytest.fixture
def strict(settings):
    """Production's rules: public https addresses only."""
    settings.PAYDESK_WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False
    settings.PAYDESK_WEBHOOKS_ALLOW_INSECURE_URLS = False
    return settings


@pytest.mark.parametrize(
    "url,why",
    [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://127.9.9.9/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://localhost:8443/hook", "loopback"),  # a name that resolves to loopback
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),  # IPv4-mapped
        ("https://10.1.2.3/hook", "private"),
        ("https://172.16.0.1/hook", "private"),
        ("https://192.168.1.10/hook", "private"),
        ("https://[fd12:3456::1]/hook", "private"),
        ("https://169.254.10.20/hook", "link-local"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://[fd00:ec2::254]/hook", "metadata"),
        ("https://168.63.129.16/hook", "metadata"),  # Azure's: a public address, named
        ("https://100.100.100.200/hook", "metadata"),
        ("https://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("https://100.64.0.1/hook", "not a public address"),  # carrier-grade NAT
        ("https://0.0.0.0/hook", "not a public address"),
    ],
)
def test_an_endpoint_on_a_non_public_address_is_refused(world, strict, api_for, url, why):
    response = api_for(world.acme.raw_key).post("/api/v1/webhook-endpoints/", {"url": url}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and why in error["fields"]["url"][0]
    assert not WebhookEndpoint.objects.exists()


def test_a_public_address_is_accepted(world, strict):
    endpoint, _ = endpoint_for(world.acme.tenant, "https://93.184.215.14/hooks")  # a literal: no DNS needed
    assert endpoint.pk


@pytest.mark.parametrize(
    "url,message",
    [
        ("http://93.184.215.14/hook", "https"),
        ("ftp://93.184.215.14/hook", "https"),
        ("https://user:pw@93.184.215.14/hook", "credentials"),
        ("https://no-such-host.invalid/hook", "cannot be resolved"),
        ("not a url", "valid URL"),
    ],
)
def test_a_url_paydesk_cannot_use_is_refused_with_the_reason(world, strict, url, message):
    with pytest.raises(ValidationError) as refused:
        endpoint_for(world.acme.tenant, url)
    assert message in str(refused.value.message_dict["url"])


def test_the_address_is_checked_again_at_delivery(world, receiver, settings):
    endpoint_for(world.acme.tenant, receiver.url)  # saved while loopback was allowed
    settings.PAYDESK_WEBHOOKS_ALLOW_PRIVATE_NETWORKS = False  # e.g. the name now resolves to 127.0.0.1
    with transaction.atomic():
        events_record([NewEvent(tenant_id=world.acme.tenant.pk, type="pay_session.updated", data={"n": 1})])
    pump()
    row = WebhookDelivery.objects.get()
    assert row.status == WebhookDelivery.Status.PENDING
    assert row.last_error.startswith("refused:") and "loopback" in row.last_error
    assert receiver.received == []  # nothing was sent
