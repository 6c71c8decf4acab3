"""Summaries: daily totals and the reconciliation exceptions report (the payout report,
which builds on them, is in payouts.py).

Totals are integers in minor units until they are written; each sum sits in its own
currency (a session's amount in the session's, a refund in its own, Stripe's fee and net
in the balance transaction's), so no total ever mixes two currencies.

Daily summary, per local day (tenant time zone), connector and currency, read from the
daily rollup (payments/rollup, which defines each column) when the filters are its own,
else summed from the rows the same way:
- sessions: pay sessions created that day (tokenizations included);
- succeeded / failed: sessions that ended, by outcome (failed = failed, cancelled or
  expired; the reason is Twilio's result, else the status); sessions still in progress
  count in `sessions` only;
- success_rate: succeeded / (succeeded + failed), 4 decimals; empty when none ended;
- gross: amounts of the succeeded sessions; fees and net: Stripe's, from the balance
  transaction of each charge naming one of that day's sessions (net is Stripe's: gross
  minus fee, refunds not deducted); refunds: Stripe's refunds of those charges, on the
  day Stripe made them.
"""

import zoneinfo
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from payments.reports import selectors
from payments.reports.cells import (
    CODE,
    DATE,
    DATETIME,
    INT,
    MONEY,
    RATIO,
    Column,
    amount,
    money_text,
)
from tenants.models import Tenant


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


class TypedTable:
    """CSV rows from typed rows: dates in ISO 8601, amounts through core.money."""

    title = ""
    columns: list[Column] = []
    rows_written = 0

    def typed_rows(self):
        raise NotImplementedError

    def csv_rows(self):
        for row in self.typed_rows():
            yield tuple(_csv_value(v) for v in row)

    def xlsx_rows(self):
        for row in self.typed_rows():
            yield tuple(v.amount if isinstance(v, Money) else v for v in row)

    def totals_rows(self) -> list[list]:
        return []


@dataclass(frozen=True)
class Money:
    """A money value in a summary row, kept in minor units until written."""

    minor: int
    currency: str

    @property
    def amount(self):
        return amount(self.minor, self.currency)


def _csv_value(value) -> str:
    if isinstance(value, Money):
        return money_text(value.minor, value.currency)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return _text(value)


# --- Daily summary ---------------------------------------------------------------------


_SUMS = ("sessions", "succeeded", "failed", "gross", "refunds", "fees", "net")


@dataclass
class DayTotals:
    day: date | None
    connector: str
    currency: str
    sessions: int = 0
    succeeded: int = 0
    failed: int = 0
    gross: int = 0
    refunds: int = 0
    fees: int = 0
    net: int = 0
    failures: Counter = field(default_factory=Counter)

    @property
    def success_rate(self) -> Decimal | None:
        ended = self.succeeded + self.failed
        return (Decimal(self.succeeded) / ended).quantize(Decimal("0.0001")) if ended else None

    def add(self, other: "DayTotals") -> None:
        for name in _SUMS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failures.update(other.failures)

    def as_json(self) -> dict:
        data = {"date": self.day.isoformat() if self.day else None, "connector": self.connector or None}
        data.update(
            currency=self.currency,
            sessions=self.sessions,
            succeeded=self.succeeded,
            failed=self.failed,
            success_rate=str(self.success_rate) if self.success_rate is not None else None,
            **{k: money_text(getattr(self, k), self.currency) for k in ("gross", "refunds", "fees", "net")},
            failures=dict(sorted(self.failures.items())),
        )
        return data


