"""Compare each tenant's daily rollup with the rows it sums; --fix rebuilds what differs.

    manage.py rollup_check [--tenant SLUG ...] [--fix]

Exits 1 when a difference remains (or a tenant's rollup is not built in its time zone
and --fix was not given), 0 when every rollup equals its rows.
"""

from django.core.management.base import BaseCommand, CommandError

from payments.rollup import selectors, services
from payments.rollup.sources import COLUMNS, Totals
from tenants.models import Tenant

SHOWN = 20


def _show(totals: Totals | None) -> str:
    if totals is None:
        return "—"
    failures = ", ".join(f"{k}: {v}" for k, v in sorted((+totals.failures).items()))
    return " ".join(f"{c}={getattr(totals, c)}" for c in COLUMNS) + (f" failures={{{failures}}}" if failures else "")


class Command(BaseCommand):
    help = "Compare each tenant's daily rollup with the rows it sums (--fix: rebuild what differs)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", action="append", default=[], metavar="SLUG", help="only these tenants")
        parser.add_argument("--fix", action="store_true", help="rebuild the rollup of a tenant that differs")

    def handle(self, *args, tenant, fix, **options):
        tenants = Tenant.objects.order_by("slug")
        if tenant:
            tenants = tenants.filter(slug__in=tenant)
            missing = set(tenant) - set(tenants.values_list("slug", flat=True))
            if missing:
                raise CommandError(f"No tenant {', '.join(sorted(missing))}.")
        failed = 0
        for t in tenants:
            differences = selectors.rollup_differences(tenant=t)
            if differences is None:
                self.stdout.write(f"{t.slug}: not built in its time zone ({t.time_zone}) yet")
            elif not differences:
                self.stdout.write(f"{t.slug}: equal to the rows")
                continue
            else:
                self.stdout.write(f"{t.slug}: {len(differences)} day(s) differ (stored | from the rows)")
                for (day, connector_id, currency), stored, direct in differences[:SHOWN]:
                    self.stdout.write(f"  {day} connector {connector_id} {currency}: {_show(stored)} | {_show(direct)}")
            if not fix:
                failed += 1
                continue
            rows = services.rollup_rebuild(tenant_id=t.pk)
            again = selectors.rollup_differences(tenant=t)
            self.stdout.write(f"  rebuilt: {rows} row(s); {'equal now' if again == [] else 'STILL DIFFERENT'}")
            failed += again != []
        if failed:
            raise CommandError(f"{failed} tenant(s) differ from their rows.", returncode=1)
