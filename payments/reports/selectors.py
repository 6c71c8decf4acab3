"""Reads for reports. `tenant` is required everywhere; every table in every query is
filtered by it, so no filter, join or id can bring in another tenant's row.

The payments export is ONE query, streamed (see _stream): the pay sessions (filtered with
the pay-session API's filters, through the ORM), their reconciliation record, and the
Stripe mirror joined in SQL (charge → balance transaction → payout, and the charge's
latest dispute). The mirror links rows by Stripe ids, not foreign keys, so
the joins are written out; each one is by (tenant, connector, Stripe id), which the
mirror's unique constraints index. The sessions' succeeded refunds are rows of their own,
dated when Stripe made them: a second streamed query, after the payment rows (two streams
cannot share a connection at once, and holding the refunds in memory to merge them would
make memory grow with the export).
"""

import itertools
import zoneinfo
from collections.abc import Iterator, Mapping
from datetime import UTC, date, timedelta

import psycopg
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import F, QuerySet, TextField
from django.db.models.functions import Cast
from django.shortcuts import get_object_or_404

from connectors.models import ConnectorInstance
from payments.reconciliation.filters import ReconciliationItemFilter
from payments.reconciliation.models import (
    ReconciliationItem,
    SessionReconciliation,
    StripeBalanceTransaction,
    StripeCharge,
    StripeDispute,
    StripePayout,
    StripeRefund,
)
from payments.reconciliation.selectors import item_list
from payments.refunds.models import Refund
from payments.reports.filters import ReportFilter, local_midnight
from payments.reports.models import ExportJob, SavedReport
from payments.rollup.selectors import rollup_days
from payments.rollup.sources import Totals, aggregate
from payments.sessions.models import PaySession
from tenants.models import Tenant

CHUNK_SIZE = 2000

# The payments query's columns, in order (exports.py shapes them into the report's columns).
PAYMENT_FIELDS = (
    "local",  # created_at in the tenant's time zone, to the second (naive); as text: date, then time
    "utc",  # created_at in UTC, to the second (naive); as text: 2025-01-31T23:30:00Z
    "tenant",
    "connector",
    "environment",
    "channel",
    "session_id",
    "call_sid",
    "payment_sid",
    "payment_method",
    "card_type",
    "card_last4",
    "amount_minor",
    "currency",
    "status",
    "result",
    "confirmation_code",
    "fee_minor",
    "net_minor",
    "settlement_currency",  # the balance transaction's: Stripe's fee and net are in it
    "refunded_minor",  # a refund row's amount; empty on a payment row
    "refund_currency",  # a refund row's currency
    "dispute_status",
    "payout_id",
    "payout_date",
    "reconciliation_state",
    "description",
    "row_type",  # "payment" (a pay session) or "refund" (one of its refunds, dated by Stripe)
    "refund_id",  # a refund row's Stripe refund id
)


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _stream(sql: str, params: list, chunk_size: int) -> Iterator[tuple]:
    """Rows of one query as PostgreSQL sends them, `chunk_size` at a time (libpq's chunked
    rows mode): constant memory, one statement and so one snapshot.

    Not a DECLAREd cursor: PostgreSQL plans those for the first rows (cursor_tuple_fraction)
    and never runs them in parallel, which made the same query twice as slow here. If the
    reader stops early (a client hangs up), psycopg cancels the query.
    """
    size = chunk_size if psycopg.pq.version() >= 170000 else 1  # chunks need libpq 17
    with connection.cursor() as cursor:
        yield from cursor.cursor.stream(sql, params, size=size)


# --- Pay sessions -----------------------------------------------------------------------


def report_sessions(*, tenant: Tenant, filters: Mapping, session_ids=None) -> QuerySet[PaySession]:
    """The tenant's sessions that `filters` (the pay-session API's, plus local days) select."""
    filterset = ReportFilter(dict(filters), queryset=PaySession.objects.filter(tenant=tenant), tenant=tenant)
    if not filterset.is_valid():
        raise ValidationError({k: list(v) for k, v in filterset.errors.items()})
    sessions = filterset.qs
    if session_ids is not None:
        sessions = sessions.filter(pk__in=list(session_ids))
    return sessions


def payment_count(*, tenant: Tenant, filters: Mapping, session_ids=None) -> int:
    sessions = report_sessions(tenant=tenant, filters=filters, session_ids=session_ids).order_by().count()
    return sessions + report_refunds(tenant=tenant, filters=filters, session_ids=session_ids).count()


