from tenants.management.cli import OperatorCommand
from tenants.services import Actor, tenant_create


class Command(OperatorCommand):
    help = "Create a tenant (a business) with its Twilio account."

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--twilio-account-sid", required=True, help="AC followed by 32 hex characters.")
        parser.add_argument("--twilio-auth-token", required=True, help="Stored encrypted; never printed.")
        parser.add_argument("--time-zone", default="UTC", help="IANA name, e.g. America/New_York.")
        parser.add_argument("--default-currency", default="USD", help="ISO 4217 code.")

    def handle(self, *args, **options):
        tenant = tenant_create(
            slug=options["slug"],
            name=options["name"],
            twilio_account_sid=options["twilio_account_sid"],
            twilio_auth_token=options["twilio_auth_token"],
            time_zone=options["time_zone"],
            default_currency=options["default_currency"],
            actor=Actor.system("cli"),
        )
        self.emit(
            options,
            {"id": tenant.uuid, "slug": tenant.slug, "name": tenant.name, "status": tenant.status},
            f"Created tenant {tenant.slug} ({tenant.uuid}).",
        )
