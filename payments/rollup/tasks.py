"""Thin Celery tasks."""

from celery import shared_task
from django.conf import settings

from payments.rollup import services

# A tenant's whole history is summed in one transaction: minutes for the largest.
_REBUILD_LIMIT = settings.PAYDESK_ROLLUP_REBUILD_TIME_LIMIT


@shared_task(acks_late=True)
def rebuild_stale_rollups() -> int:
    """Beat's: a rebuild for each tenant whose rollup is not kept in its time zone (a new
    tenant, or one whose zone changed), each its own task."""
    stale = services.rollup_stale_tenants()
    for tenant_id in stale:
        rebuild_rollup.delay(tenant_id)
    return len(stale)


@shared_task(acks_late=True, soft_time_limit=_REBUILD_LIMIT - 60, time_limit=_REBUILD_LIMIT)
def rebuild_rollup(tenant_id: int) -> bool:
    """Rebuild one tenant's rollup unless it is current already (beat may have queued
    it again while an earlier rebuild ran)."""
    return services.rollup_rebuild_if_stale(tenant_id=tenant_id)
