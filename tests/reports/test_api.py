"""Saved reports over the API (list, run, 404 for another tenant's), the schema, and the
CSV writer's fast path, which must write exactly what csv.writer writes."""

import csv
import io
import random
from datetime import timedelta

import pytest

from payments.reports.cells import TEXT, Column, neutralise
from payments.reports.models import SavedReport
from payments.reports.writers import csv_chunks
from tests.reports.conftest import at, content, parse_csv, session, stripe_payment

pytestmark = pytest.mark.django_db


@pytest.fixture
def saved(world):
    return SavedReport.objects.create(
        tenant=world.acme.tenant,
        name="Failed, amounts",
        kind="payments",
        format="csv",
        filters={"status": "failed"},
        columns=["session_id", "amount"],
    )


def test_saved_reports_are_listed_and_run_with_their_filters_and_columns(world, api, saved):
    failed = session(world.acme, when=at("2025-06-01 10:00"), status="failed", result="caller-hung-up")
    stripe_payment(session(world.acme, when=at("2025-06-01 11:00")), fee=10)

    listed = api.get("/api/v1/reports/saved/").json()["results"]
    run = api.get(f"/api/v1/reports/saved/{saved.uuid}/run/")

    assert [(r["id"], r["name"], r["filters"]) for r in listed] == [(str(saved.uuid), saved.name, {"status": "failed"})]
    assert parse_csv(content(run)) == [{"Session ID": str(failed.uuid), "Amount": "12.50"}]


def test_another_tenant_saved_report_is_404(world, api_for, saved):
    globex = api_for(world.globex.raw_key)

    assert globex.get(f"/api/v1/reports/saved/{saved.uuid}/").status_code == 404
    assert globex.get(f"/api/v1/reports/saved/{saved.uuid}/run/").status_code == 404
    assert globex.get("/api/v1/reports/saved/").json()["results"] == []


def test_a_period_is_resolved_in_the_tenant_time_zone(world, api, monkeypatch):
    from datetime import UTC, datetime

    from django.utils import timezone

    world.acme.tenant.time_zone = "Asia/Tokyo"
    world.acme.tenant.save()
    monkeypatch.setattr(timezone, "now", lambda: datetime(2025, 6, 1, 16, 0, tzinfo=UTC))  # 2 June 01:00 in Tokyo
    yesterday = session(world.acme, when=at("2025-06-01 14:30"))  # 23:30 on 1 June in Tokyo
    session(world.acme, when=at("2025-06-01 15:30"))  # 00:30 on 2 June

    rows = parse_csv(content(api.get("/api/v1/reports/payments", {"period": "yesterday"})))

    assert [(r["Session ID"], r["Date (local)"]) for r in rows] == [(str(yesterday.uuid), "2025-06-01")]


def test_the_openapi_schema_documents_the_reports(client):
    schema = client.get("/api/schema/").content.decode()
    for path in ("/api/v1/reports/payments", "/api/v1/reports/daily-summary", "/api/v1/reports/jobs/{id}/"):
        assert path in schema


def test_the_fast_csv_path_writes_what_csv_writer_writes():
    alphabet = ["a", "1", ",", '"', "\n", "\r", "=", "+", "-", "@", "\t", " ", "é", "'"]
    rng = random.Random(6)
    rows = [
        tuple("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4))) for _ in range(4)) for _ in range(3000)
    ]

    class Table:
        title = "t"
        columns = [Column("a", "A"), Column("b", "B", "code"), Column("c", "C"), Column("d", "D")]
        rows_written = 0

        def csv_rows(self):
            return iter(rows)

    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\r\n")
    writer.writerow(["A", "B", "C", "D"])
    for row in rows:
        writer.writerow([neutralise(v) if c.kind == TEXT else v for v, c in zip(row, Table.columns, strict=True)])

    written = b"".join(csv_chunks(Table())).decode()

    assert written == expected.getvalue()
    parsed = list(csv.reader(io.StringIO(written, newline="")))[1:]
    assert all(not v[:1] or v[0] not in "=+-@\t\r" for row in parsed for i, v in enumerate(row) if i != 1)


@pytest.mark.parametrize("params", [{}, {"period": "last_7_days"}, {"period": "last_30_days"}])
def test_the_daily_summary_windows_include_today(world, api, monkeypatch, params):
    from datetime import UTC, datetime

    from django.utils import timezone

    now = datetime(2025, 6, 10, 15, 0, tzinfo=UTC)  # 11:00 in New York
    monkeypatch.setattr(timezone, "now", lambda: now)
    world.acme.tenant.time_zone = "America/New_York"
    world.acme.tenant.save()
    session(world.acme, when=now - timedelta(hours=1))  # today, local
    window = 7 if params.get("period") == "last_7_days" else 30
    session(world.acme, when=now - timedelta(days=window - 1, hours=1))  # the window's first day
    session(world.acme, when=now - timedelta(days=window, hours=1))  # the day before: outside

    data = api.get("/api/v1/reports/daily-summary", params).json()

    first = (datetime(2025, 6, 10) - timedelta(days=window - 1)).date().isoformat()
    assert (data["date_from"], data["date_to"]) == (first, "2025-06-10")
    assert sorted(d["date"] for d in data["days"]) == [first, "2025-06-10"]


def test_the_dashboard_and_the_api_show_the_same_last_n_days(world, api, monkeypatch):
    from datetime import UTC, datetime

    from django.utils import timezone

    from payments.reports.dashboard import dashboard_context

    now = datetime(2025, 6, 10, 15, 0, tzinfo=UTC)
    monkeypatch.setattr(timezone, "now", lambda: now)
    data = api.get("/api/v1/reports/daily-summary", {"period": "last_7_days"}).json()
    context = dashboard_context(tenant=world.acme.tenant, days=7)
    assert (context["first"].isoformat(), context["today"].isoformat()) == (data["date_from"], data["date_to"])
    assert (data["date_from"], data["date_to"]) == ("2025-06-04", "2025-06-10")
