"""The reports admin: the finance role sees reports and dashboards but cannot change
connectors; the dashboard's charts are server-rendered SVG with no external resource;
the pay-session export actions; another tenant's reports answer 404."""

import re

import pytest
from django.urls import reverse

from payments.reports.admin_actions import changelist_filters
from payments.reports.models import ExportJob, SavedReport
from tenants.models import Role
from tests.reports.conftest import at, content, item, member, parse_csv, parse_xlsx, session, stripe_payment

pytestmark = pytest.mark.django_db
DASHBOARD = "/admin/reports/financedashboard/"


@pytest.fixture
def as_finance(client, world):
    client.force_login(member(world.acme.tenant, Role.FINANCE))
    return client


def action(name: str, *pks) -> dict:
    return {"action": name, "_selected_action": [str(pk) for pk in pks], "index": "0"}


def test_finance_sees_reports_but_cannot_change_connectors(world, as_finance):
    connector = world.acme.connectors["Stripe_Prod"]
    change = reverse("admin:connectors_connectorinstance_change", args=[connector.pk])

    assert as_finance.get(DASHBOARD).status_code == 200
    assert as_finance.get(reverse("admin:reports_savedreport_changelist")).status_code == 200
    assert as_finance.get(reverse("admin:reports_savedreport_add")).status_code == 200
    assert as_finance.get(change).status_code == 200  # may look
    refused = as_finance.post(change, {"unique_name": "Renamed", "environment": "production", "is_active": "on"})
    assert refused.status_code == 403
    connector.refresh_from_db()
    assert connector.unique_name == "Stripe_Prod"
    assert as_finance.get(reverse("admin:connectors_connectorinstance_add")).status_code == 403


def test_finance_saves_a_report_definition_through_the_service(world, as_finance):
    response = as_finance.post(
        reverse("admin:reports_savedreport_add"),
        {
            "tenant": world.acme.tenant.pk,
            "name": "Paid yesterday",
            "kind": "payments",
            "format": "csv",
            "period": "yesterday",
            "filters": '{"status": "succeeded"}',
            "columns": ["amount", "date"],
        },
    )
    bad = as_finance.post(
        reverse("admin:reports_savedreport_add"),
        {
            "tenant": world.acme.tenant.pk,
            "name": "Typo",
            "kind": "payments",
            "format": "csv",
            "period": "",
            "filters": '{"stauts": "succeeded"}',
        },
    )

    assert response.status_code == 302
    saved = SavedReport.objects.get(name="Paid yesterday")
    assert (saved.filters, saved.columns) == ({"status": "succeeded"}, ["date", "amount"])
    assert bad.status_code == 200 and "stauts" in str(bad.context["adminform"].form.errors)


def test_an_agent_does_not_see_finance_reports(world, client):
    client.force_login(member(world.acme.tenant, Role.AGENT))
    assert client.get(DASHBOARD).status_code == 403
    assert client.get(reverse("admin:reports_exportjob_changelist")).status_code == 403


def test_the_dashboard_draws_svg_charts_without_any_external_resource(world, as_finance):
    tw = world.acme
    from django.utils import timezone

    today = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    stripe_payment(session(tw, when=today, amount_minor=4200), fee=10)
    session(tw, when=today, status="failed", result="caller-hung-up")
    item(tw, session(tw, when=today))

    page = as_finance.get(DASHBOARD).content.decode()

    body = page.split('class="finance-dashboard"', 1)[1]
    assert body.count('role="img"') == 4
    assert (
        "caller-hung-up: 1" in body and "amount_mismatch: 1" in body and "54.50 USD" in body
    )  # 42.00 + the 12.50 of the mismatched session
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=\"?https?:|https?://(?!www\.w3\.org/2000/svg)", body)
    assert not re.search(r"(src|href)=\"https?://", page)  # the whole page: nothing from the network


def test_the_dashboard_shows_percentages_round_ticks_with_the_currency_and_one_currency_throughout(world, as_finance):
    tw = world.acme
    from django.utils import timezone

    today = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    for amount in (2000, 3431):
        session(tw, when=today, amount_minor=amount)  # 54.31 USD in all
    session(tw, when=today, status="failed", result="caller-hung-up")
    session(tw, when=today, amount_minor=9900, currency="EUR")
    session(tw, when=today, currency="EUR", status="failed", result="validation-error")

    default = as_finance.get(DASHBOARD).content.decode()
    assert "All figures below are for <strong>EUR</strong> payments" in default  # the most volume
    usd = as_finance.get(DASHBOARD, {"currency": "USD"}).content.decode().split('class="finance-dashboard"', 1)[1]

    assert "All figures below are for <strong>USD</strong> payments" in usd
    assert "66.7%" in usd and "0.6667" not in usd  # 2 of 3 ended USD sessions succeeded
    for tick in ("0 USD", "20 USD", "40 USD", "60 USD"):
        assert f">{tick}</text>" in usd
    assert "54.31" in usd and "27.15" not in usd  # a total, never an unrounded tick
    assert "caller-hung-up" in usd and "validation-error" not in usd and "99.00" not in usd

    eur = as_finance.get(DASHBOARD, {"currency": "EUR"}).content.decode().split('class="finance-dashboard"', 1)[1]
    assert "All figures below are for <strong>EUR</strong> payments" in eur
    assert "validation-error" in eur and "caller-hung-up" not in eur and "99.00" in eur and "54.31" not in eur
    assert "50.0%" in eur