# The filters that pick days: a session's by its creation, a refund's by when Stripe made it.
_DATE_FILTERS = ("date_from", "date_to", "created_after", "created_before")


def report_refunds(*, tenant: Tenant, filters: Mapping, session_ids=None) -> QuerySet[Refund]:
    """The succeeded refunds a report counts: those of the sessions the other filters
    select, on the day Stripe made them (`refunded_at`): the date filters apply to that."""
    filters = dict(filters)
    checked = ReportFilter(filters, queryset=PaySession.objects.none(), tenant=tenant)
    if not checked.is_valid():
        raise ValidationError({k: list(v) for k, v in checked.errors.items()})
    when = checked.form.cleaned_data
    others = {k: v for k, v in filters.items() if k not in _DATE_FILTERS}
    sessions = report_sessions(tenant=tenant, filters=others, session_ids=session_ids).order_by().values("pk")
    refunds = Refund.objects.filter(
        tenant=tenant, status=Refund.Status.SUCCEEDED, refunded_at__isnull=False, session__in=sessions
    )
    if when.get("date_from"):
        refunds = refunds.filter(refunded_at__gte=local_midnight(when["date_from"], tenant))
    if when.get("date_to"):
        refunds = refunds.filter(refunded_at__lt=local_midnight(when["date_to"] + timedelta(days=1), tenant))
    if when.get("created_after"):
        refunds = refunds.filter(refunded_at__gte=when["created_after"])
    if when.get("created_before"):
        refunds = refunds.filter(refunded_at__lt=when["created_before"])
    return refunds


_REFUND_DESCRIPTION = {"": "no reason given", **dict(Refund.Reason.choices)}
_REFUND_FIELDS = (
    "refunded_at",
    "connector__unique_name",
    "connector__environment",
    "session__channel",
    "session__uuid",
    "session__call_sid",
    "session__payment_sid",
    "session__payment_method",
    "session__card_type",
    "session__card_last4",
    "session__currency",
    "status",
    "session__payment_confirmation_code",
    "amount_minor",
    "currency",
    "reason",
    "note",
    "origin",
    "stripe_refund_id",
)


def _refund_description(reason: str, note: str, origin: str) -> str:
    words = f"Refund ({_REFUND_DESCRIPTION.get(reason, reason)})"
    if origin == Refund.Origin.STRIPE:
        words += ", made outside Paydesk"
    return f"{words}: {note}" if note else words


def refund_rows(
    *, tenant: Tenant, filters: Mapping, session_ids=None, text: bool = False, chunk_size=CHUNK_SIZE
) -> Iterator[tuple]:
    """The refund rows of the payments export, in PAYMENT_FIELDS order, oldest first,
    streamed: the session's columns, dated by Stripe's `created` of the refund, with its
    amount in `refunded_minor` and its Stripe id in `refund_id`."""
    zone = zoneinfo.ZoneInfo(tenant.time_zone)
    refunds = report_refunds(tenant=tenant, filters=filters, session_ids=session_ids)
    sql, params = refunds.order_by("refunded_at", "pk").values_list(*_REFUND_FIELDS).query.sql_with_params()
    for row in _stream(sql, list(params), chunk_size):
        (when, connector, environment, channel, s_uuid, call_sid, payment_sid, method, card_type, last4) = row[:10]
        (currency, status, code, amount_minor, refund_currency, reason, note, origin, stripe_id) = row[10:]
        local = when.astimezone(zone).replace(microsecond=0, tzinfo=None)
        utc = when.astimezone(UTC).replace(microsecond=0, tzinfo=None)
        if text:
            times = (local.date().isoformat(), local.strftime("%H:%M:%S"), utc.strftime("%Y-%m-%dT%H:%M:%SZ"))
        else:
            times = (local, utc)
        yield (
            *times,
            tenant.name,
            connector,
            environment,
            channel,
            str(s_uuid),
            call_sid,
            payment_sid,
            method,
            card_type,
            last4,
            None,
            currency,
            status,
            "",
            code,
            None,
            None,
            "",
            amount_minor,
            refund_currency,
            "",
            "",
            "" if text else None,
            "",
            _refund_description(reason, note, origin),
            "refund",
            stripe_id,
        )


