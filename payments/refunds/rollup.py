"""The refunds column of the daily rollup (payments/rollup/sources.py).

Refund rows are the one record of refunds: those made through Paydesk, and those
reconciliation finds made in Stripe's dashboard (recorded as `origin=stripe`). A refund
counts when it succeeded, on the local day Stripe made it (`refunded_at`), in its
currency. Kept current by recomputing its day in every transaction that changes a
refund (services._refund_changed)."""

from django.db import connection

from payments.refunds.models import Refund
from payments.rollup.sources import Totals, sessions_relation, spans_sql
from payments.sessions.models import PaySession


def aggregate(*, tenant_id: int, zone: str, spans=None, sessions=None):
    relation, relation_params = sessions_relation(PaySession._meta.db_table, sessions)
    by_refunded, params = spans_sql("r.refunded_at", zone, spans)
    sql = f"""
        SELECT (r.refunded_at AT TIME ZONE %s)::date, r.connector_id, upper(r.currency), sum(r.amount_minor)
        FROM {Refund._meta.db_table} r
        JOIN {relation} s ON s.id = r.session_id
        WHERE r.tenant_id = %s AND r.status = 'succeeded' AND r.refunded_at IS NOT NULL AND {by_refunded}
        GROUP BY 1, 2, 3
    """  # noqa: S608 - table names and generated predicates; every value is a parameter
    with connection.cursor() as cursor:
        cursor.execute(sql, [zone, *relation_params, tenant_id, *params])
        for day, connector_id, currency, amount in cursor.fetchall():
            yield (day, connector_id, currency), Totals(refunds=int(amount))
