from django.core.management.base import CommandError

from tenants.management.cli import OperatorCommand
from tenants.models import Scope, Tenant
from tenants.services import Actor, api_key_create


class Command(OperatorCommand):
    help = "Create an API key for a partner app. The key is printed once and never again."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            help=f"Repeat for several; one of {', '.join(Scope.values)}. Default: tenant, connectors and payments.",
        )

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {options['tenant']!r}.")
        key, raw_key = api_key_create(
            tenant=tenant, name=options["name"], scopes=options["scopes"], actor=Actor.system("cli")
        )
        self.emit(
            options,
            {"id": key.uuid, "tenant": tenant.slug, "name": key.name, "scopes": key.scopes, "key": raw_key},
            f"API key {key.name!r} for {tenant.slug} (scopes: {', '.join(key.scopes)}):\n{raw_key}\n"
            "Store it now: it is not shown again.",
        )
