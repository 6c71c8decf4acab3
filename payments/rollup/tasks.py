"""Thin Celery tasks."""

from celery import shared_task

from payments.rollup import services


@shared_task(acks_late=True)
def rebuild_stale_rollups() -> int:
    """Beat's: build the rollup of new tenants and of those whose time zone changed."""
    return len(services.rollup_rebuild_stale())
