"""Thin Celery tasks: ids in, one service call."""

from celery import shared_task

from payments import services


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, retry_backoff_max=60, max_retries=8)
def apply_pay_events(tenant_id: int, session_id: int) -> int:
    return services.pay_session_apply_events(tenant_id=tenant_id, session_id=session_id)


@shared_task(acks_late=True)
def expire_pay_sessions() -> int:
    return services.pay_sessions_expire()


@shared_task(acks_late=True)
def apply_stale_pay_events() -> int:
    return services.pay_events_apply_stale()
