from django.apps import AppConfig


class RefundsConfig(AppConfig):
    """Full and partial refunds of pay sessions through the connector's Stripe account."""

    name = "payments.refunds"
    label = "refunds"

    def ready(self):
        # What the pay-session API and admin show of refunds, plugged in from here so that
        # the pay-session app never imports this one (docs/architecture.md).
        from payments.refunds import rollup
        from payments.refunds.admin import refunds_panel
        from payments.refunds.api.serializers import AmountRefundedField, RefundableAmountField
        from payments.rollup import sources
        from payments.sessions import extensions

        extensions.register_api_field("amount_refunded", AmountRefundedField)
        extensions.register_api_field("refundable_amount", RefundableAmountField)
        extensions.register_admin_form("refunds", title="Refunds", label="Refunds", render=refunds_panel)
        # The refunds of the daily rollup: refund rows, recomputed by day in their own
        # transactions (rollup.py).
        sources.register("refunds", columns=["refunds"], kept_by=sources.REFRESH, aggregate=rollup.aggregate)
