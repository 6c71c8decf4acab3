"""Thin Celery tasks: ids in, one service call."""

from celery import shared_task

from payments.sessions import services

# Task names are those of the time before payments/ became a package (payments/tasks.py):
# beat's rows and messages already queued name them.


@shared_task(
    name="payments.tasks.apply_pending_pay_events",
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=8,
)
def apply_pending_pay_events() -> int:
    """Woken by callbacks (one queued run at a time) and by beat as a backstop. Works from
    the table, not from ids: every stored callback not yet applied, whatever its tenant."""
    run = services.pay_events_apply_pending()
    if run.more_waiting:
        apply_pending_pay_events.delay()  # a fresh run carries on, holding the wake-up flag
    return run.applied


@shared_task(name="payments.tasks.expire_pay_sessions", acks_late=True)
def expire_pay_sessions() -> int:
    return services.pay_sessions_expire()
