from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """Finance reports and exports: CSV/XLSX, daily summaries, payouts, charts."""

    name = "payments.reports"
    label = "reports"
