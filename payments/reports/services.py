"""Every write of the reports app: saved reports, report runs (streamed now, or as an
export job), export jobs and their files, and download links.

Settings (read with defaults until they are in config/settings/base.py):
PAYDESK_REPORTS_EXPORT_DIR, PAYDESK_REPORTS_SYNC_MAX_ROWS(_XLSX), PAYDESK_REPORTS_LINK_MAX_AGE,
PAYDESK_REPORTS_FILE_TTL, PAYDESK_REPORTS_JOB_REUSE_SECONDS, PAYDESK_REPORTS_JOB_TIME_LIMIT.
"""

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone

from payments.outbox import catalogue
from payments.outbox.services import event_record
from payments.reports.models import ExportJob, Format, SavedReport
from payments.reports.specs import ReportSpec, build_spec, open_table, saved_report_params
from payments.reports.writers import CONTENT_TYPES, csv_chunks, write_xlsx
from tenants.models import Tenant
from tenants.services import Actor, audit_record

logger = logging.getLogger(__name__)

DOWNLOAD_SALT = "paydesk.reports.download"


def export_dir() -> Path:
    return Path(settings.PAYDESK_REPORTS_EXPORT_DIR)


def sync_max_rows(fmt: str = Format.CSV) -> int:
    """Rows a report may have to be answered at once; more run as an export job. XLSX is
    about 20 times slower to write than CSV (openpyxl), hence its own, lower limit."""
    if fmt == Format.XLSX:
        return settings.PAYDESK_REPORTS_SYNC_MAX_ROWS_XLSX
    return settings.PAYDESK_REPORTS_SYNC_MAX_ROWS


def link_max_age() -> int:
    return settings.PAYDESK_REPORTS_LINK_MAX_AGE


def file_ttl() -> timedelta:
    return timedelta(seconds=settings.PAYDESK_REPORTS_FILE_TTL)


def job_reuse() -> timedelta:
    return timedelta(seconds=settings.PAYDESK_REPORTS_JOB_REUSE_SECONDS)


def download_name(*, kind: str, tenant: Tenant, fmt: str, when=None) -> str:
    when = timezone.localtime(when or timezone.now(), timezone.get_fixed_timezone(0))
    return f"paydesk-{kind.replace('_', '-')}-{tenant.slug}-{when:%Y%m%d-%H%M%S}.{fmt}"


# --- Saved reports ----------------------------------------------------------------------


def saved_report_save(*, report: SavedReport, actor: Actor) -> SavedReport:
    """Create or change a saved report, after checking that it runs (filters, columns)."""
    if not report.name.strip():
        raise ValidationError({"name": ["Give the report a name."]})
    try:
        build_spec(kind=report.kind, params=saved_report_params(report), tenant=report.tenant)
    except ValidationError as exc:
        fields = {"format", "period", "columns", "filters", "bom"}
        raise ValidationError({(k if k in fields else "filters"): v for k, v in exc.message_dict.items()}) from None
    if SavedReport.objects.filter(tenant=report.tenant, name=report.name).exclude(pk=report.pk).exists():
        raise ValidationError({"name": ["This tenant already has a report with this name."]})
    created = report.pk is None
    with transaction.atomic():
        report.save()
        audit_record(
            action="report.saved_report_created" if created else "report.saved_report_changed",
            actor=actor,
            tenant=report.tenant,
            target=report,
            changes={"kind": report.kind, "format": report.format, "filters": report.filters},
        )
    return report


# --- Running a report -------------------------------------------------------------------


@dataclass
class Output:
    """What a run gives: a job (large), CSV chunks, an XLSX file, or JSON data."""

    filename: str = ""
    content_type: str = ""
    job: ExportJob | None = None
    chunks: Iterator[bytes] | None = None
    file: IO[bytes] | None = None
    data: dict | None = None


def report_run(
    *,
    tenant: Tenant,
    spec: ReportSpec,
    actor: Actor,
    saved_report: SavedReport | None = None,
    as_job: bool = False,
    session_ids=None,
) -> Output:
    """Run a report now, or, past PAYDESK_REPORTS_SYNC_MAX_ROWS rows (or when asked), as
    an export job. Either way the audit log notes who exported what."""
    opened = open_table(spec, tenant, session_ids=session_ids)
    if spec.format == Format.JSON:
        return Output(content_type=CONTENT_TYPES["json"], data=opened.table.as_json())
    if session_ids is None and (as_job or opened.count() > sync_max_rows(spec.format)):
        job, _ = export_job_request(tenant=tenant, spec=spec, actor=actor, saved_report=saved_report)
        return Output(job=job)
    audit_record(
        action="report.exported",
        actor=actor,
        tenant=tenant,
        target=saved_report,
        changes={"kind": spec.kind, "format": spec.format, "filters": spec.filters, "selected": bool(session_ids)},
    )
    name = download_name(kind=spec.kind, tenant=tenant, fmt=spec.format)
    if spec.format == Format.CSV:
        return Output(name, CONTENT_TYPES["csv"], chunks=csv_chunks(opened.table, bom=spec.bom))
    spooled = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the response, which closes it
    write_xlsx(opened.table, spooled)
    spooled.seek(0)
    return Output(name, CONTENT_TYPES["xlsx"], file=spooled)


