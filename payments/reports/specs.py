"""What a report is: a spec (kind, format, filters, columns, BOM), built from query
parameters or a saved report, validated once, stored as JSON in jobs, and opened as a
table for the writers.

Query parameters: `format`, `columns` (payments, comma-separated), `bom`, `period` (a
range relative to today in the tenant's time zone, resolved when the spec is built), and
the kind's filters. An unknown parameter is refused: a misspelt filter must not quietly
widen a finance export.
"""

import zoneinfo
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

from config.filters import check_date
from payments.reports import selectors
from payments.reports.exports import COLUMN_KEYS, PaymentsTable
from payments.reports.filters import FILTER_NAMES, local_midnight
from payments.reports.models import Format, Kind, Period, SavedReport
from payments.reports.payouts import PayoutReport
from payments.reports.summaries import DailySummary, ExceptionsReport
from tenants.models import Tenant

CONTROL_PARAMS = ("format", "columns", "bom", "period")
EXCEPTION_FILTERS = (
    "connector",
    "environment",
    "reason",
    "status",
    "session",
    "stripe_object_id",
    "opened_after",
    "opened_before",
)
PAYOUT_FILTERS = ("connector", "date_from", "date_to")

FILTERS = {
    Kind.PAYMENTS: FILTER_NAMES,
    Kind.DAILY_SUMMARY: FILTER_NAMES,
    Kind.EXCEPTIONS: EXCEPTION_FILTERS,
    Kind.PAYOUTS: PAYOUT_FILTERS,
}
FORMATS = {
    Kind.PAYMENTS: (Format.CSV, Format.XLSX),
    Kind.DAILY_SUMMARY: (Format.JSON, Format.CSV, Format.XLSX),
    Kind.EXCEPTIONS: (Format.CSV, Format.XLSX, Format.JSON),
    Kind.PAYOUTS: (Format.JSON, Format.CSV, Format.XLSX),
}
TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class ReportSpec:
    kind: str
    format: str
    filters: dict = field(default_factory=dict)
    columns: tuple = ()
    bom: bool = False

    def as_json(self) -> dict:
        return {
            "kind": self.kind,
            "format": self.format,
            "filters": self.filters,
            "columns": list(self.columns),
            "bom": self.bom,
        }

    @classmethod
    def from_json(cls, data: dict) -> "ReportSpec":
        return cls(
            data["kind"],
            data["format"],
            dict(data.get("filters") or {}),
            tuple(data.get("columns") or ()),
            bool(data.get("bom")),
        )

    @property
    def extension(self) -> str:
        return self.format


