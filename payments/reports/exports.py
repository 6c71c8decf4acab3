"""The payments export: one row per pay session, enriched from the Stripe mirror, then one
per succeeded refund, dated when Stripe made it (row type "refund": the session's columns,
the refund's amount in "Amount refunded", its Stripe id in "Stripe refund"). A payment
row carries no refund, so every column's total counts each amount once, on its own day.

Rows come from selectors.payment_rows (one streamed query) and are shaped here, once per
format: text for CSV, typed values for XLSX. Every column is computed, then the picked
ones are taken with an itemgetter: one tight function per row is what keeps a
million-row export close to PostgreSQL's own COPY.
"""

from collections.abc import Iterator, Mapping
from operator import itemgetter

from payments.reports import selectors
from payments.reports.cells import (
    CODE,
    DATE,
    DATETIME,
    MONEY,
    TIME,
    Column,
    Totals,
    amount,
    money_text,
)
from tenants.models import Tenant

COLUMNS = [
    Column("date", "Date (local)", DATE, 11),
    Column("time", "Time (local)", TIME, 9),
    Column("created_utc", "Created (UTC)", DATETIME, 20),
    Column("tenant", "Tenant"),
    Column("connector", "Connector"),
    Column("environment", "Environment", CODE, 12),
    Column("channel", "Channel", CODE, 8),
    Column("session_id", "Session ID", CODE, 37),
    Column("call_sid", "Call SID", width=35),
    Column("payment_sid", "Twilio PK SID", width=35),
    Column("payment_method", "Payment method", CODE, 12),
    Column("card_type", "Card type", width=11),
    Column("card_last4", "Last 4", width=7),
    Column("amount", "Amount", MONEY, 12),
    Column("currency", "Currency", CODE, 9),
    Column("status", "Status", CODE, 11),
    Column("result", "Result", width=18),
    Column("confirmation_code", "Confirmation code", width=30),
    Column("stripe_fee", "Stripe fee", MONEY, 11),
    Column("net", "Net", MONEY, 12),
    Column("settlement_currency", "Fee/net currency", CODE, 9),
    Column("amount_refunded", "Amount refunded", MONEY, 12),
    Column("refund_currency", "Refund currency", CODE, 9),
    Column("dispute_status", "Dispute status", width=14),
    Column("payout_id", "Payout ID", width=30),
    Column("payout_date", "Payout date", DATE, 11),
    Column("reconciliation_state", "Reconciliation", CODE, 16),
    Column("description", "Description", width=40),
    # Added with refunds, last so that the columns before keep their places.
    Column("row_type", "Row", CODE, 8),
    Column("refund_id", "Stripe refund", width=30),
]
COLUMN_KEYS = [c.key for c in COLUMNS]
MONEY_KEYS = [c.key for c in COLUMNS if c.kind == MONEY]


def _csv(r) -> tuple:
    """A text row (selectors.payment_rows(text=True)) → the CSV values of every column.
    The writer neutralises the TEXT columns."""
    (
        day,
        time,
        utc,
        tenant,
        connector,
        environment,
        channel,
        session_id,
        call_sid,
        payment_sid,
        method,
        card_type,
        last4,
        amount_minor,
        currency,
        status,
        result,
        code,
        fee,
        net,
        settlement,
        refunded,
        refund_currency,
        dispute,
        payout_id,
        payout_date,
        state,
        description,
        row_type,
        refund_id,
    ) = r
    return (
        day,
        time,
        utc,
        tenant,
        connector,
        environment,
        channel,
        session_id,
        call_sid,
        payment_sid,
        method,
        card_type,
        last4,
        "" if amount_minor is None else money_text(amount_minor, currency),
        currency,
        status,
        result,
        code,
        "" if fee is None else money_text(fee, settlement),
        "" if net is None else money_text(net, settlement),
        settlement,
        "" if refunded is None else money_text(refunded, refund_currency),
        refund_currency,
        dispute,
        payout_id,
        payout_date,
        state,
        description,
        row_type,
        refund_id,
    )


def _xlsx(r) -> tuple:
    """A typed row (selectors.payment_rows()) → the XLSX values of every column."""
    (
        local,
        utc,
        tenant,
        connector,
        environment,
        channel,
        session_id,
        call_sid,
        payment_sid,
        method,
        card_type,
        last4,
        amount_minor,
        currency,
        status,
        result,
        code,
        fee,
        net,
        settlement,
        refunded,
        refund_currency,
        dispute,
        payout_id,
        payout_date,
        state,
        description,
        row_type,
        refund_id,
    ) = r
    return (
        local.date(),
        local.time(),
        utc,
        tenant,
        connector,
        environment,
        channel,
        session_id,
        call_sid,
        payment_sid,
        method,
        card_type,
        last4,
        amount(amount_minor, currency),
        currency,
        status,
        result,
        code,
        amount(fee, settlement),
        amount(net, settlement),
        settlement,
        amount(refunded, refund_currency),
        refund_currency,
        dispute,
        payout_id,
        payout_date,
        state,
        description,
        row_type,
        refund_id,
    )


class PaymentsTable:
    """The payments export of one tenant: `columns` (keys of COLUMNS, in the order wanted;
    empty: all) and `filters` (ReportFilter's names)."""

    title = "Payments"

    def __init__(self, *, tenant: Tenant, filters: Mapping, columns=(), session_ids=None):
        self.tenant, self.filters, self.session_ids = tenant, filters, session_ids
        keys = list(columns) or COLUMN_KEYS
        self.columns = [COLUMNS[COLUMN_KEYS.index(k)] for k in keys]
        indexes = [COLUMN_KEYS.index(k) for k in keys]
        self._pick = itemgetter(*indexes) if len(indexes) > 1 else (lambda row, i=indexes[0]: (row[i],))
        self.totals = Totals(MONEY_KEYS)
        self.rows_written = 0

    def _raw(self, *, text: bool) -> Iterator[tuple]:
        return selectors.payment_rows(tenant=self.tenant, filters=self.filters, session_ids=self.session_ids, text=text)

    def count(self) -> int:
        return selectors.payment_count(tenant=self.tenant, filters=self.filters, session_ids=self.session_ids)

    def csv_rows(self) -> Iterator[tuple]:
        pick = self._pick
        for raw in self._raw(text=True):
            yield pick(_csv(raw))

    def xlsx_rows(self) -> Iterator[tuple]:
        pick, add = self._pick, self.totals.add
        for raw in self._raw(text=False):
            currency, settlement, refund_currency = raw[13], raw[19], raw[21]
            add(currency, "amount", raw[12], count=True)
            add(settlement, "stripe_fee", raw[17])
            add(settlement, "net", raw[18])
            add(refund_currency, "amount_refunded", raw[20])
            yield pick(_xlsx(raw))

    def totals_rows(self) -> list[list]:
        if not any(c.kind == MONEY for c in self.columns):
            return []
        return self.totals.rows(self.columns)
