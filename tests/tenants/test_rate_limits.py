"""Rate limits (tenants/auth.py): per API key (PAYDESK_API_RATE), and per client address
for requests without a valid key (PAYDESK_API_ANON_RATE); beyond them 429 rate_limited
with Retry-After. Rates are tiny here; time is moved, never waited for."""

import pytest
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from config.env import rate_setting
from tenants.models import Scope
from tenants.services import Actor, api_key_create

pytestmark = pytest.mark.django_db

URL = "/api/v1/tenant/"


@pytest.fixture
def clock(monkeypatch):
    """The throttles' clock, moved by the test: clock.now += 61."""

    class Clock:
        now = 1_800_000_000.0

    monkeypatch.setattr(SimpleRateThrottle, "timer", staticmethod(lambda: Clock.now))
    return Clock


@pytest.fixture
def tiny_rates(settings):
    settings.PAYDESK_API_RATE = "3/min"
    settings.PAYDESK_API_ANON_RATE = "2/min"


def _rate_limited(response, *, within: int = 60) -> int:
    assert response.status_code == 429, (response.status_code, response.content)
    error = response.json()["error"]
    assert error["code"] == "rate_limited" and "retry" in error["message"].lower()
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= within
    return retry_after


def test_the_defaults_are_1200_a_minute_per_key_and_60_per_address(settings):
    assert (settings.PAYDESK_API_RATE, settings.PAYDESK_API_ANON_RATE) == ("1200/min", "60/min")


def test_a_key_over_its_rate_gets_429_with_retry_after_then_is_served_again(world, api_for, tiny_rates, clock):
    api = api_for(world.acme.raw_key)
    assert [api.get(URL).status_code for _ in range(3)] == [200, 200, 200]

    retry_after = _rate_limited(api.get(URL))
    assert retry_after == 60  # the oldest of the three calls leaves the window in a minute

    clock.now += retry_after
    assert api.get(URL).status_code == 200


def test_each_key_has_its_own_budget(world, api_for, tiny_rates, clock):
    for _ in range(3):
        api_for(world.acme.raw_key).get(URL)
    _rate_limited(api_for(world.acme.raw_key).get(URL))

    assert api_for(world.globex.raw_key).get(URL).status_code == 200
    _, other_key = api_key_create(
        tenant=world.acme.tenant, name="other", scopes=list(Scope.values), actor=Actor.system("test")
    )
    assert api_for(other_key).get(URL).status_code == 200
    assert api_for(None).get(URL).status_code == 401  # the address's own budget is untouched


def test_wrong_keys_are_limited_per_address(world, api_for, tiny_rates, clock):
    wrong = api_for("pdk_nope_" + "x" * 40)
    assert [wrong.get(URL).status_code for _ in range(2)] == [401, 401]
    _rate_limited(wrong.get(URL))
    _rate_limited(api_for(None).get(URL))  # the same address, now without a key
    _rate_limited(api_for(world.acme.raw_key.replace("pdk_", "pdk_x")).get(URL))  # a mangled key too

    assert api_for(world.acme.raw_key).get(URL).status_code == 200  # a valid key is not the address's
    other_address = APIClient(REMOTE_ADDR="203.0.113.7")
    assert other_address.get(URL).status_code == 401

    clock.now += 60
    assert wrong.get(URL).status_code == 401


def test_a_revoked_key_counts_against_the_address(world, api_for, tiny_rates, clock):
    world.acme.api_key.revoked_at = world.acme.api_key.created_at
    world.acme.api_key.save()
    api = api_for(world.acme.raw_key)
    assert [api.get(URL).status_code for _ in range(2)] == [401, 401]
    _rate_limited(api.get(URL))


def test_x_forwarded_for_is_ignored_unless_proxies_are_declared(world, tiny_rates, clock, settings):
    def call(address):
        return APIClient().get(URL, HTTP_X_FORWARDED_FOR=address)

    assert [call(f"198.51.100.{i}").status_code for i in range(2)] == [401, 401]
    _rate_limited(call("198.51.100.99"))  # a new X-Forwarded-For each time does not help

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    assert call("198.51.100.99").status_code == 401  # behind one proxy, its entry is the client


def test_a_flood_of_wrong_keys_ends_in_429s_at_the_default_rate(db, api_for, settings, clock):
    wrong = api_for("pdk_nope_" + "x" * 40)
    statuses = [wrong.get(URL).status_code for _ in range(150)]
    assert statuses == [401] * 60 + [429] * 90


def test_provider_callbacks_are_not_rate_limited(world, client, tiny_rates, clock):
    """Twilio's and Stripe's calls are checked by their signatures instead."""
    stripe = world.acme.connectors["Stripe_Dev"]
    for _ in range(5):
        assert client.post("/twilio/pay/unknown-token/status/", {"AccountSid": "AC1"}).status_code == 404
        response = client.post(f"/stripe/webhooks/{stripe.uuid}/", b"{}", content_type="application/json")
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_signature"


def test_the_api_schema_and_docs_are_not_rate_limited(client, db, tiny_rates, clock):
    assert {client.get("/api/schema/").status_code for _ in range(3)} == {200}


@pytest.mark.parametrize("value", ["1200", "1200/fortnight", "0/min", "-5/min", "many/min"])
def test_a_malformed_rate_stops_start_up_naming_the_variable(monkeypatch, value):
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv("PAYDESK_API_RATE", value)
    with pytest.raises(ImproperlyConfigured, match="PAYDESK_API_RATE"):
        rate_setting("PAYDESK_API_RATE", default="1200/min")


def test_an_empty_rate_means_no_limit(monkeypatch, world, api_for, settings, clock):
    monkeypatch.setenv("PAYDESK_API_RATE", "")
    settings.PAYDESK_API_RATE = rate_setting("PAYDESK_API_RATE", default="1200/min")
    assert settings.PAYDESK_API_RATE is None
    api = api_for(world.acme.raw_key)
    assert {api.get(URL).status_code for _ in range(5)} == {200}
