from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    """Stripe mirror per connector, matching with pay sessions, exceptions queue."""

    name = "payments.reconciliation"
    label = "reconciliation"

    def ready(self):
        # What the pay-session API and admin show of reconciliation, plugged in from here
        # so that the pay-session app never imports this one.
        from payments.reconciliation import rollup
        from payments.reconciliation.admin.panel import reconciliation_panel, reconciliation_state
        from payments.reconciliation.api.serializers import SessionReconciliationField
        from payments.reconciliation.services import reconcile_soon
        from payments.rollup import sources
        from payments.sessions import extensions

        extensions.register_api_field("reconciliation", lambda: SessionReconciliationField(source="*", read_only=True))
        extensions.register_admin_panel(
            "reconciliation", title="Reconciliation with Stripe", label="Reconciliation", render=reconciliation_panel
        )
        extensions.register_summary_line("reconciliation", label="Reconciliation", render=reconciliation_state)
        # Payments get reconciled within seconds of their result, not at the next scheduled run.
        extensions.register_result_listener(reconcile_soon)
        # Fees and net of the daily rollup, from the Stripe mirror (rollup.py). Refunds come
        # from the refund rows (payments.refunds), which record Stripe's refunds too.
        sources.register("stripe_mirror", columns=["fees", "net"], kept_by=sources.REFRESH, aggregate=rollup.aggregate)
