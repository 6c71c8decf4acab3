"""manage.py reconcile [--tenant S] [--connector NAME] [--since DATE] [--nightly] [--json]

Syncs each chosen connector's Stripe mirror and matches its pay sessions, here and now
(not through a worker), with a progress bar on stderr.
"""

import sys
import time
from datetime import UTC, datetime

from django.core.management.base import CommandError
from django.utils.dateparse import parse_date, parse_datetime

from connectors.models import ConnectorInstance
from payments.reconciliation import services, sync
from tenants.management.cli import OperatorCommand


class ProgressBar:
    """Plain text on stderr: redrawn in place on a terminal, else a line per stage and at
    most one a second."""

    WIDTH = 30

    def __init__(self, stream, label: str):
        self.stream, self.label = stream, label
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.stage, self.last_line_at = None, 0.0

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if total:
            filled = self.WIDTH * done // total
            text = f"{self.label} {stage:<20} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{total}"
        else:
            text = f"{self.label} {stage:<20} {done} read"
        now = time.monotonic()
        finished = bool(total) and done >= total
        if self.tty:
            self.stream.write("\r" + text.ljust(79) + ("\n" if finished else ""))
        elif stage != self.stage or finished or now - self.last_line_at >= 1.0:
            self.stream.write(text + "\n")
            self.last_line_at = now
        self.stage = stage
        self.stream.flush()


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--since {value!r}: give a date (2025-01-31) or an ISO date-time.")
        moment = datetime(day.year, day.month, day.day)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(OperatorCommand):
    help = "Reconcile pay sessions with Stripe now: sync each connector's mirror, then match."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Tenant slug (default: every tenant).")
        parser.add_argument("--connector", help="Connector unique name (needs --tenant).")
        parser.add_argument("--since", help="Only Stripe objects and sessions created since this date.")
        parser.add_argument("--nightly", action="store_true", help="The nightly wide window instead of incremental.")

    def handle(self, *args, **options):
        if options["connector"] and not options["tenant"]:
            raise CommandError("--connector needs --tenant (connector names are unique per tenant).")
        since = _since(options["since"])
        connectors = (
            ConnectorInstance.objects.filter(is_active=True, provider=ConnectorInstance.Provider.STRIPE)
            .select_related("tenant")
            .order_by("tenant__slug", "unique_name")
        )
        if options["tenant"]:
            connectors = connectors.filter(tenant__slug=options["tenant"])
            if (
                not connectors.exists()
                and not ConnectorInstance.objects.filter(tenant__slug=options["tenant"]).exists()
            ):
                raise CommandError(f"No tenant {options['tenant']!r} with active connectors.")
        if options["connector"]:
            connectors = connectors.filter(unique_name=options["connector"])
            if not connectors.exists():
                raise CommandError(f"No active connector {options['connector']!r} in {options['tenant']!r}.")
        mode = sync.NIGHTLY if options["nightly"] else sync.INCREMENTAL
        results, failed = [], False
        for connector in connectors:
            label = f"{connector.tenant.slug}/{connector.unique_name}"
            entry = {"tenant": connector.tenant.slug, "connector": connector.unique_name}
            try:
                result = services.connector_reconcile(
                    connector=connector, mode=mode, since=since, full=True, progress=ProgressBar(self.stderr, label)
                )
                entry.update(result.as_dict())
                failed = failed or bool(result.error)
            except (sync.SyncBusy, services.TransientStripeError) as exc:
                entry["error"] = str(exc)
                failed = True
            entry.pop("connector_id", None)
            results.append(entry)
            if not options["json"]:
                self.stdout.write(_summary(label, entry))
        if options["json"]:
            self.emit(options, {"connectors": results}, "")
        if failed:
            sys.exit(1)


def _summary(label: str, entry: dict) -> str:
    if entry.get("error"):
        return f"{label}: FAILED: {entry['error']}"
    states = ", ".join(f"{k} {v}" for k, v in sorted(entry.get("states", {}).items())) or "no sessions to check"
    return (
        f"{label}: {entry['pages']} page(s), {entry['objects']} Stripe object(s); {states}; "
        f"{entry['stripe_only']} Stripe-only charge(s)"
    )
