"""Finance reports: saved report definitions, export jobs and scheduled deliveries.

A report is described by a spec (kind, format, filters, columns; see specs.py) that is
stored as JSON: in a saved report, in the job that runs it, and nowhere else. Filters
use the pay-session API's names, so a saved report reads like the URL that runs it.
"""

import uuid

from django.conf import settings
from django.core.validators import validate_email
from django.db import models

from tenants.models import ApiKey, Tenant


class Kind(models.TextChoices):
    PAYMENTS = "payments"
    DAILY_SUMMARY = "daily_summary", "daily summary"
    EXCEPTIONS = "exceptions", "reconciliation exceptions"
    PAYOUTS = "payouts"


class Format(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "XLSX (Excel)"
    JSON = "json", "JSON"


class Period(models.TextChoices):
    """A date range relative to the run, in the tenant's time zone (for schedules)."""

    FIXED = "", "as in the filters"
    YESTERDAY = "yesterday"
    LAST_7_DAYS = "last_7_days", "last 7 days"
    LAST_30_DAYS = "last_30_days", "last 30 days"
    MONTH_TO_DATE = "month_to_date", "month to date"
    PREVIOUS_MONTH = "previous_month", "previous month"


class SavedReport(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="saved_reports")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PAYMENTS)
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.CSV)
    period = models.CharField(max_length=16, choices=Period.choices, blank=True, default=Period.FIXED)
    filters = models.JSONField(
        default=dict, blank=True, help_text='The pay-session API\'s filters, e.g. {"status": "succeeded"}.'
    )
    columns = models.JSONField(default=list, blank=True, help_text="Payments only; empty: every column.")
    bom = models.BooleanField(default=False, help_text="CSV: start with a UTF-8 byte order mark (Excel on Windows).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="saved_report_unique_name_per_tenant")]

    def __str__(self) -> str:
        return self.name


class ExportJob(models.Model):
    """A report written to a file by a worker: for large ranges, and for each delivery."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        EXPIRED = "expired", "expired (file deleted)"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="export_jobs")
    saved_report = models.ForeignKey(SavedReport, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    format = models.CharField(max_length=8, choices=Format.choices)
    spec = models.JSONField(help_text="What runs: kind, format, filters (dates resolved), columns, bom.")
    # The same spec asked again by the same requester while a job is active gets that job.
    fingerprint = models.CharField(max_length=64, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    rows_total = models.BigIntegerField(null=True, blank=True)
    rows_done = models.BigIntegerField(default=0)
    file_name = models.CharField(max_length=255, blank=True, help_text="Relative to the export directory.")
    file_size = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    requested_by_label = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="The file is deleted after this.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "fingerprint"],
                condition=models.Q(status__in=["queued", "running"]),
                name="export_job_one_active_per_fingerprint",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["queued", "running", "succeeded", "failed", "expired"]),
                name="export_job_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="export_job_tenant_newest"),
            models.Index(fields=["tenant", "status", "-created_at", "-id"], name="export_job_tenant_status"),
            models.Index(fields=["status", "expires_at"], name="export_job_status_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.format} ({self.status})"

    @property
    def progress(self) -> float | None:
        if self.status == self.Status.SUCCEEDED:
            return 1.0
        if not self.rows_total:
            return None
        return min(self.rows_done / self.rows_total, 1.0)


def validate_recipients(value: str) -> None:
    for address in recipient_list(value):
        validate_email(address)


def recipient_list(value: str) -> list[str]:
    return [a.strip() for a in value.replace(";", ",").replace("\n", ",").split(",") if a.strip()]


class ReportSchedule(models.Model):
    """Delivers a saved report by email, at a local time of the tenant's day."""

    class Cadence(models.TextChoices):
        DAILY = "daily"
        WEEKLY = "weekly"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="report_schedules")
    saved_report = models.ForeignKey(SavedReport, on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=100)
    recipients = models.TextField(validators=[validate_recipients], help_text="Email addresses, comma-separated.")
    cadence = models.CharField(max_length=8, choices=Cadence.choices, default=Cadence.DAILY)
    local_time = models.TimeField(help_text="In the tenant's time zone.")
    weekday = models.PositiveSmallIntegerField(
        null=True, blank=True, choices=[(i, d) for i, d in enumerate(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])]
    )
    enabled = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(db_index=True, help_text="UTC; computed from the local time.")
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="report_schedule_unique_name_per_tenant"),
            models.CheckConstraint(
                condition=models.Q(cadence="daily") | models.Q(weekday__isnull=False),
                name="report_schedule_weekly_has_weekday",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ReportDelivery(models.Model):
    """One slot of a schedule: created once per (schedule, slot), so a slot is sent once."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    schedule = models.ForeignKey(ReportSchedule, on_delete=models.CASCADE, related_name="deliveries")
    due_at = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    job = models.ForeignKey(ExportJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    recipients = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-due_at", "-id"]
        verbose_name_plural = "report deliveries"
        constraints = [models.UniqueConstraint(fields=["schedule", "due_at"], name="report_delivery_once_per_slot")]
        indexes = [
            models.Index(fields=["tenant", "-due_at", "-id"], name="report_delivery_tenant_newest"),
            models.Index(fields=["tenant", "status", "-due_at", "-id"], name="report_delivery_tenant_status"),
        ]

    def __str__(self) -> str:
        return f"{self.schedule} @ {self.due_at:%Y-%m-%d %H:%M} ({self.status})"


class FinanceDashboard(Tenant):
    """Tenants as the finance dashboard lists them (admin: charts, no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = "finance dashboard"
        verbose_name_plural = "finance dashboards"
