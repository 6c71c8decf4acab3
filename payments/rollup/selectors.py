"""Reads of the daily rollup, and its comparison with the rows (`tenant` required)."""

from collections import Counter
from datetime import date

from django.db import connection, transaction

from payments.rollup import sources
from payments.rollup.models import DailyRollup, RollupState
from payments.rollup.sources import COLUMNS, Key, Totals
from tenants.models import Tenant


def _totals(row: DailyRollup) -> Totals:
    return Totals(**{c: getattr(row, c) for c in COLUMNS}, failures=Counter(row.failures or {}))


def rollup_current(*, tenant: Tenant) -> bool:
    """Built, and in the tenant's time zone: only then does it answer for the tenant."""
    return RollupState.objects.filter(tenant=tenant, time_zone=tenant.time_zone).exists()


def rollup_days(
    *,
    tenant: Tenant,
    first: date | None,
    last: date | None,
    connector_ids: list[int] | None = None,
    currency: str = "",
) -> list[tuple[Key, Totals]] | None:
    """The rollup's rows for local days first..last (inclusive; None: open), at most one
    per day, connector and currency, in that order. None when the rollup cannot answer
    for the tenant now (not built yet, or built in another time zone): read the rows."""
    if not rollup_current(tenant=tenant):
        return None
    rows = DailyRollup.objects.filter(tenant=tenant)
    if first is not None:
        rows = rows.filter(day__gte=first)
    if last is not None:
        rows = rows.filter(day__lte=last)
    if connector_ids is not None:
        rows = rows.filter(connector_id__in=connector_ids)
    if currency:
        rows = rows.filter(currency=currency)
    out = [((r.day, r.connector_id, r.currency), _totals(r)) for r in rows.order_by("day", "connector_id", "currency")]
    return [(key, totals) for key, totals in out if not totals.is_zero()]


def rollup_differences(*, tenant: Tenant) -> list[tuple[Key, Totals | None, Totals | None]] | None:
    """Where the stored rollup and the rows disagree: (key, stored, from the rows), both
    read in one snapshot. None when the tenant's rollup is not built in its time zone."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # one snapshot for both reads
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        state = RollupState.objects.filter(tenant=tenant).first()
        if state is None or state.time_zone != tenant.time_zone:
            return None
        stored = {(r.day, r.connector_id, r.currency): _totals(r) for r in DailyRollup.objects.filter(tenant=tenant)}
        stored = {key: totals for key, totals in stored.items() if not totals.is_zero()}
        direct = sources.aggregate(tenant_id=tenant.pk, zone=state.time_zone)
    return [
        (key, stored.get(key), direct.get(key))
        for key in sorted(set(stored) | set(direct))
        if (stored.get(key) or Totals()).as_tuple() != (direct.get(key) or Totals()).as_tuple()
    ]
