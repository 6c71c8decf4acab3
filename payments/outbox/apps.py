from django.apps import AppConfig


class OutboxConfig(AppConfig):
    """The event outbox: every event partners can be told about, written in the same
    transaction as the change it describes (docs/partner-webhooks.md). It sits below the
    pay-session app so that every app's services can record their events; the partner
    webhooks app, above, delivers them."""

    name = "payments.outbox"
    label = "outbox"
    verbose_name = "Events (outbox)"