class DailySummary(TypedTable):
    title = "Daily summary"
    columns = [
        Column("date", "Date (local)", DATE, 11),
        Column("connector", "Connector"),
        Column("currency", "Currency", CODE, 9),
        Column("sessions", "Sessions", INT, 9),
        Column("succeeded", "Succeeded", INT, 10),
        Column("failed", "Failed", INT, 8),
        Column("success_rate", "Success rate", RATIO, 12),
        Column("gross", "Gross", MONEY, 14),
        Column("refunds", "Refunds", MONEY, 12),
        Column("fees", "Stripe fees", MONEY, 12),
        Column("net", "Net", MONEY, 14),
        Column("failures", "Failures by reason", width=40),
    ]

    def __init__(self, *, tenant: Tenant, filters):
        self.tenant, self.filters = tenant, filters
        self._days: list[DayTotals] | None = None

    @property
    def days(self) -> list[DayTotals]:
        if self._days is None:
            rows = [
                DayTotals(
                    day,
                    connector,
                    currency,
                    **{name: getattr(totals, name) for name in _SUMS},
                    failures=Counter(+totals.failures),
                )
                for day, connector, currency, totals in selectors.daily_totals(tenant=self.tenant, filters=self.filters)
            ]
            self._days = sorted(rows, key=lambda t: (t.day, t.connector, t.currency))
        return self._days

    def totals(self) -> list[DayTotals]:
        """Per currency over the whole range: the sum of the day rows, by construction."""
        by_currency: dict[str, DayTotals] = {}
        for row in self.days:
            by_currency.setdefault(row.currency, DayTotals(None, "", row.currency)).add(row)
        return [by_currency[c] for c in sorted(by_currency)]

    @staticmethod
    def _row(t: DayTotals) -> tuple:
        failures = "; ".join(f"{reason}: {n}" for reason, n in sorted(t.failures.items()))
        money = [Money(getattr(t, k), t.currency) for k in ("gross", "refunds", "fees", "net")]
        return (t.day, t.connector, t.currency, t.sessions, t.succeeded, t.failed, t.success_rate, *money, failures)

    def typed_rows(self):
        for t in self.days:
            yield self._row(t)

    def totals_rows(self) -> list[list]:
        rows = []
        for t in self.totals():
            row = list(self._row(t))
            row[0], row[1] = None, f"Total {t.currency}"
            rows.append([v.amount if isinstance(v, Money) else v for v in row])
        return rows

    def as_json(self) -> dict:
        return {
            "time_zone": self.tenant.time_zone,
            # The local days the summary covers (a period or the default resolved), so a
            # reader can tell an empty window from a missing day.
            "date_from": self.filters.get("date_from"),
            "date_to": self.filters.get("date_to"),
            "days": [t.as_json() for t in self.days],
            "totals": [t.as_json() for t in self.totals()],
        }


# --- Reconciliation exceptions --------------------------------------------------------


class ExceptionsReport(TypedTable):
    title = "Reconciliation exceptions"
    columns = [
        Column("opened_at", "Opened (local)", DATETIME, 20),
        Column("last_seen_at", "Last seen (local)", DATETIME, 20),
        Column("connector", "Connector"),
        Column("environment", "Environment", CODE, 12),
        Column("reason", "Reason", CODE, 18),
        Column("status", "Status", CODE, 9),
        Column("session_id", "Session ID", CODE, 37),
        Column("stripe_object_id", "Stripe object", width=30),
        Column("detail", "Detail", width=50),
        Column("paydesk_amount", "Paydesk amount", MONEY, 13),
        Column("paydesk_currency", "Paydesk currency", CODE, 9),
        Column("stripe_amount", "Stripe amount", MONEY, 13),
        Column("stripe_currency", "Stripe currency", CODE, 9),
        Column("resolved_at", "Resolved (local)", DATETIME, 20),
        Column("resolved_by", "Resolved by"),
        Column("resolution_note", "Resolution note", width=40),
    ]

    def __init__(self, *, tenant: Tenant, filters):
        self.tenant, self.filters = tenant, filters
        self.zone = zoneinfo.ZoneInfo(tenant.time_zone)

    def _local(self, value: datetime | None):
        return value.astimezone(self.zone).replace(microsecond=0, tzinfo=None) if value else None

    def typed_rows(self):
        items = selectors.exception_items(tenant=self.tenant, filters=self.filters)
        for item in items.iterator(chunk_size=selectors.CHUNK_SIZE):
            ours, theirs = item.paydesk_data or {}, item.stripe_data or {}
            our_cur = str(ours.get("currency") or "").upper()
            their_cur = str(theirs.get("currency") or "").upper()
            yield (
                self._local(item.opened_at),
                self._local(item.last_seen_at),
                item.connector.unique_name,
                item.connector.environment,
                item.reason,
                "open" if item.is_open else "resolved",
                str(item.session.uuid) if item.session_id else "",
                item.stripe_object_id,
                item.detail,
                _money(ours.get("amount_minor"), our_cur),
                our_cur,
                _money(theirs.get("amount"), their_cur),
                their_cur,
                self._local(item.resolved_at),
                item.resolved_by.get_username() if item.resolved_by_id else "",
                item.resolution_note,
            )

    def as_json(self) -> dict:
        """One object per item, keyed as the columns; local times (ISO 8601, no offset:
        `time_zone` says which), amounts as major-unit strings."""
        keys = [c.key for c in self.columns]
        return {
            "time_zone": self.tenant.time_zone,
            "items": [dict(zip(keys, map(_json_value, row), strict=True)) for row in self.typed_rows()],
        }


def _json_value(value):
    if isinstance(value, Money):
        return money_text(value.minor, value.currency)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _money(value, currency: str) -> Money | None:
    return Money(int(value), currency) if isinstance(value, int) and currency else None
