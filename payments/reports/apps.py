from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """Finance reports and exports: CSV/XLSX, daily summaries, payouts, charts."""

    name = "payments.reports"
    label = "reports"

    def ready(self):
        # The export actions of the pay-session list, plugged in from here so that the
        # pay-session app never imports this one.
        from payments.reports.admin_actions import export_actions
        from payments.sessions import extensions

        extensions.register_admin_actions(*export_actions)
