"""Thin Celery tasks: ids in, one service call each."""

from celery import shared_task

from payments.refunds import services


@shared_task(acks_late=True)
def follow_up_due_refunds() -> int:
    """Beat's entry point: one task per pending refund due for another look at Stripe."""
    due = services.refunds_due_for_follow_up()
    for tenant_id, refund_id in due:
        follow_up_refund.delay(tenant_id, refund_id)
    return len(due)


@shared_task(acks_late=True)
def follow_up_refund(tenant_id: int, refund_id: int) -> str:
    return services.refund_follow_up(tenant_id=tenant_id, refund_id=refund_id)
