"""Every write to the daily rollup (sources.py says which transactions call which, and why).

- `rollup_apply`: add what a transaction changed (increments), in that transaction.
- `rollup_refresh`: recompute the refresh-kept columns of the days some instants fall
  on, from the rows, in the transaction that changed them.
- `rollup_rebuild`: a tenant's whole rollup from the rows, in its current time zone (its
  first build, after a change of time zone, or to repair what the check found).

Concurrency. Every write takes a per-tenant advisory lock for the rest of its
transaction: shared for increments and refreshes, exclusive for a rebuild, which thus
sees every row those committed and is never written over by one that read the old time
zone. Refreshes of the same days also exclude each other (an exclusive lock per tenant
and day): each reads the rows only once the one before it has committed. Increments and
refreshes write different columns, and each write is a single INSERT … ON CONFLICT
statement with its rows in key order, so they neither lose each other's changes nor
deadlock on the rows.
"""

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from payments.rollup import sources
from payments.rollup.models import DailyRollup, RollupState
from payments.rollup.sources import COLUMNS, INCREMENTS, REFRESH, Key, Totals
from tenants.models import Tenant

# Advisory lock keys: (LOCK_SPACE, tenant id) in the two-key space for a tenant; one
# bigint per tenant and day for a day (a separate key space in PostgreSQL).
LOCK_SPACE = 0x726F6C6C  # "roll"
_DAY_BITS = 20  # date.toordinal() < 2**20 until the year 2870
UPSERT_BATCH = 1000


def _in_transaction(what: str) -> None:
    if not connection.in_atomic_block:
        raise RuntimeError(f"{what} must run in the transaction that changes the rows it counts")


def _lock_tenant(cursor, tenant_id: int, *, exclusive: bool) -> None:
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    cursor.execute(f"SELECT {function}(%s, %s)", [LOCK_SPACE, tenant_id])


def _lock_days(cursor, tenant_id: int, days) -> None:
    keys = sorted((tenant_id << _DAY_BITS) + day.toordinal() for day in days)  # one order for every writer
    cursor.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k", [keys])


def _zone(cursor, tenant_id: int) -> str | None:
    """The zone the tenant's rollup is kept in; None until its first build."""
    cursor.execute(f"SELECT time_zone FROM {RollupState._meta.db_table} WHERE tenant_id = %s", [tenant_id])  # noqa: S608
    row = cursor.fetchone()
    return row[0] if row else None


def rollup_apply(*, tenant_id: int, deltas: Iterable[tuple[datetime, int, str, Totals]]) -> None:
    """Add totals to the rollup: (instant that decides the day, connector id, currency,
    totals) each. Call it in the transaction that changes the rows it counts."""
    deltas = list(deltas)
    if not deltas:
        return
    _in_transaction("rollup_apply")
    with connection.cursor() as cursor:
        _lock_tenant(cursor, tenant_id, exclusive=False)
        zone = _zone(cursor, tenant_id)
        if zone is None:
            return  # not built yet: its first build will count these rows
        grouped: dict[Key, Totals] = defaultdict(Totals)
        for instant, connector_id, currency, totals in deltas:
            grouped[(sources.local_day(instant, zone), connector_id, currency)].add(totals)
        _upsert(cursor, tenant_id, grouped, columns=sources.columns(INCREMENTS), add=True)


def rollup_refresh(*, tenant_id: int, instants: Iterable[datetime | None]) -> None:
    """Recompute, from the rows, the refresh-kept columns (refunds, fees, net) of the local
    days these instants fall on. Call it in the transaction that changed those rows."""
    instants = [i for i in instants if i is not None]
    if not instants:
        return
    _in_transaction("rollup_refresh")
    refreshed = sources.columns(REFRESH)
    with connection.cursor() as cursor:
        _lock_tenant(cursor, tenant_id, exclusive=False)
        zone = _zone(cursor, tenant_id)
        if zone is None:
            return
        days = sorted({sources.local_day(i, zone) for i in instants})
        _lock_days(cursor, tenant_id, days)
        fresh = sources.aggregate(tenant_id=tenant_id, zone=zone, spans=sources.spans_of(days), kept_by=REFRESH)
        nonzero = " OR ".join(f"{c} <> 0" for c in refreshed)
        cursor.execute(
            f"SELECT day, connector_id, currency FROM {DailyRollup._meta.db_table}"  # noqa: S608
            f" WHERE tenant_id = %s AND day = ANY(%s) AND ({nonzero})",
            [tenant_id, days],
        )
        for key in cursor.fetchall():
            fresh.setdefault(tuple(key), Totals())  # what counted there before and no longer does
        _upsert(cursor, tenant_id, fresh, columns=refreshed, add=False)


