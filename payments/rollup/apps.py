from django.apps import AppConfig


class RollupConfig(AppConfig):
    """The daily rollup the finance reports read: totals per tenant, local day, connector
    and currency, kept current by the transactions that change pay sessions and the
    Stripe mirror (payments/rollup/sources.py says which, and why)."""

    name = "payments.rollup"
    label = "rollup"