# --- Export jobs ------------------------------------------------------------------------


def _fingerprint(spec: ReportSpec, actor: Actor) -> str:
    body = json.dumps([spec.as_json(), actor.label], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def export_job_request(
    *, tenant: Tenant, spec: ReportSpec, actor: Actor, saved_report: SavedReport | None = None, enqueue: bool = True
) -> tuple[ExportJob, bool]:
    """Queue an export job (after commit; `enqueue=False`: the caller runs it). The same
    spec asked again by the same requester gets the job already queued or running, or one
    finished in the last 15 minutes, so a client that repeats its request gets one job,
    not a job per request."""
    fingerprint = _fingerprint(spec, actor)
    recent = (
        ExportJob.objects.filter(tenant=tenant, fingerprint=fingerprint)
        .filter(
            status__in=[*ExportJob.ACTIVE, ExportJob.Status.SUCCEEDED], created_at__gte=timezone.now() - job_reuse()
        )
        .order_by("-created_at")
        .first()
    )
    if recent is not None:
        return recent, False
    job = ExportJob(
        tenant=tenant,
        saved_report=saved_report,
        kind=spec.kind,
        format=spec.format,
        spec=spec.as_json(),
        fingerprint=fingerprint,
        requested_by=actor.user if getattr(actor.user, "pk", None) else None,
        requested_by_api_key=actor.api_key,
        requested_by_label=actor.label[:200],
    )
    try:
        with transaction.atomic():
            job.save()
            audit_record(
                action="report.export_requested",
                actor=actor,
                tenant=tenant,
                target=job,
                changes={"kind": spec.kind, "format": spec.format, "filters": spec.filters},
            )
    except IntegrityError:  # the same request, a moment ago: its job stands
        return ExportJob.objects.get(tenant=tenant, fingerprint=fingerprint, status__in=ExportJob.ACTIVE), False

    if enqueue:
        from payments.reports import tasks

        transaction.on_commit(lambda: tasks.run_export_job.delay(tenant.pk, job.pk))
    return job, True


def _progress_key(job: ExportJob) -> str:
    return f"paydesk:reports:job:{job.uuid}:rows"


def export_job_rows_done(job: ExportJob) -> int:
    """Rows written so far: the worker reports them through the cache while it runs."""
    if job.status == ExportJob.Status.RUNNING:
        return int(cache.get(_progress_key(job)) or job.rows_done)
    return job.rows_done


def export_job_run(*, tenant_id: int, job_id: int) -> ExportJob | None:
    """Write a queued job's file. A job already claimed (a redelivered task) is left alone."""
    now = timezone.now()
    claimed = ExportJob.objects.filter(pk=job_id, tenant_id=tenant_id, status=ExportJob.Status.QUEUED).update(
        status=ExportJob.Status.RUNNING, started_at=now
    )
    if not claimed:
        return None
    job = ExportJob.objects.select_related("tenant").get(pk=job_id)
    try:
        rows, size = _write_job_file(job)
    except Exception as exc:
        logger.exception("export job %s failed", job.pk)
        ExportJob.objects.filter(pk=job.pk, status=ExportJob.Status.RUNNING).update(
            status=ExportJob.Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        audit_record(action="report.export_failed", actor=Actor.system("export-job"), tenant=job.tenant, target=job)
        job.refresh_from_db()
        return job
    done = timezone.now()
    with transaction.atomic():
        if ExportJob.objects.filter(pk=job.pk, status=ExportJob.Status.RUNNING).update(
            status=ExportJob.Status.SUCCEEDED,
            rows_done=rows,
            file_size=size,
            finished_at=done,
            expires_at=done + file_ttl(),
        ):
            job.refresh_from_db()
            _record_export_ready(job)
    cache.delete(_progress_key(job))
    job.refresh_from_db()
    audit_record(
        action="report.export_completed",
        actor=Actor.system("export-job"),
        tenant=job.tenant,
        target=job,
        changes={"rows": rows, "bytes": size, "requested_by": job.requested_by_label},
    )
    return job


def _record_export_ready(job: ExportJob) -> None:
    """export.ready for partners (payments.outbox), with the job as the REST API shows it."""
    from payments.reports.api.serializers import ExportJobSerializer  # the serializers import this module

    event_record(
        tenant_id=job.tenant_id,
        type=catalogue.EXPORT_READY,
        data=ExportJobSerializer(job).data,
        ordering_key=f"export_job:{job.uuid}",
    )


def _write_job_file(job: ExportJob) -> tuple[int, int]:
    spec = ReportSpec.from_json(job.spec)
    opened = open_table(spec, job.tenant)
    total = opened.count()
    ExportJob.objects.filter(pk=job.pk).update(
        rows_total=total, file_name=f"{job.tenant.uuid}/{job.uuid}.{spec.format}"
    )
    job.file_name = f"{job.tenant.uuid}/{job.uuid}.{spec.format}"
    path = export_dir() / job.file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    key = _progress_key(job)

    def progress(rows: int) -> None:
        cache.set(key, rows, timeout=3600)

    partial = path.with_suffix(path.suffix + ".part")
    try:
        with open(partial, "wb") as out:
            if spec.format == Format.CSV:
                for chunk in csv_chunks(opened.table, bom=spec.bom, progress=progress):
                    out.write(chunk)
            elif spec.format == Format.XLSX:
                write_xlsx(opened.table, out, progress=progress)
            else:
                out.write(json.dumps(opened.table.as_json(), indent=1).encode())
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)  # a reader never sees half a file
    return opened.table.rows_written, path.stat().st_size


def export_jobs_expire(*, now=None) -> int:
    """Delete the files of jobs past their expiry; fail jobs a lost worker left running."""
    now = now or timezone.now()
    expired = 0
    for job in ExportJob.objects.filter(status=ExportJob.Status.SUCCEEDED, expires_at__lte=now).only("pk", "file_name"):
        if ExportJob.objects.filter(pk=job.pk, status=ExportJob.Status.SUCCEEDED).update(
            status=ExportJob.Status.EXPIRED
        ):
            if job.file_name:
                (export_dir() / job.file_name).unlink(missing_ok=True)
            expired += 1
    limit = settings.PAYDESK_REPORTS_JOB_TIME_LIMIT
    ExportJob.objects.filter(status=ExportJob.Status.RUNNING, started_at__lt=now - timedelta(seconds=limit)).update(
        status=ExportJob.Status.FAILED, error="The worker stopped before finishing; ask again.", finished_at=now
    )
    return expired


# --- Download links ---------------------------------------------------------------------


def download_token(job: ExportJob) -> str:
    """A signed, expiring token naming the job and its tenant (django.core.signing)."""
    return signing.dumps({"t": job.tenant_id, "j": str(job.uuid)}, salt=DOWNLOAD_SALT, compress=True)


def download_path(job: ExportJob) -> str:
    from django.urls import reverse

    return reverse("reports-download", kwargs={"token": download_token(job)})


def download_url(job: ExportJob) -> str:
    return settings.PAYDESK_PUBLIC_BASE_URL + download_path(job)


def download_resolve(token: str) -> ExportJob:
    """The job a link names, while the link and the file live; else 404 (410 when expired)."""
    try:
        data = signing.loads(token, salt=DOWNLOAD_SALT, max_age=link_max_age())
    except signing.SignatureExpired:
        raise LinkExpired() from None
    except signing.BadSignature:
        raise Http404("No such export.") from None
    job = (
        ExportJob.objects.select_related("tenant")
        .filter(tenant_id=data.get("t"), uuid=data.get("j"), status=ExportJob.Status.SUCCEEDED)
        .first()
    )
    if job is None or not job.file_name:
        raise Http404("No such export.")
    if job.expires_at and job.expires_at <= timezone.now():
        raise LinkExpired()
    return job


class LinkExpired(Exception):
    pass


def export_job_open(*, job: ExportJob, actor: Actor) -> IO[bytes]:
    """The job's file, for a download, which the audit log notes."""
    path = (export_dir() / job.file_name).resolve()
    if not path.is_relative_to(export_dir().resolve() / str(job.tenant.uuid)) or not path.exists():
        raise Http404("No such export.")
    audit_record(action="report.downloaded", actor=actor, tenant=job.tenant, target=job)
    return open(path, "rb")  # noqa: SIM115 - FileResponse closes it