def local_today(tenant: Tenant, now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(zoneinfo.ZoneInfo(tenant.time_zone)).date()


def last_days(days: int, *, tenant: Tenant, now: datetime | None = None) -> tuple[date, date]:
    """The last `days` local days, today included: what "last 7 days" means to a person
    looking at today's payments, in the API, in saved reports and on the dashboard alike."""
    today = local_today(tenant, now)
    return today - timedelta(days=days - 1), today


def period_range(period: str, *, tenant: Tenant, now: datetime | None = None) -> tuple[date, date] | None:
    """A relative period as local days (inclusive) in the tenant's time zone."""
    if not period:
        return None
    today = local_today(tenant, now)
    if period == Period.YESTERDAY:
        return today - timedelta(days=1), today - timedelta(days=1)
    if period == Period.LAST_7_DAYS:
        return last_days(7, tenant=tenant, now=now)
    if period == Period.LAST_30_DAYS:
        return last_days(30, tenant=tenant, now=now)
    if period == Period.MONTH_TO_DATE:
        return today.replace(day=1), today
    if period == Period.PREVIOUS_MONTH:
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    raise ValidationError({"period": [f"Unknown period {period!r}; choose one of {', '.join(Period.values[1:])}."]})


def _value(params, name: str):
    """A query parameter's value; a list when it is repeated (`reason=a&reason=b`)."""
    if hasattr(params, "getlist"):
        values = params.getlist(name)
        return values if len(values) > 1 else values[0]
    return params[name]


def build_spec(*, kind: str, params, tenant: Tenant, now: datetime | None = None, default_format=None) -> ReportSpec:
    """A validated spec from query parameters (or a saved report's stored ones)."""
    if kind not in FORMATS:
        raise ValidationError({"kind": [f"Unknown report {kind!r}."]})
    errors: dict[str, list[str]] = {}
    allowed = FILTERS[kind]
    unknown = [name for name in params if name not in allowed and name not in CONTROL_PARAMS]
    if unknown:
        errors["non_field_errors"] = [
            f"Unknown parameter(s): {', '.join(sorted(unknown))}. Filters here: {', '.join(allowed)}."
        ]
    fmt = params.get("format") or default_format or FORMATS[kind][0]
    if fmt not in FORMATS[kind]:
        errors["format"] = [f"Choose one of {', '.join(FORMATS[kind])}."]
    columns: tuple = ()
    if params.get("columns"):
        columns = tuple(dict.fromkeys(c.strip() for c in str(params["columns"]).split(",") if c.strip()))
        bad = [c for c in columns if c not in COLUMN_KEYS]
        if kind != Kind.PAYMENTS:
            errors["columns"] = ["Only the payments report has a column picker."]
        elif bad:
            errors["columns"] = [f"Unknown column(s): {', '.join(bad)}. Columns: {', '.join(COLUMN_KEYS)}."]
    filters = {name: _value(params, name) for name in params if name in allowed and params.get(name) not in ("", None)}
    try:
        span = period_range(params.get("period") or "", tenant=tenant, now=now)
    except ValidationError as exc:
        errors.update(exc.message_dict)
        span = None
    if span is not None and kind == Kind.EXCEPTIONS:
        filters["opened_after"] = local_midnight(span[0], tenant).isoformat()
        filters["opened_before"] = local_midnight(span[1] + timedelta(days=1), tenant).isoformat()
    elif span is not None:
        if "date_from" in filters or "date_to" in filters:
            errors["period"] = ["Give a period or date_from/date_to, not both."]
        filters["date_from"], filters["date_to"] = span[0].isoformat(), span[1].isoformat()
    if kind == Kind.DAILY_SUMMARY and not any(k in filters for k in ("date_from", "date_to", "created_after")):
        default_from, default_to = period_range(Period.LAST_30_DAYS, tenant=tenant, now=now)
        filters["date_from"], filters["date_to"] = default_from.isoformat(), default_to.isoformat()
    spec = ReportSpec(
        kind,
        fmt if "format" not in errors else FORMATS[kind][0],
        filters,
        columns if "columns" not in errors else (),
        str(params.get("bom", "")).lower() in TRUE,
    )
    try:  # the filters' own errors too, so that one answer names every invalid parameter
        open_table(spec, tenant).validate()
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            errors.setdefault(name, messages)
    if errors:
        raise ValidationError(errors)
    return spec


def saved_report_params(saved: SavedReport) -> dict:
    params = {**(saved.filters or {}), "format": saved.format, "bom": "true" if saved.bom else ""}
    if saved.columns:
        params["columns"] = ",".join(saved.columns)
    if saved.period:
        params["period"] = saved.period
    return params


def spec_for_saved(saved: SavedReport, *, now: datetime | None = None, **overrides) -> ReportSpec:
    """The saved report's spec, its period resolved at `now` (a delivery's slot)."""
    params = {**saved_report_params(saved), **{k: v for k, v in overrides.items() if v}}
    return build_spec(kind=saved.kind, params=params, tenant=saved.tenant, now=now)


class _Opened:
    """A table plus what callers need beside the rows: validation and a row count."""

    def __init__(self, table, *, validate, count):
        self.table, self._validate, self._count = table, validate, count

    def validate(self) -> None:
        self._validate()

    def count(self) -> int:
        return self._count()


def _dates(filters: dict) -> dict:
    out = {"connector": filters.get("connector", "")}
    errors: dict[str, list[str]] = {}
    for name in ("date_from", "date_to"):
        try:
            out[name] = date.fromisoformat(filters[name]) if filters.get(name) else None
            check_date(out[name])
        except ValueError:
            errors[name] = ["Enter a date as YYYY-MM-DD."]
        except ValidationError as exc:
            errors[name] = exc.messages
    if errors:
        raise ValidationError(errors)
    return out


def open_table(spec: ReportSpec, tenant: Tenant, *, session_ids=None) -> _Opened:
    filters = spec.filters
    # Building the queryset validates the filters (ReportFilter), without running it.
    check = lambda: selectors.report_sessions(tenant=tenant, filters=filters)  # noqa: E731
    if spec.kind == Kind.PAYMENTS:
        table = PaymentsTable(tenant=tenant, filters=filters, columns=spec.columns, session_ids=session_ids)
        return _Opened(table, validate=check, count=table.count)
    if spec.kind == Kind.DAILY_SUMMARY:
        table = DailySummary(tenant=tenant, filters=filters)
        return _Opened(table, validate=check, count=lambda: len(table.days))
    if spec.kind == Kind.EXCEPTIONS:
        table = ExceptionsReport(tenant=tenant, filters=filters)
        items = lambda: selectors.exception_items(tenant=tenant, filters=filters)  # noqa: E731
        return _Opened(table, validate=items, count=lambda: items().count())
    table = PayoutReport(tenant=tenant, **_dates(filters))
    return _Opened(table, validate=lambda: _dates(filters), count=lambda: 0)
