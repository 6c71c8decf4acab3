"""The pay sessions' part of the daily rollup (payments/rollup/sources.py): sessions,
succeeded, failed by reason, gross, per local day of creation.

Kept by increments: services.py calls `count_created` in the transaction that creates a
session and `count_ended` in the one that moves it to a terminal status (which never
changes again). `aggregate` is the same sum straight from the table, for builds and checks.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable

from django.db import connection

from payments.rollup import services as rollup
from payments.rollup.sources import Totals, sessions_relation, spans_sql
from payments.sessions.models import PaySession

Status = PaySession.Status
FAILED = (Status.FAILED, Status.CANCELLED, Status.EXPIRED)

# A session's outcome: "succeeded", a failure reason (Twilio's result, else the status),
# or "" while it is in progress. The SQL and the Python say the same thing.
_OUTCOME_SQL = """
    CASE WHEN s.status = 'succeeded' THEN 'succeeded'
         WHEN s.status IN ('failed', 'cancelled', 'expired') THEN COALESCE(NULLIF(s.result, ''), s.status)
         ELSE '' END
"""


def outcome(status: str, result: str) -> str:
    if status == Status.SUCCEEDED:
        return "succeeded"
    if status in FAILED:
        return result or status
    return ""


def _ended(outcome_: str, n: int, gross: int) -> Totals:
    if outcome_ == "succeeded":
        return Totals(succeeded=n, gross=gross)
    if outcome_:
        return Totals(failed=n, failures=Counter({outcome_: n}))
    return Totals()


def count_created(session: PaySession) -> None:
    rollup.rollup_apply(
        tenant_id=session.tenant_id,
        deltas=[(session.created_at, session.connector_id, session.currency, Totals(sessions=1))],
    )


def count_ended(sessions: Iterable[PaySession]) -> None:
    """Sessions that have just reached a terminal status (their status and result as
    saved), of any tenants: one rollup write per tenant, in tenant order."""
    by_tenant = defaultdict(list)
    for s in sessions:
        gross = s.amount_minor or 0
        by_tenant[s.tenant_id].append(
            (s.created_at, s.connector_id, s.currency, _ended(outcome(s.status, s.result), 1, gross))
        )
    for tenant_id in sorted(by_tenant):
        rollup.rollup_apply(tenant_id=tenant_id, deltas=by_tenant[tenant_id])


def aggregate(*, tenant_id: int, zone: str, spans=None, sessions=None):
    relation, relation_params = sessions_relation(PaySession._meta.db_table, sessions)
    where, params = spans_sql("s.created_at", zone, spans)
    sql = f"""
        SELECT (s.created_at AT TIME ZONE %s)::date, s.connector_id, s.currency, {_OUTCOME_SQL},
               count(*), COALESCE(sum(s.amount_minor), 0)
        FROM {relation} s
        WHERE s.tenant_id = %s AND {where}
        GROUP BY 1, 2, 3, 4
    """  # noqa: S608 - table name and generated predicates; every value is a parameter
    with connection.cursor() as cursor:
        cursor.execute(sql, [zone, *relation_params, tenant_id, *params])
        for day, connector_id, currency, outcome_, n, gross in cursor.fetchall():
            totals = _ended(outcome_, n, int(gross))
            totals.sessions = n
            yield (day, connector_id, currency), totals
