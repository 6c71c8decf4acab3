"""Thin Celery tasks: ids in, one service call each."""

import logging

from celery import shared_task

from connectors.models import ConnectorInstance
from payments.reconciliation import services, sync

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def sync_all_connectors(mode: str = sync.INCREMENTAL) -> int:
    """The schedule's entry point: one task per connector due (unhealthy ones wait)."""
    due = services.connectors_due()
    for tenant_id, connector_id in due:
        sync_connector.delay(tenant_id, connector_id, mode)
    return len(due)


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(services.TransientStripeError,),
    retry_backoff=30,  # 30 s, 60 s, 120 s … with jitter; each retry resumes from the cursors
    retry_backoff_max=900,
    retry_jitter=True,
    max_retries=8,
)
def sync_connector(self, tenant_id: int, connector_id: int, mode: str = sync.INCREMENTAL, full: bool = False) -> dict:
    connector = ConnectorInstance.objects.filter(pk=connector_id, tenant_id=tenant_id).select_related("tenant").first()
    if connector is None:
        return {"skipped": "no such connector in this tenant"}
    try:
        result = services.connector_reconcile(
            connector=connector, mode=mode, full=full, budget_seconds=services.task_budget_seconds()
        )
    except sync.SyncBusy:
        if mode == sync.NIGHTLY or full:  # this run must happen: after the one in progress
            raise self.retry(countdown=60) from None
        return {"skipped": "busy"}  # the run in progress covers it
    if not result.complete:  # out of time: continue in a fresh task from the cursors
        sync_connector.apply_async((tenant_id, connector_id, mode, full))
    return result.as_dict()


@shared_task(acks_late=True)
def reconcile_after_results(tenant_id: int, connector_id: int) -> dict:
    """Queued by services.reconcile_soon when payments got their result. Best effort: the
    schedule is the safety net, so a busy connector or an unavailable Stripe only logs
    (this may run inside the request that delivered the result, when tasks are in-process)."""
    services.reconcile_soon_started(connector_id=connector_id)
    connector = ConnectorInstance.objects.filter(pk=connector_id, tenant_id=tenant_id).select_related("tenant").first()
    if connector is None or not connector.is_active:
        return {"skipped": "no such active connector in this tenant"}
    try:
        return services.connector_reconcile(
            connector=connector, budget_seconds=services.task_budget_seconds()
        ).as_dict()
    except (sync.SyncBusy, services.TransientStripeError) as exc:
        logger.info("reconciling connector %s after results skipped: %s", connector_id, exc)
        return {"skipped": str(exc)}


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, retry_backoff_max=60, max_retries=8)
def apply_stripe_event(tenant_id: int, event_pk: int) -> str:
    return services.stripe_event_apply(tenant_id=tenant_id, event_pk=event_pk)
