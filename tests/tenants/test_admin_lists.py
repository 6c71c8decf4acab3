"""Admin lists at any size (tenants/admin_lists.py): no list of a growing table counts or
reads the whole table to draw a page, its count stops at a cap and says so, its pages stop
there too, and the indexes its pages and filters need exist."""

import re

import pytest
from django.contrib import admin
from django.contrib.admin.filters import AllValuesFieldListFilter, RelatedOnlyFieldListFilter
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from payments.reconciliation.models import ReconciliationItem, StripeCharge
from payments.sessions.models import PaySession
from tenants.admin_lists import AtLeast, CappedPaginator, ScalableListMixin, TenantListFilter
from tenants.models import AuditEvent
from tests.factories import PaySessionFactory
from tests.reports.conftest import item, session, stripe_payment

pytestmark = pytest.mark.django_db


def _name(model) -> str:
    return f"{model._meta.app_label}_{model._meta.model_name}"


SCALABLE = sorted(_name(m) for m, a in admin.site._registry.items() if isinstance(a, ScalableListMixin))


def changelist(name: str) -> str:
    return reverse(f"admin:{name}_changelist")


@pytest.fixture
def rows(world):
    """A few rows in the growing tables of both tenants (the audit log has its own)."""
    for tw in (world.acme, world.globex):
        for i in range(3):
            s = session(tw, when=timezone.now())
            stripe_payment(s, fee=30 + i)
            item(tw, s)
    return world


def test_every_growing_table_has_a_scalable_admin():
    assert {
        "payments_paysession",
        "reconciliation_reconciliationitem",
        "reconciliation_sessionreconciliation",
        "reconciliation_stripecharge",
        "reconciliation_striperefund",
        "reconciliation_stripedispute",
        "reconciliation_stripebalancetransaction",
        "reconciliation_stripepayout",
        "reconciliation_stripewebhookevent",
        "tenants_auditevent",
        "reports_exportjob",
        "reports_reportdelivery",
        "ivr_paymentreference",
    } <= set(SCALABLE)


@pytest.mark.parametrize("name", SCALABLE)
def test_no_filter_of_a_growing_list_reads_its_choices_from_the_table(name):
    model_admin = next(a for m, a in admin.site._registry.items() if _name(m) == name)
    for entry in model_admin.list_filter:
        kind = entry[1] if isinstance(entry, tuple) else entry
        assert kind not in (AllValuesFieldListFilter, RelatedOnlyFieldListFilter), (name, entry)
    assert model_admin.date_hierarchy is None
    assert model_admin.show_full_result_count is False


def _counts_or_distincts(queries) -> list[str]:
    """Queries that count rows without a LIMIT inside, or ask for DISTINCT values."""
    return [
        q["sql"]
        for q in queries
        if (re.search(r"\bCOUNT\(", q["sql"]) and "LIMIT" not in q["sql"]) or "SELECT DISTINCT" in q["sql"]
    ]


@pytest.mark.parametrize("who", ["owner", "superuser"])
@pytest.mark.parametrize("name", SCALABLE)
def test_no_admin_list_query_counts_the_whole_table(client, rows, superuser, name, who):
    client.force_login(superuser if who == "superuser" else rows.acme.owner)

    with CaptureQueriesContext(connection) as queries:
        response = client.get(changelist(name))

    assert response.status_code == 200
    assert _counts_or_distincts(queries.captured_queries) == []
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"]]
    assert counts, "the list's count should be there, capped"
    assert all(f"LIMIT {CappedPaginator.cap + 1}" in sql for sql in counts)


def test_filtered_and_searched_pay_session_lists_count_no_more_than_the_cap(client, rows):
    client.force_login(rows.acme.owner)
    for params in ({"status__exact": "succeeded"}, {"q": "4242"}, {"result": "success", "channel__exact": "agent"}):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(changelist("payments_paysession"), params)
        assert response.status_code == 200
        assert _counts_or_distincts(queries.captured_queries) == [], params


@pytest.fixture
def small_cap(monkeypatch):
    """A cap of 3 rows and pages of 2, so that a handful of rows goes past it."""
    monkeypatch.setattr(CappedPaginator, "cap", 3)
    monkeypatch.setattr(admin.site._registry[PaySession], "list_per_page", 2)


def test_a_list_longer_than_the_cap_says_so_and_pages_stop_at_the_cap(client, world, small_cap):
    for _ in range(6):
        PaySessionFactory(tenant=world.acme.tenant, connector=world.acme.connectors["Stripe_Dev"])
    client.force_login(world.acme.owner)
    url = changelist("payments_paysession")

    first, last = client.get(url, {"p": 1}), client.get(url, {"p": 2})

    cl = first.context["cl"]
    assert isinstance(cl.result_count, AtLeast) and cl.result_count == 3
    assert "3+ pay sessions" in first.content.decode()
    assert (len(cl.result_list), len(last.context["cl"].result_list)) == (2, 1)  # the cap's rows, no more
    beyond = client.get(url, {"p": 3})
    assert beyond.status_code == 302 and "e=1" in beyond["Location"]


def test_a_list_within_the_cap_shows_its_exact_count(client, world, small_cap):
    for _ in range(2):
        PaySessionFactory(tenant=world.acme.tenant, connector=world.acme.connectors["Stripe_Dev"])
    client.force_login(world.acme.owner)

    response = client.get(changelist("payments_paysession"))

    cl = response.context["cl"]
    assert cl.result_count == 2 and not isinstance(cl.result_count, AtLeast)
    assert "2 pay sessions" in response.content.decode()


def test_the_tenant_filter_offers_the_users_tenants_without_reading_the_list(client, rows):
    client.force_login(rows.acme.owner)

    response = client.get(changelist("reconciliation_reconciliationitem"))

    spec = next(f for f in response.context["cl"].filter_specs if isinstance(f, TenantListFilter))
    assert spec.lookup_choices == [(str(rows.acme.tenant.pk), "Acme")]
    chosen = client.get(changelist("reconciliation_reconciliationitem"), {"tenant__id__exact": rows.globex.tenant.pk})
    assert list(chosen.context["cl"].result_list) == []  # another tenant's id finds nothing


# --- Indexes ---------------------------------------------------------------------------

INDEXES = {
    PaySession: [
        "pay_session_tenant_newest",
        "pay_session_tenant_status",
        "pay_session_tenant_connector",
        "pay_session_tenant_channel",
        "pay_session_tenant_result",
        "pay_session_tenant_last4",
        "pay_session_tenant_reference",
    ],
    ReconciliationItem: [
        "recon_item_tenant_newest",
        "recon_item_tenant_open",
        "recon_item_tenant_reason",
        "recon_item_tenant_connector",
    ],
    StripeCharge: ["stripe_charge_tenant_newest", "stripe_charge_tenant_search"],
    AuditEvent: ["audit_tenant_newest", "audit_tenant_action", "audit_tenant_actor", "audit_tenant_target"],
}


@pytest.mark.parametrize("model", list(INDEXES), ids=lambda m: m._meta.model_name)
def test_the_lists_indexes_exist_and_lead_with_the_tenant(model):
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, model._meta.db_table)
    for name in INDEXES[model]:
        assert name in found, name
        assert found[name]["columns"][0] == "tenant_id", name