def _enriched_sql(tenant: Tenant, filters: Mapping, session_ids, *, select: str, tail: str) -> tuple[str, list]:
    base = (
        report_sessions(tenant=tenant, filters=filters, session_ids=session_ids)
        .order_by()
        .values(
            "id",
            "connector_id",
            "created_at",
            "channel",
            "call_sid",
            "payment_sid",
            "payment_method",
            "card_type",
            "card_last4",
            "amount_minor",
            "currency",
            "status",
            "result",
            "payment_confirmation_code",
            "description",
            s_uuid=Cast("uuid", TextField()),
            tenant_name=F("tenant__name"),
            tz=F("tenant__time_zone"),
            connector_name=F("connector__unique_name"),
            environment=F("connector__environment"),
            recon_state=F("reconciliation__state"),
            recon_charge=F("reconciliation__charge_id"),
        )
    )
    base_sql, base_params = base.query.sql_with_params()
    sql = f"""
        SELECT {select}
        FROM ({base_sql}) b
        LEFT JOIN {_table(StripeCharge)} ch
               ON ch.tenant_id = %s AND ch.connector_id = b.connector_id
              AND ch.stripe_id = b.recon_charge AND b.recon_charge <> ''
        LEFT JOIN {_table(StripeBalanceTransaction)} bt
               ON bt.tenant_id = %s AND bt.connector_id = b.connector_id
              AND bt.stripe_id = ch.balance_transaction_id AND ch.balance_transaction_id <> ''
        {tail}
    """  # noqa: S608 - table names and ORM-compiled SQL; every value is a parameter
    return sql, [*base_params, tenant.pk, tenant.pk]


def payment_rows(*, tenant: Tenant, filters: Mapping, session_ids=None, text: bool = False, chunk_size=CHUNK_SIZE):
    """Every selected session with its Stripe data, oldest first, then each of their
    succeeded refunds dated when Stripe made it, oldest first: tuples in PAYMENT_FIELDS
    order. `text`: dates and times as ISO 8601 text and no NULL in text columns (for CSV);
    else typed (naive local and UTC datetimes, dates) for XLSX. Amounts are minor units."""
    sql, params = payment_sql(tenant=tenant, filters=filters, session_ids=session_ids, text=text)
    refunds = refund_rows(tenant=tenant, filters=filters, session_ids=session_ids, text=text, chunk_size=chunk_size)
    return itertools.chain(_stream(sql, params, chunk_size), refunds)  # the refunds' query runs after the payments'


# The first two columns: the local time in the tenant's zone, and UTC, to the second.
_TYPED_TIMES = (
    "date_trunc('second', b.created_at AT TIME ZONE b.tz), date_trunc('second', b.created_at AT TIME ZONE 'UTC')"
)
_TEXT_TIMES = (
    "to_char(b.created_at AT TIME ZONE b.tz, 'YYYY-MM-DD'), to_char(b.created_at AT TIME ZONE b.tz, 'HH24:MI:SS'), "
    "to_char(b.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
)


def payment_sql(*, tenant: Tenant, filters: Mapping, session_ids=None, text: bool = False) -> tuple[str, list]:
    """The export's SQL for the payment rows (the benchmark COPYs exactly this)."""
    payout_date = "(po.arrival_date AT TIME ZONE 'UTC')::date"
    if text:
        payout_date = f"COALESCE(to_char({payout_date}, 'YYYY-MM-DD'), '')"
    select = f"""
        {_TEXT_TIMES if text else _TYPED_TIMES},
        b.tenant_name, b.connector_name, b.environment, b.channel, b.s_uuid, b.call_sid, b.payment_sid,
        b.payment_method, b.card_type, b.card_last4, b.amount_minor, b.currency, b.status, b.result,
        b.payment_confirmation_code, bt.fee, bt.net, COALESCE(upper(bt.currency), ''), NULL::bigint,
        '', COALESCE(dp.status, ''), COALESCE(bt.payout_id, ''), {payout_date},
        COALESCE(b.recon_state, ''), b.description, 'payment', ''
    """
    tail = f"""
        LEFT JOIN {_table(StripePayout)} po
               ON po.tenant_id = %s AND po.connector_id = b.connector_id
              AND po.stripe_id = bt.payout_id AND bt.payout_id <> ''
        LEFT JOIN (
            SELECT DISTINCT ON (connector_id, charge_id) connector_id, charge_id, status
            FROM {_table(StripeDispute)} WHERE tenant_id = %s AND charge_id <> ''
            ORDER BY connector_id, charge_id, created DESC, id DESC
        ) dp ON dp.connector_id = b.connector_id AND dp.charge_id = b.recon_charge
        ORDER BY b.created_at, b.id
    """  # noqa: S608 - table names and ORM-compiled SQL; every value is a parameter
    sql, params = _enriched_sql(tenant, filters, session_ids, select=select, tail=tail)
    return sql, [*params, tenant.pk, tenant.pk]


