"""Large ranges become export jobs (Celery, eager here): progress, a signed download link
that expires, the audit log, and another tenant's jobs and files out of reach."""

from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone

from payments.reports import services
from payments.reports.models import ExportJob
from tenants.models import AuditEvent, Scope
from tenants.services import Actor, api_key_create
from tests.reports.conftest import at, content, parse_csv, session, stripe_payment

pytestmark = pytest.mark.django_db
URL = "/api/v1/reports/payments"


@pytest.fixture
def many(world, settings):
    settings.PAYDESK_REPORTS_SYNC_MAX_ROWS = 3
    made = [session(world.acme, when=at(f"2025-05-01 1{i}:00"), amount_minor=1000 + i) for i in range(5)]
    for s in made:
        stripe_payment(s, fee=30)
    return made


def request_job(api, django_capture_on_commit_callbacks, **params):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.get(URL, {"format": "csv", **params})
    assert response.status_code == 202, response.content[:300]
    return response


def test_a_large_range_answers_202_with_a_job_that_runs_and_gives_an_expiring_link(
    world, api, client, many, django_capture_on_commit_callbacks
):
    response = request_job(api, django_capture_on_commit_callbacks)

    job_url = response["Location"]
    job = api.get(job_url).json()
    assert job["status"] == "succeeded" and job["rows_total"] == 5 and job["rows_done"] == 5 and job["progress"] == 1
    download = client.get(job["download_url"].removeprefix("http://testserver"))
    assert download.status_code == 200 and download["Cache-Control"] == "no-store"
    rows = parse_csv(content(download))
    assert [r["Session ID"] for r in rows] == [str(s.uuid) for s in many]
    assert [r["Amount"] for r in rows] == ["10.00", "10.01", "10.02", "10.03", "10.04"]
    actions = list(AuditEvent.objects.filter(tenant=world.acme.tenant).values_list("action", flat=True))
    assert {"report.export_requested", "report.export_completed", "report.downloaded"} <= set(actions)


def test_asking_again_gives_the_same_job(api, many, django_capture_on_commit_callbacks):
    first = request_job(api, django_capture_on_commit_callbacks).json()
    second = request_job(api, django_capture_on_commit_callbacks).json()

    assert first["id"] == second["id"] and ExportJob.objects.count() == 1


def test_progress_while_running_comes_from_the_worker(world, api, many):
    job = ExportJob.objects.create(
        tenant=world.acme.tenant,
        kind="payments",
        format="csv",
        spec={"kind": "payments", "format": "csv"},
        fingerprint="x",
        status="running",
        rows_total=10,
        requested_by_label="t",
    )
    from django.core.cache import cache

    cache.set(services._progress_key(job), 4)

    body = api.get(f"/api/v1/reports/jobs/{job.uuid}/").json()

    assert (body["rows_done"], body["progress"], body["download_url"]) == (4, 0.4, None)


def test_the_link_expires(api, client, many, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.PAYDESK_REPORTS_LINK_MAX_AGE = 3600
    job = api.get(request_job(api, django_capture_on_commit_callbacks)["Location"]).json()
    path = job["download_url"].removeprefix("http://testserver")
    now = signing.time.time()
    monkeypatch.setattr(signing.time, "time", lambda: now + 3601)

    assert client.get(path).status_code == 410


def test_the_file_is_deleted_when_the_job_expires(api, client, many, django_capture_on_commit_callbacks):
    job = api.get(request_job(api, django_capture_on_commit_callbacks)["Location"]).json()
    record = ExportJob.objects.get(uuid=job["id"])
    path = services.export_dir() / record.file_name
    assert path.exists()

    assert services.export_jobs_expire(now=record.expires_at + timedelta(seconds=1)) == 1

    record.refresh_from_db()
    assert record.status == "expired" and not path.exists()
    assert client.get(job["download_url"].removeprefix("http://testserver")).status_code == 404


def test_a_lost_worker_does_not_leave_a_job_running_forever(world):
    job = ExportJob.objects.create(
        tenant=world.acme.tenant,
        kind="payments",
        format="csv",
        spec={},
        fingerprint="y",
        status="running",
        started_at=timezone.now() - timedelta(hours=2),
        requested_by_label="t",
    )
    services.export_jobs_expire()
    job.refresh_from_db()
    assert job.status == "failed"


def test_another_tenant_job_is_404_and_a_tampered_link_serves_nothing(
    world, api, api_for, client, many, django_capture_on_commit_callbacks
):
    job = api.get(request_job(api, django_capture_on_commit_callbacks)["Location"]).json()
    record = ExportJob.objects.get(uuid=job["id"])
    globex = api_for(world.globex.raw_key)

    assert globex.get(f"/api/v1/reports/jobs/{job['id']}/").status_code == 404
    assert globex.get("/api/v1/reports/jobs/").json()["results"] == []
    forged = signing.dumps({"t": world.globex.tenant.pk, "j": job["id"]}, salt="not-ours")
    retargeted = signing.dumps({"t": world.globex.tenant.pk, "j": job["id"]}, salt=services.DOWNLOAD_SALT)
    assert client.get(f"/reports/download/{forged}/").status_code == 404
    assert client.get(f"/reports/download/{retargeted}/").status_code == 404  # names another tenant: no such job
    assert record.file_name.startswith(f"{world.acme.tenant.uuid}/")


def test_a_task_for_another_tenant_job_does_nothing(world, many):
    spec = {"kind": "payments", "format": "csv", "filters": {}, "columns": [], "bom": False}
    job = ExportJob.objects.create(
        tenant=world.acme.tenant, kind="payments", format="csv", spec=spec, fingerprint="z", requested_by_label="t"
    )

    assert services.export_job_run(tenant_id=world.globex.tenant.pk, job_id=job.pk) is None
    job.refresh_from_db()
    assert job.status == "queued"


def test_mode_job_and_xlsx_jobs(api, many, django_capture_on_commit_callbacks, settings):
    settings.PAYDESK_REPORTS_SYNC_MAX_ROWS = 1000
    with django_capture_on_commit_callbacks(execute=True):
        response = api.get(URL, {"format": "xlsx", "mode": "job"})
    job = api.get(response["Location"]).json()
    assert response.status_code == 202 and job["status"] == "succeeded" and job["format"] == "xlsx"


def test_reports_need_the_reports_read_scope(world, api_for):
    _, raw = api_key_create(
        tenant=world.acme.tenant, name="pay", scopes=[Scope.PAYMENTS_READ], actor=Actor.system("test")
    )
    response = api_for(raw).get(URL)
    assert response.status_code == 403 and response.json()["error"]["code"] == "missing_scope"
