"""Thin Celery tasks: ids in, one service call each."""

from smtplib import SMTPException

from celery import shared_task
from django.conf import settings

from payments.reports import delivery, services

# A million-row XLSX takes minutes; the default task limits (4-5 minutes) are for callbacks.
_JOB_LIMIT = settings.PAYDESK_REPORTS_JOB_TIME_LIMIT


@shared_task(acks_late=True, soft_time_limit=_JOB_LIMIT - 60, time_limit=_JOB_LIMIT)
def run_export_job(tenant_id: int, job_id: int) -> str:
    job = services.export_job_run(tenant_id=tenant_id, job_id=job_id)
    return job.status if job else "skipped: already claimed"


@shared_task(acks_late=True)
def expire_export_jobs() -> int:
    return services.export_jobs_expire()


@shared_task(acks_late=True)
def enqueue_due_deliveries() -> int:
    return delivery.report_deliveries_enqueue()


@shared_task(
    acks_late=True,
    autoretry_for=(SMTPException, OSError),
    retry_backoff=60,
    retry_backoff_max=1800,
    max_retries=6,
    soft_time_limit=_JOB_LIMIT - 60,
    time_limit=_JOB_LIMIT,
)
def send_report_delivery(tenant_id: int, delivery_id: int) -> str:
    return delivery.report_delivery_send(tenant_id=tenant_id, delivery_id=delivery_id)
