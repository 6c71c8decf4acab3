from django.core.management.base import CommandError

from connectors.models import ConnectorInstance
from connectors.services import connector_create
from tenants.management.cli import OperatorCommand
from tenants.models import Tenant
from tenants.services import Actor


class Command(OperatorCommand):
    help = "Record a Pay Connector instance installed in the tenant's Twilio Console."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--unique-name", required=True, help="Exactly as in the Twilio Console, e.g. Stripe_Prod.")
        parser.add_argument("--environment", required=True, choices=ConnectorInstance.Environment.values)
        parser.add_argument("--stripe-secret-key", required=True, help="sk_/rk_ key matching the environment's mode.")
        parser.add_argument("--webhook-secret", default="", help="Stripe webhook signing secret (whsec_…).")
        parser.add_argument("--notes", default="")

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {options['tenant']!r}.")
        connector = connector_create(
            tenant=tenant,
            unique_name=options["unique_name"],
            environment=options["environment"],
            stripe_secret_key=options["stripe_secret_key"],
            stripe_webhook_secret=options["webhook_secret"],
            notes=options["notes"],
            actor=Actor.system("cli"),
        )
        self.emit(
            options,
            {
                "id": connector.uuid,
                "tenant": tenant.slug,
                "unique_name": connector.unique_name,
                "environment": connector.environment,
                "mode": connector.mode,
                "stripe_secret_key_last4": connector.stripe_secret_key_last4,
            },
            f"Added connector {connector.unique_name} ({connector.environment}, {connector.mode} mode) "
            f"to {tenant.slug}.",
        )
