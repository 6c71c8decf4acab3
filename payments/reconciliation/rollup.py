"""The Stripe mirror's part of the daily rollup (payments/rollup/sources.py): refunds,
fees and net of the charges that name a pay session of their connector.

- fees, net: Stripe's, from each such charge's balance transaction, on the session's
  local day, in the balance transaction's currency;
- refunds: each succeeded refund of such a charge, on the local day Stripe made it, in
  the refund's currency.

Kept by refreshing: `mirror_upsert` calls `refresh_for_changes` with what it changed, in
its transaction, and the days those rows touch are recomputed from the rows. The mirror
links rows by Stripe ids (a refund or a balance transaction can arrive before its
charge), so no single write knows what it adds; the days it touches can always be found.
"""

from django.db import connection
from django.db.models import Q

from connectors.models import ConnectorInstance
from payments.reconciliation.models import StripeBalanceTransaction, StripeCharge, StripeRefund
from payments.rollup import services as rollup
from payments.rollup.sources import Totals, sessions_relation, spans_sql
from payments.sessions.models import PaySession

_SESSIONS = PaySession._meta.db_table
_CHARGES = StripeCharge._meta.db_table
_TXNS = StripeBalanceTransaction._meta.db_table
_REFUNDS = StripeRefund._meta.db_table


def aggregate(*, tenant_id: int, zone: str, spans=None, sessions=None):
    relation, relation_params = sessions_relation(_SESSIONS, sessions)
    by_created, params = spans_sql("s.created_at", zone, spans)
    fees = f"""
        SELECT (s.created_at AT TIME ZONE %s)::date, s.connector_id, upper(bt.currency), sum(bt.fee), sum(bt.net)
        FROM {relation} s
        JOIN {_CHARGES} ch
          ON ch.tenant_id = s.tenant_id AND ch.connector_id = s.connector_id AND ch.paydesk_ref = s.uuid
        JOIN {_TXNS} bt
          ON bt.tenant_id = s.tenant_id AND bt.connector_id = s.connector_id
         AND bt.stripe_id = ch.balance_transaction_id
        WHERE s.tenant_id = %s AND ch.balance_transaction_id <> '' AND {by_created}
        GROUP BY 1, 2, 3
    """  # noqa: S608 - table names and generated predicates; every value is a parameter
    with connection.cursor() as cursor:
        cursor.execute(fees, [zone, *relation_params, tenant_id, *params])
        for day, connector_id, currency, fee, net in cursor.fetchall():
            yield (day, connector_id, currency), Totals(fees=int(fee), net=int(net))


def refresh_for_changes(connector: ConnectorInstance, changed: dict[str, set]) -> None:
    """Recompute the rollup's days that rows changed by mirror_upsert count on: the
    sessions' days of the charges changed (directly, or through their balance
    transaction or payment intent), and the days of their refunds and of the refunds
    changed. Disputes and payouts count in no column."""
    charges = set(changed.get("charge", ()))
    txns, intents = changed.get("balance_transaction", set()), changed.get("payment_intent", set())
    refunds = set(changed.get("refund", ()))
    if not (charges or txns or intents or refunds):
        return
    tenant_id = connector.tenant_id
    if txns or intents:
        charges |= set(
            StripeCharge.objects.filter(tenant_id=tenant_id, connector=connector)
            .filter(Q(balance_transaction_id__in=txns) | Q(payment_intent_id__in=intents))
            .values_list("stripe_id", flat=True)
        )
    sql = f"""
        SELECT s.created_at FROM {_CHARGES} ch
        JOIN {_SESSIONS} s
          ON s.tenant_id = ch.tenant_id AND s.connector_id = ch.connector_id AND s.uuid = ch.paydesk_ref
        WHERE ch.tenant_id = %(t)s AND ch.connector_id = %(c)s AND ch.stripe_id = ANY(%(charges)s)
        UNION
        SELECT rf.created FROM {_REFUNDS} rf
        WHERE rf.tenant_id = %(t)s AND rf.connector_id = %(c)s
          AND (rf.stripe_id = ANY(%(refunds)s) OR rf.charge_id = ANY(%(charges)s))
    """  # noqa: S608 - table names only; every value is a parameter
    with connection.cursor() as cursor:
        cursor.execute(sql, {"t": tenant_id, "c": connector.pk, "charges": sorted(charges), "refunds": sorted(refunds)})
        instants = [row[0] for row in cursor.fetchall()]
    rollup.rollup_refresh(tenant_id=tenant_id, instants=instants)
