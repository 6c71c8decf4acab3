"""Scheduled delivery of saved reports by email (Django's email backend).

A schedule names a local time (and a weekday for weekly ones) in the tenant's time zone;
`next_run_at` is that instant in UTC. The beat task claims each due schedule by moving
its `next_run_at` forward with a conditional update, and creates one delivery per slot
(unique per schedule and slot), so a slot is sent once even if two beats overlap. The
delivery runs the report as an export job (the audit log notes it), then emails it:
attached when small, else as an expiring download link. The report's period (say,
"yesterday") is resolved at the slot's time, so a retry sends the same days.
"""

import zoneinfo
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from payments.reports.models import (
    ExportJob,
    Format,
    Kind,
    ReportDelivery,
    ReportSchedule,
    recipient_list,
)
from payments.reports.services import download_url, export_dir, export_job_request, export_job_run
from payments.reports.specs import spec_for_saved
from payments.reports.writers import CONTENT_TYPES
from tenants.services import Actor, audit_record


def attach_max_bytes() -> int:
    return settings.PAYDESK_REPORTS_EMAIL_ATTACH_MAX_BYTES


def next_run(schedule: ReportSchedule, *, after: datetime) -> datetime:
    """The first slot strictly after `after`, in UTC (local time, tenant time zone)."""
    zone = zoneinfo.ZoneInfo(schedule.tenant.time_zone)
    day = after.astimezone(zone).date()
    for offset in range(9):
        candidate_day = day + timedelta(days=offset)
        if schedule.cadence == ReportSchedule.Cadence.WEEKLY and candidate_day.weekday() != schedule.weekday:
            continue
        slot = datetime.combine(candidate_day, schedule.local_time, tzinfo=zone).astimezone(UTC)
        if slot > after:
            return slot
    raise AssertionError("a daily or weekly slot is always within 8 days")


def report_schedule_save(*, schedule: ReportSchedule, actor: Actor) -> ReportSchedule:
    """Create or change a schedule; its next slot is computed from now."""
    errors = {}
    if schedule.saved_report_id and schedule.saved_report.tenant_id != schedule.tenant_id:
        errors["saved_report"] = ["Choose a report of this tenant."]
    if schedule.cadence == ReportSchedule.Cadence.WEEKLY and schedule.weekday is None:
        errors["weekday"] = ["A weekly schedule needs a weekday."]
    if not recipient_list(schedule.recipients):
        errors["recipients"] = ["Give at least one email address."]
    if ReportSchedule.objects.filter(tenant=schedule.tenant, name=schedule.name).exclude(pk=schedule.pk).exists():
        errors["name"] = ["This tenant already has a schedule with this name."]
    if errors:
        raise ValidationError(errors)
    if schedule.cadence == ReportSchedule.Cadence.DAILY:
        schedule.weekday = None
    schedule.next_run_at = next_run(schedule, after=timezone.now())
    created = schedule.pk is None
    with transaction.atomic():
        schedule.save()
        audit_record(
            action="report.schedule_created" if created else "report.schedule_changed",
            actor=actor,
            tenant=schedule.tenant,
            target=schedule,
            changes={
                "report": str(schedule.saved_report),
                "recipients": recipient_list(schedule.recipients),
                "cadence": schedule.cadence,
                "local_time": schedule.local_time.isoformat(),
                "enabled": schedule.enabled,
            },
        )
    return schedule


def report_deliveries_enqueue(*, now: datetime | None = None) -> int:
    """The beat's entry point: one delivery per due schedule. A schedule that missed
    several slots (beat was down) is sent once, for the latest, then moves on."""
    from payments.reports import tasks

    now = now or timezone.now()
    queued = 0
    due = ReportSchedule.objects.filter(enabled=True, next_run_at__lte=now).select_related("tenant")
    for schedule in due:
        slot = schedule.next_run_at
        with transaction.atomic():
            claimed = ReportSchedule.objects.filter(pk=schedule.pk, next_run_at=slot, enabled=True).update(
                next_run_at=next_run(schedule, after=max(slot, now)), last_run_at=now
            )
            if not claimed:
                continue  # another beat took it
            delivery, created = ReportDelivery.objects.get_or_create(
                schedule=schedule, due_at=slot, defaults={"tenant": schedule.tenant, "recipients": schedule.recipients}
            )
            if created:
                ids = (schedule.tenant_id, delivery.pk)
                transaction.on_commit(lambda ids=ids: tasks.send_report_delivery.delay(*ids))
                queued += 1
    return queued


