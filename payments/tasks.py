"""Thin Celery tasks: ids in, one service call."""

from celery import shared_task

from payments import services


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, retry_backoff_max=60, max_retries=8)
def apply_pending_pay_events() -> int:
    """Woken by callbacks (one queued run at a time) and by beat as a backstop. Works from
    the table, not from ids: every stored callback not yet applied, whatever its tenant."""
    return services.pay_events_apply_pending()


@shared_task(acks_late=True)
def expire_pay_sessions() -> int:
    return services.pay_sessions_expire()
