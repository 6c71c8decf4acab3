"""Thin Celery tasks: ids in, one service call; the task decides whether work continues."""

from celery import shared_task

from payments.partner_webhooks import delivery


def wake_dispatcher() -> None:
    """After a commit that recorded events (payments.outbox): queue a dispatcher run
    unless one is queued or running."""
    if delivery.take_dispatch_flag():
        dispatch_webhook_events.delay()


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, retry_backoff_max=60, max_retries=8)
def dispatch_webhook_events() -> int:
    """Fan out recorded events into deliveries; each endpoint given new deliveries gets a
    send run at once, while the next batch is fanned out."""
    dispatched = 0
    for _ in range(delivery.DISPATCH_MAX_BATCHES):
        run = delivery.events_dispatch()
        dispatched += run.events
        for tenant_id, endpoint_id in sorted(run.endpoints):
            send_webhooks.delay(tenant_id, endpoint_id)
        if not run.more_waiting and delivery.dispatcher_may_stop():
            return dispatched
    dispatch_webhook_events.delay()  # a fresh run carries on, holding the flag
    return dispatched


@shared_task(acks_late=True)
def send_webhooks(tenant_id: int, endpoint_id: int) -> int:
    """Send an endpoint's due deliveries. The next retry, when it is due soon, gets a run
    queued for its time (one per endpoint); a later one is left to the sweep (Redis holds
    long countdowns badly: they come back after the broker's visibility timeout). Run
    eagerly (tests, the first run) nothing is queued for later: time is the caller's."""
    from payments.partner_webhooks.models import WebhookEndpoint

    if not WebhookEndpoint.objects.filter(pk=endpoint_id, tenant_id=tenant_id).exists():
        return 0
    run = delivery.endpoint_send_due(endpoint_id=endpoint_id)
    if run.more_waiting:
        send_webhooks.delay(tenant_id, endpoint_id)
    if not send_webhooks.request.is_eager:
        at = delivery.follow_up_at(endpoint_id=endpoint_id)
        if at is not None:
            send_webhooks.apply_async((tenant_id, endpoint_id), eta=at)
    return run.sent


@shared_task(acks_late=True)
def sweep_webhooks() -> int:
    """Backstop and long retries: fan out events whose wake-up was lost, and send every
    endpoint's due deliveries (retries whose time has come, attempts whose worker died)."""
    if delivery.events_waiting():
        wake_dispatcher()
    due = delivery.endpoints_due()
    for tenant_id, endpoint_id in due:
        send_webhooks.delay(tenant_id, endpoint_id)
    return len(due)


@shared_task(acks_late=True)
def purge_webhook_history() -> int:
    return delivery.webhook_history_purge()
