"""What the daily rollup sums, and who keeps each part of it current.

The rollup is the sum of its sources, per (local day, connector, currency). A source is
an aggregation over one app's rows, registered by that app from its AppConfig.ready()
(this app sits below them and imports none of them):

- Pay sessions (`payments.sessions`): sessions, succeeded, failed (by reason), gross.
  Kept current by increments (`services.rollup_apply`) in the transactions that create
  a session or end it: pay_session_start, ivr_payment_start, a create Twilio refused,
  cancel, the callback applier, expiry. Why: a session is created once and ends once (a
  terminal status never changes), so each of those writes knows exactly what it adds;
  the increment commits with the row or not at all, costs one statement, and concurrent
  increments commute.
- The Stripe mirror (`payments.reconciliation`): refunds, fees, net. Kept current by
  recomputing the days a write touches (`services.rollup_refresh`) in `mirror_upsert`'s
  transaction, which every sync page, webhook and payout link goes through. Why: what
  counts depends on several rows that arrive in any order (a refund or a fee counts once
  its charge names a session of the connector), so a write cannot know its own
  difference; the days it touches are recomputed from the rows instead (index reads of
  that day's sessions and refunds).

Definitions (the direct aggregation `aggregate()` is the rollup by definition; the check
command compares the two):

- sessions: pay sessions created that local day; succeeded / failed: those of them that
  ended, by outcome (failed = failed, cancelled or expired; the reason is Twilio's
  result, else the status); gross: the amounts of the succeeded ones, in their currency.
- fees and net: Stripe's, from the balance transaction of each charge that names a pay
  session of the same connector (its `Paydesk <uuid>` reference, docs/stripe.md §2), on
  that session's local day, in the balance transaction's currency.
- refunds: every succeeded Stripe refund of such a charge, on the local day Stripe made
  it, in the refund's currency.

The seam for Paydesk's own refunds (a later app): a refund Paydesk makes through Stripe
is counted once the mirror holds it (its webhook, or the next sync). To count it the
moment Stripe answers, pass the refund object Stripe returned to
`payments.reconciliation.mirror.mirror_upsert` in the transaction that records it: that
refreshes the rollup's days in the same transaction, and nothing is counted twice. Totals
the mirror cannot know come in as a source of their own: `register()` it, and call
`rollup_refresh` (or `rollup_apply`) in every transaction that changes its rows.
"""

import zoneinfo
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

COUNTS = ("sessions", "succeeded", "failed")
MONEY = ("gross", "refunds", "fees", "net")
COLUMNS = COUNTS + MONEY

# How a source's columns are kept current (the table above).
INCREMENTS = "increments"
REFRESH = "refresh"

# A range of local days, inclusive; None at an end leaves it open.
Span = tuple[date | None, date | None]
Key = tuple[date, int, str]  # (local day, connector id, currency)


@dataclass
class Totals:
    sessions: int = 0
    succeeded: int = 0
    failed: int = 0
    gross: int = 0
    refunds: int = 0
    fees: int = 0
    net: int = 0
    failures: Counter = field(default_factory=Counter)

    def add(self, other: "Totals") -> "Totals":
        for name in COLUMNS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failures.update(other.failures)
        return self

    def is_zero(self) -> bool:
        return not any(getattr(self, name) for name in COLUMNS) and not +self.failures

    def as_tuple(self) -> tuple:
        """For comparisons: the columns, then the failures without zero counts."""
        return (*(getattr(self, name) for name in COLUMNS), tuple(sorted((+self.failures).items())))


# aggregate(tenant_id=, zone=, spans=, sessions=) -> iterable of (Key, Totals)
#   spans: local-day ranges to cover, or None for all days;
#   sessions: None, or a queryset of the pay sessions to count (a report's filters): only
#   their rows, and the Stripe rows of their charges, are summed.
Aggregate = Callable[..., Iterable[tuple[Key, Totals]]]


@dataclass(frozen=True)
class Source:
    name: str
    columns: frozenset[str]
    kept_by: str
    aggregate: Aggregate


_sources: dict[str, Source] = {}


def register(name: str, *, columns: Iterable[str], kept_by: str, aggregate: Aggregate) -> None:
    columns = frozenset(columns)
    assert columns <= set(COLUMNS) and kept_by in (INCREMENTS, REFRESH), (name, columns, kept_by)
    for other in _sources.values():
        if other.name != name and other.kept_by != kept_by:
            # A column both incremented and recomputed from the rows would be counted twice.
            assert not other.columns & columns, (name, other.name)
    _sources[name] = Source(name, columns, kept_by, aggregate)


def sources(kept_by: str | None = None) -> list[Source]:
    return [s for s in _sources.values() if kept_by is None or s.kept_by == kept_by]


def columns(kept_by: str) -> list[str]:
    return [c for c in COLUMNS if any(c in s.columns for s in sources(kept_by))]


def aggregate(
    *, tenant_id: int, zone: str, spans: list[Span] | None = None, sessions=None, kept_by: str | None = None
) -> dict[Key, Totals]:
    """The rollup as the rows say it is: every source's totals, summed per key."""
    out: dict[Key, Totals] = {}
    for source in sources(kept_by):
        for key, totals in source.aggregate(tenant_id=tenant_id, zone=zone, spans=spans, sessions=sessions):
            out.setdefault(key, Totals()).add(totals)
    return {key: totals for key, totals in out.items() if not totals.is_zero()}


# --- Local days and the instants that bound them ----------------------------------------


def local_day(instant: datetime, zone: str) -> date:
    return instant.astimezone(zoneinfo.ZoneInfo(zone)).date()


def local_midnight(day: date, zone: str) -> datetime:
    """The instant a local day starts (DST-aware)."""
    return datetime.combine(day, time.min, tzinfo=zoneinfo.ZoneInfo(zone))


def spans_of(days: Iterable[date]) -> list[Span]:
    """Days as the fewest ranges of consecutive days."""
    spans: list[list[date]] = []
    for day in sorted(set(days)):
        if spans and spans[-1][1] + timedelta(days=1) == day:
            spans[-1][1] = day
        else:
            spans.append([day, day])
    return [(first, last) for first, last in spans]


def spans_sql(column: str, zone: str, spans: list[Span] | None) -> tuple[str, list]:
    """`column` (a timestamptz) within the spans' local days: ranges an index serves."""
    if spans is None:
        return "TRUE", []
    parts, params = [], []
    for first, last in spans:
        bounds = []
        if first is not None:
            bounds.append(f"{column} >= %s")
            params.append(local_midnight(first, zone))
        if last is not None:
            bounds.append(f"{column} < %s")
            params.append(local_midnight(last + timedelta(days=1), zone))
        parts.append("(" + (" AND ".join(bounds) or "TRUE") + ")")
    return "(" + (" OR ".join(parts) or "FALSE") + ")", params


def sessions_relation(table: str, sessions) -> tuple[str, list]:
    """What a source reads pay sessions from: their table, or the queryset's rows (a
    subquery PostgreSQL merges into the query, so the filters and the day ranges meet
    on the table's indexes)."""
    if sessions is None:
        return table, []
    sql, params = sessions.order_by().query.sql_with_params()
    return f"({sql})", list(params)
