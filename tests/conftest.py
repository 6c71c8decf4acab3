"""Shared fixtures: a two-tenant world, API clients, and the test peers (tests/peers.py)."""

import hashlib
from dataclasses import dataclass, field

import pytest
from rest_framework.test import APIClient

from tenants.models import ApiKey, Scope, Tenant
from tenants.services import Actor, api_key_create
from tests.factories import ConnectorFactory, MembershipFactory, TenantFactory, UserFactory

pytest_plugins = ["tests.peers", "tests.console.fixtures"]


@dataclass
class TenantWorld:
    tenant: Tenant
    owner: object
    connectors: dict = field(default_factory=dict)
    api_key: ApiKey | None = None
    raw_key: str = ""
    auth_token: str = ""


@dataclass
class World:
    acme: TenantWorld
    globex: TenantWorld


def _tenant_world(slug: str) -> TenantWorld:
    auth_token = hashlib.md5(slug.encode()).hexdigest()  # noqa: S324 - a distinct token per tenant
    tenant = TenantFactory(slug=slug, name=slug.capitalize(), auth_token=auth_token)
    owner = UserFactory(username=f"{slug}-owner")
    MembershipFactory(user=owner, tenant=tenant)
    connectors = {
        name: ConnectorFactory(tenant=tenant, unique_name=name, environment=env)
        for name, env in [("Stripe_Prod", "production"), ("Stripe_Stage", "staging"), ("Stripe_Dev", "development")]
    }
    key, raw = api_key_create(tenant=tenant, name="partner", scopes=list(Scope.values), actor=Actor.system("test"))
    return TenantWorld(tenant, owner, connectors, key, raw, auth_token)


@pytest.fixture(autouse=True)
def _no_apply_run_queued():
    """Every test starts with no pay-event apply run queued (the flag lives in Redis, which
    outlives a test's database transaction)."""
    from django.core.cache import cache

    from payments.sessions.services import APPLY_FLAG

    cache.delete(APPLY_FLAG)


@pytest.fixture(autouse=True)
def _no_rate_limit_history():
    """Every test starts with empty rate-limit counters (tenants/auth.py): they live in
    Redis, which outlives a test, and every test client calls from 127.0.0.1. Only this
    worker's keys (its KEY_PREFIX) are deleted."""
    from django.core.cache import cache

    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(match=cache.make_key("throttle_*"), count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def world(db) -> World:
    """Two tenants, each with an owner, three connectors and an all-scopes API key."""
    return World(acme=_tenant_world("acme"), globex=_tenant_world("globex"))


@pytest.fixture
def api_for():
    """api_for(raw_key) → an APIClient sending that key as a Bearer token."""

    def make(raw_key: str | None) -> APIClient:
        client = APIClient()
        if raw_key:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        return client

    return make


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True)


@pytest.fixture(autouse=True)
def _no_webhook_dispatch_queued():
    """Nor a webhook dispatcher run (its wake-up flag lives in Redis too)."""
    from django.core.cache import cache

    from payments.partner_webhooks.delivery import DISPATCH_FLAG

    cache.delete(DISPATCH_FLAG)