def report_delivery_send(*, tenant_id: int, delivery_id: int) -> str:
    delivery = (
        ReportDelivery.objects.select_related("schedule__saved_report__tenant", "tenant", "job")
        .filter(pk=delivery_id, tenant_id=tenant_id)
        .first()
    )
    if delivery is None or delivery.status == ReportDelivery.Status.SENT:
        return "skipped"
    # One attempt at a time: the attempt counter is the claim.
    if (
        not ReportDelivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts)
        .exclude(status=ReportDelivery.Status.SENT)
        .update(attempts=F("attempts") + 1)
    ):
        return "skipped: another attempt is running"
    saved = delivery.schedule.saved_report
    actor = Actor.system(f"schedule:{delivery.schedule.uuid}")
    try:
        job = delivery.job
        if job is None or job.status != ExportJob.Status.SUCCEEDED:
            spec = spec_for_saved(saved, now=delivery.due_at)
            if spec.format == Format.JSON:  # a mail carries a file: the summary as CSV
                spec = spec_for_saved(saved, now=delivery.due_at, format=Format.CSV)
            job, _ = export_job_request(
                tenant=delivery.tenant, spec=spec, actor=actor, saved_report=saved, enqueue=False
            )
            ReportDelivery.objects.filter(pk=delivery.pk).update(job=job)
            job = export_job_run(tenant_id=job.tenant_id, job_id=job.pk) or ExportJob.objects.get(pk=job.pk)
        if job.status != ExportJob.Status.SUCCEEDED:
            raise RuntimeError(job.error or f"The export is {job.status}.")
        message = _message(delivery, job)
        message.send()
    except Exception as exc:
        ReportDelivery.objects.filter(pk=delivery.pk).update(status=ReportDelivery.Status.FAILED, error=str(exc)[:2000])
        raise
    ReportDelivery.objects.filter(pk=delivery.pk).update(
        status=ReportDelivery.Status.SENT, sent_at=timezone.now(), error=""
    )
    audit_record(
        action="report.delivered",
        actor=actor,
        tenant=delivery.tenant,
        target=job,
        changes={"report": saved.name, "recipients": recipient_list(delivery.recipients), "rows": job.rows_done},
    )
    return "sent"


def _message(delivery: ReportDelivery, job: ExportJob) -> EmailMessage:
    saved, tenant = delivery.schedule.saved_report, delivery.tenant
    filters = job.spec.get("filters", {})
    span = " to ".join(filter(None, [filters.get("date_from"), filters.get("date_to")])) or "as filtered"
    lines = [
        f"{saved.name} for {tenant.name}",
        f"Period: {span} ({tenant.time_zone})",
        f"Rows: {job.rows_done}",
        "",
    ]
    name = f"{saved.name}-{delivery.due_at:%Y%m%d}.{job.format}".replace(" ", "-")
    attach = job.file_size is not None and job.file_size <= attach_max_bytes()
    if not attach:
        lines.append(f"Download (the link expires): {download_url(job)}")
    if saved.kind == Kind.DAILY_SUMMARY:
        lines += ["", "Totals per currency:"] + _summary_lines(job)
    message = EmailMessage(
        subject=f"Paydesk · {saved.name} · {tenant.name} · {span}",
        body="\n".join(lines) + "\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipient_list(delivery.recipients),
    )
    if attach:
        message.attach(name, (export_dir() / job.file_name).read_bytes(), CONTENT_TYPES[job.format])
    return message


def _summary_lines(job: ExportJob) -> list[str]:
    from payments.reports.specs import ReportSpec, open_table

    table = open_table(ReportSpec.from_json(job.spec), job.tenant).table
    lines = []
    for total in table.totals():
        t = total.as_json()
        lines.append(
            f"  {t['currency']}: {t['sessions']} sessions, success rate {t['success_rate'] or '—'}, "
            f"gross {t['gross']}, refunds {t['refunds']}, fees {t['fees']}, net {t['net']}"
        )
    return lines or ["  no payments"]