def test_nice_ticks_are_round_and_reach_the_top():
    from payments.reports.charts import nice_ticks

    assert nice_ticks(217.24) == [0, 100, 200, 300]
    assert nice_ticks(54.31) == [0, 20, 40, 60]
    assert nice_ticks(100) == [0, 25, 50, 75, 100]
    assert nice_ticks(0) == [0.0, 1.0]


def test_another_tenant_dashboard_and_jobs_answer_404(world, as_finance):
    job = ExportJob.objects.create(
        tenant=world.globex.tenant, kind="payments", format="csv", spec={}, fingerprint="g", requested_by_label="x"
    )

    assert as_finance.get(DASHBOARD, {"tenant": str(world.globex.tenant.uuid)}).status_code == 404
    assert as_finance.get(reverse("admin:reports_exportjob_change", args=[job.pk])).status_code == 404
    assert str(job.uuid) not in as_finance.get(reverse("admin:reports_exportjob_changelist")).content.decode()


def test_export_selected_streams_a_csv_of_exactly_those_sessions(world, as_finance):
    chosen = [session(world.acme, when=at(f"2025-05-0{i} 10:00")) for i in (1, 2)]
    session(world.acme, when=at("2025-05-03 10:00"))

    response = as_finance.post(
        reverse("admin:payments_paysession_changelist"), action("export_selected_csv", *(s.pk for s in chosen))
    )

    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment;")
    assert [r["Session ID"] for r in parse_csv(content(response))] == [str(s.uuid) for s in chosen]


def test_export_matching_uses_the_changelist_filters(world, as_finance):
    failed = session(world.acme, when=at("2025-05-01 10:00"), status="failed", result="caller-hung-up")
    ok = session(world.acme, when=at("2025-05-02 10:00"))

    url = reverse("admin:payments_paysession_changelist") + "?status__exact=failed"
    response = as_finance.post(url, action("export_matching_xlsx", ok.pk))

    sheet = parse_xlsx(content(response))["Payments"]
    ids = [row[7] for row in sheet.iter_rows(min_row=2, values_only=True) if row[7]]
    assert ids == [str(failed.uuid)]


def test_a_large_matching_export_becomes_a_job(world, as_finance, settings, django_capture_on_commit_callbacks):
    settings.PAYDESK_REPORTS_SYNC_MAX_ROWS = 1
    made = [session(world.acme, when=at(f"2025-05-0{i} 10:00")) for i in (1, 2, 3)]

    with django_capture_on_commit_callbacks(execute=True):
        response = as_finance.post(
            reverse("admin:payments_paysession_changelist") + "?channel__exact=agent",
            action("export_matching_csv", made[0].pk),
            follow=True,
        )

    job = ExportJob.objects.get()
    assert job.spec["filters"] == {"channel": "agent"} and job.status == "succeeded" and job.rows_done == 3
    assert "export job" in response.content.decode()


def test_an_export_is_one_tenant(world, client, superuser):
    client.force_login(superuser)
    mine, theirs = session(world.acme, when=at("2025-05-01 10:00")), session(world.globex, when=at("2025-05-01 10:00"))

    response = client.post(
        reverse("admin:payments_paysession_changelist"), action("export_selected_csv", mine.pk, theirs.pk), follow=True
    )

    assert "one tenant" in response.content.decode()


def test_changelist_filters_map_to_report_filters_or_refuse(world):
    connector = world.acme.connectors["Stripe_Stage"]
    tenant = world.acme.tenant

    assert changelist_filters(
        {"connector": str(connector.pk), "created_at__year": "2025", "created_at__month": "2", "o": "1"}, tenant
    ) == {
        "connector": "Stripe_Stage",
        "created_after": "2025-02-01T00:00:00+00:00",
        "created_before": "2025-03-01T00:00:00+00:00",
    }
    assert changelist_filters({"q": "CA123"}, tenant) is None
    assert changelist_filters({"connector": str(world.globex.connectors["Stripe_Stage"].pk)}, tenant) is None


def test_an_agent_cannot_export_sessions(world, client):
    client.force_login(member(world.acme.tenant, Role.AGENT))
    s = session(world.acme, when=at("2025-05-01 10:00"))

    response = client.post(
        reverse("admin:payments_paysession_changelist"), action("export_selected_csv", s.pk), follow=True
    )

    assert "Exports are for owners, admins, finance and viewers" in response.content.decode()
    assert not response.get("Content-Disposition")


def test_the_pay_session_list_offers_the_export_actions_the_reports_app_plugs_in(world, as_finance):
    page = as_finance.get(reverse("admin:payments_paysession_changelist")).content.decode()
    offered = re.findall(r'<option value="(export_[a-z_]+)"', page)
    assert offered == ["export_selected_csv", "export_selected_xlsx", "export_matching_csv", "export_matching_xlsx"]
