from django.apps import AppConfig


class PaySessionsConfig(AppConfig):
    """Agent-assisted pay sessions: PaySession, PayEvent, Twilio's status callbacks.

    The label stays "payments", as it was before payments/ became a package of peer apps:
    tables, migrations, content types and admin URLs keep their names."""

    name = "payments.sessions"
    label = "payments"

    def ready(self):
        from payments.rollup import sources
        from payments.sessions import rollup

        sources.register(
            "pay_sessions",
            columns=["sessions", "succeeded", "failed", "gross"],
            kept_by=sources.INCREMENTS,
            aggregate=rollup.aggregate,
        )