# --- Daily summary ----------------------------------------------------------------------

# The filters the daily rollup answers (payments/rollup): local days, and connectors by
# name or environment. Any other filter selects pay sessions, and the same sums are taken
# from the rows of those sessions (payments/rollup/sources.py defines them). `currency` is
# one of those: it selects sessions, whose fees may be settled in another currency.
ROLLUP_FILTERS = frozenset({"date_from", "date_to", "connector", "environment"})


def _local_day(value) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) and value else value or None


def daily_totals(*, tenant: Tenant, filters: Mapping) -> list[tuple[date, str, str, Totals]]:
    """Totals per (local day, connector name, currency) in minor units: from the daily
    rollup (at most one row per day, connector and currency) when it can answer, else
    summed from the rows."""
    first, last = _local_day(filters.get("date_from")), _local_day(filters.get("date_to"))
    connectors = ConnectorInstance.objects.filter(tenant=tenant)
    if filters.get("connector"):
        connectors = connectors.filter(unique_name=filters["connector"])
    if filters.get("environment"):
        connectors = connectors.filter(environment=filters["environment"])
    names = dict(connectors.values_list("pk", "unique_name"))
    rows = None
    if set(filters) <= ROLLUP_FILTERS:
        rows = rollup_days(tenant=tenant, first=first, last=last, connector_ids=list(names))
    if rows is None:  # a session filter, or the rollup is being built in the tenant's time zone
        session_filters = {k: v for k, v in filters.items() if k not in ("date_from", "date_to")}
        sessions = report_sessions(tenant=tenant, filters=session_filters) if session_filters else None
        summed = aggregate(tenant_id=tenant.pk, zone=tenant.time_zone, spans=[(first, last)], sessions=sessions)
        rows = sorted(summed.items())
    return [(day, names[cid], currency, totals) for (day, cid, currency), totals in rows if cid in names]


# --- Payouts ----------------------------------------------------------------------------

PAYOUT_FIELDS = (
    "payout_id",
    "connector",
    "payout_date",
    "payout_amount_minor",
    "payout_currency",
    "payout_status",
    "automatic",
    "transaction_id",
    "type",
    "reporting_category",
    "created",
    "available_on",
    "gross_minor",
    "fee_minor",
    "net_minor",
    "currency",
    "source_id",
    "session_id",
    "call_sid",
    "confirmation_code",
    "rows_net_minor",  # the sum of the payout's rows' net (window), to check against its amount
    "rows",
)

# The payout's own transaction (and its reversal) is not one of the rows that make it up.
_NOT_ROWS = "('payout', 'payout_cancel', 'payout_failure', 'payout_reversal')"