def rollup_rebuild(*, tenant_id: int) -> int:
    """The tenant's whole rollup from the rows, in its time zone as it is now. Returns the
    number of rows. Increments and refreshes of the tenant wait while it runs."""
    with transaction.atomic(), connection.cursor() as cursor:
        _lock_tenant(cursor, tenant_id, exclusive=True)
        zone = Tenant.objects.filter(pk=tenant_id).values_list("time_zone", flat=True).get()
        rows = sources.aggregate(tenant_id=tenant_id, zone=zone)
        cursor.execute(f"DELETE FROM {DailyRollup._meta.db_table} WHERE tenant_id = %s", [tenant_id])  # noqa: S608
        _upsert(cursor, tenant_id, rows, columns=list(COLUMNS), add=False)
        RollupState.objects.update_or_create(
            tenant_id=tenant_id, defaults={"time_zone": zone, "built_at": timezone.now()}
        )
    return len(rows)


def rollup_stale_tenants(tenant_ids: list[int] | None = None) -> list[int]:
    """Tenants (of `tenant_ids`, or all) whose rollup is not kept in their time zone: never
    built, or the zone changed since."""
    current = RollupState.objects.filter(tenant_id=OuterRef("pk"), time_zone=OuterRef("time_zone"))
    tenants = Tenant.objects.filter(~Exists(current))
    if tenant_ids is not None:
        tenants = tenants.filter(pk__in=tenant_ids)
    return list(tenants.order_by("pk").values_list("pk", flat=True))


def rollup_rebuild_if_stale(*, tenant_id: int) -> bool:
    """Rebuild the tenant's rollup if it is stale; False when it was current already."""
    if not rollup_stale_tenants([tenant_id]):
        return False
    rollup_rebuild(tenant_id=tenant_id)
    return True


# --- The one statement that writes -----------------------------------------------------

_FAILURES_SUM = """(
    SELECT COALESCE(jsonb_object_agg(reason, n), '{}'::jsonb) FROM (
        SELECT reason, sum(n) AS n FROM (
            SELECT key AS reason, value::bigint AS n FROM jsonb_each_text(r.failures)
            UNION ALL SELECT key, value::bigint FROM jsonb_each_text(EXCLUDED.failures)
        ) both_sides GROUP BY reason HAVING sum(n) <> 0
    ) summed
)"""


def _upsert(cursor, tenant_id: int, rows: dict[Key, Totals], *, columns: list[str], add: bool) -> None:
    """Write `columns` of `rows`: added to what is there (`add`), or in its place. New keys
    are inserted with the totals given (zero in the columns a source does not own)."""
    if not rows:
        return
    table = DailyRollup._meta.db_table
    with_failures = "failed" in columns
    if add:
        sets = [f"{c} = r.{c} + EXCLUDED.{c}" for c in columns]
        sets += [f"failures = {_FAILURES_SUM}"] if with_failures else []
    else:
        sets = [f"{c} = EXCLUDED.{c}" for c in columns] + (["failures = EXCLUDED.failures"] if with_failures else [])
    keys = sorted(rows)  # one order for every writer: no deadlock between two of them
    for start in range(0, len(keys), UPSERT_BATCH):
        batch = keys[start : start + UPSERT_BATCH]
        placeholders = "(%s, %s, %s, %s, " + ", ".join(["%s"] * len(COLUMNS)) + ", %s::jsonb)"
        params: list = []
        for key in batch:
            totals = rows[key]
            failures = {reason: n for reason, n in totals.failures.items() if n}
            params += [tenant_id, *key, *(getattr(totals, c) for c in COLUMNS), json.dumps(failures, sort_keys=True)]
        cursor.execute(
            f"INSERT INTO {table} AS r (tenant_id, day, connector_id, currency, {', '.join(COLUMNS)}, failures)"  # noqa: S608
            f" VALUES {', '.join([placeholders] * len(batch))}"
            f" ON CONFLICT (tenant_id, day, connector_id, currency) DO UPDATE SET {', '.join(sets)}",
            params,
        )
