from django.apps import AppConfig


class PartnerWebhooksConfig(AppConfig):
    """Partner webhooks: endpoints per tenant, signed deliveries of the outbox's events
    (Standard Webhooks), retries, the delivery log (docs/partner-webhooks.md)."""

    name = "payments.partner_webhooks"
    label = "partner_webhooks"
    verbose_name = "Partner webhooks"

    def ready(self):
        # The outbox sits below every app that records events; it wakes the dispatcher
        # through this hook, so it never imports this app.
        from payments.outbox.services import on_events_committed
        from payments.partner_webhooks.tasks import wake_dispatcher

        on_events_committed(wake_dispatcher)