def payout_rows(*, tenant: Tenant, connector: str = "", date_from: date | None = None, date_to: date | None = None):
    """Each payout's balance transactions (one row per transaction; a payout without any,
    manual payouts included, appears once with empty transaction columns), with the pay
    session each charge, refund or dispute comes from. (a refund Paydesk recorded names its
    session even before the mirror has the refund object)."""
    where, params = ["po.tenant_id = %s"], [tenant.pk]
    if connector:
        where.append("c.unique_name = %s")
        params.append(connector)
    payout_day = "COALESCE((po.arrival_date AT TIME ZONE 'UTC')::date, (po.created AT TIME ZONE 'UTC')::date)"
    if date_from:
        where.append(f"{payout_day} >= %s")
        params.append(date_from)
    if date_to:
        where.append(f"{payout_day} < %s")
        params.append(date_to + timedelta(days=1))
    sql = f"""
        SELECT po.stripe_id, c.unique_name, {payout_day}, po.amount, upper(po.currency), po.status, po.automatic,
               bt.stripe_id, bt.type, bt.reporting_category,
               date_trunc('second', bt.created AT TIME ZONE %s), (bt.available_on AT TIME ZONE 'UTC')::date,
               bt.amount, bt.fee, bt.net, upper(bt.currency), bt.source_id,
               s.uuid::text, s.call_sid, s.payment_confirmation_code,
               COALESCE(sum(bt.net) OVER w, 0), count(bt.id) OVER w
        FROM {_table(StripePayout)} po
        JOIN {_table(ConnectorInstance)} c ON c.id = po.connector_id AND c.tenant_id = po.tenant_id
        LEFT JOIN {_table(StripeBalanceTransaction)} bt
               ON bt.tenant_id = po.tenant_id AND bt.connector_id = po.connector_id AND bt.payout_id = po.stripe_id
              AND bt.type NOT IN {_NOT_ROWS} AND bt.reporting_category NOT IN {_NOT_ROWS}
        LEFT JOIN {_table(StripeRefund)} rf
               ON rf.tenant_id = po.tenant_id AND rf.connector_id = po.connector_id AND rf.stripe_id = bt.source_id
        LEFT JOIN {_table(StripeDispute)} dp
               ON dp.tenant_id = po.tenant_id AND dp.connector_id = po.connector_id AND dp.stripe_id = bt.source_id
        LEFT JOIN LATERAL (
            SELECT r.session_id FROM {_table(SessionReconciliation)} r
            WHERE r.tenant_id = po.tenant_id AND r.connector_id = po.connector_id
              AND r.charge_id = COALESCE(NULLIF(rf.charge_id, ''), NULLIF(dp.charge_id, ''), bt.source_id)
              AND r.charge_id <> ''
            ORDER BY r.session_id LIMIT 1
        ) r ON TRUE
        LEFT JOIN {_table(Refund)} pr
               ON pr.tenant_id = po.tenant_id AND pr.connector_id = po.connector_id
              AND pr.stripe_refund_id = bt.source_id AND bt.source_id <> ''
        LEFT JOIN {_table(PaySession)} s ON s.id = COALESCE(pr.session_id, r.session_id) AND s.tenant_id = po.tenant_id
        WHERE {" AND ".join(where)}
        WINDOW w AS (PARTITION BY po.id)
        ORDER BY 3, po.stripe_id, bt.created, bt.id
    """  # noqa: S608 - table names and ORM-compiled SQL; every value is a parameter
    return _stream(sql, [tenant.time_zone, *params], CHUNK_SIZE)


# --- Reconciliation exceptions ----------------------------------------------------------


def exception_items(*, tenant: Tenant, filters: Mapping) -> QuerySet[ReconciliationItem]:
    """The exceptions queue with the reconciliation API's filters (status, reason, connector…)."""
    filterset = ReconciliationItemFilter(dict(filters), queryset=item_list(tenant=tenant))
    if not filterset.is_valid():
        raise ValidationError({k: list(v) for k, v in filterset.errors.items()})
    return filterset.qs.order_by("opened_at", "id")


def open_exception_counts(*, tenant: Tenant, currency: str | None = None) -> list[tuple[str, int]]:
    """Open exception items per reason; with `currency`, those of sessions in it and of
    Stripe objects in it that no session accounts for."""
    from django.db.models import Count, Q

    items = ReconciliationItem.objects.filter(tenant=tenant, resolved_at__isnull=True)
    if currency:
        items = items.filter(
            Q(session__currency=currency) | Q(session__isnull=True, stripe_data__currency__iexact=currency)
        )
    rows = items.values_list("reason").annotate(n=Count("id")).order_by("-n", "reason")
    return list(rows)


# --- Saved reports, jobs, schedules ---------------------------------------------------


def saved_report_list(*, tenant: Tenant) -> QuerySet[SavedReport]:
    return SavedReport.objects.filter(tenant=tenant)


def saved_report_get(*, tenant: Tenant, uuid) -> SavedReport:
    """The tenant's saved report, or 404: another tenant's does not exist for it."""
    return get_object_or_404(saved_report_list(tenant=tenant), uuid=uuid)


def export_job_list(*, tenant: Tenant) -> QuerySet[ExportJob]:
    return ExportJob.objects.filter(tenant=tenant).select_related("saved_report")


def export_job_get(*, tenant: Tenant, uuid) -> ExportJob:
    return get_object_or_404(export_job_list(tenant=tenant), uuid=uuid)
