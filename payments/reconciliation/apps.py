from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    """Stripe mirror per connector, matching with pay sessions, exceptions queue."""

    name = "payments.reconciliation"
    label = "reconciliation"
