"""The finance dashboard of one tenant: daily volume and success rate, failures by
reason, and open reconciliation exceptions, over the last N local days (charts.py)."""

from collections import Counter, defaultdict
from datetime import timedelta

from core.money import exponent as currency_exponent
from payments.reports import charts, selectors
from payments.reports.cells import money_text
from payments.reports.specs import last_days
from payments.reports.summaries import DailySummary
from tenants.models import Tenant


def _percent(rate) -> str:
    return "—" if rate is None else f"{rate:.1%}"


def dashboard_context(*, tenant: Tenant, days: int = 30, currency: str = "") -> dict:
    """Everything on the dashboard is for one currency (amounts in different currencies do
    not add up): the one asked for, else the one with the most volume."""
    first, today = last_days(days, tenant=tenant)  # the API's last_N_days window
    summary = DailySummary(tenant=tenant, filters={"date_from": first.isoformat(), "date_to": today.isoformat()})
    gross: dict = defaultdict(lambda: defaultdict(int))  # currency → day → minor units
    ended: dict = defaultdict(lambda: defaultdict(lambda: [0, 0]))  # currency → day → [succeeded, failed]
    failures: dict = defaultdict(Counter)  # currency → reason → count
    for row in summary.days:
        gross[row.currency][row.day] += row.gross
        ended[row.currency][row.day][0] += row.succeeded
        ended[row.currency][row.day][1] += row.failed
        failures[row.currency].update(row.failures)
    currencies = sorted(ended, key=lambda c: (-sum(gross[c].values()), c))
    currency = currency if currency in ended else (currencies[0] if currencies else tenant.default_currency)
    span = [first + timedelta(days=i) for i in range(days)]
    exponent = currency_exponent(currency)

    def major(minor: int) -> float:  # chart geometry only; every label is money_text
        return minor / 10**exponent

    def tick(value: float) -> str:
        places = 0 if value == int(value) else exponent
        return f"{value:,.{places}f} {currency}"

    volume = [
        (
            d.strftime("%m-%d"),
            major(gross[currency][d]),
            f"{d.isoformat()}: {money_text(gross[currency][d], currency)} {currency}",
        )
        for d in span
    ]

    def rate(d):
        ok, failed = ended[currency][d]
        return ok / (ok + failed) if ok + failed else None

    success = [
        (
            d.strftime("%m-%d"),
            rate(d),
            f"{d.isoformat()}: " + (f"{rate(d):.1%}" if rate(d) is not None else "none ended"),
        )
        for d in span
    ]
    exceptions = selectors.open_exception_counts(tenant=tenant, currency=currency)
    totals = [t for t in summary.totals() if t.currency == currency]
    return {
        "tenant": tenant,
        "days": days,
        "first": first,
        "today": today,
        "currency": currency,
        "currencies": currencies,
        "volume_chart": charts.bar_chart(volume, title=f"Daily volume in {currency}, succeeded payments", fmt=tick),
        "success_chart": charts.line_chart(success, title=f"Success rate per day, {currency} payments"),
        "failures_chart": charts.hbar_chart(
            failures[currency].most_common(), title=f"Failures by reason, {currency} payments"
        ),
        "exceptions_chart": charts.hbar_chart(
            exceptions, title=f"Open reconciliation exceptions, {currency}", color="#c77700"
        ),
        "volume_table": charts.data_table(
            ["Day", f"Gross ({currency})", "Succeeded", "Failed", "Success rate"],
            [
                (d.isoformat(), money_text(gross[currency][d], currency), *ended[currency][d], _percent(rate(d)))
                for d in span
            ],
        ),
        "totals_table": charts.data_table(
            ["Sessions", "Succeeded", "Failed", "Success rate", *(f"{k} ({currency})" for k in MONEY_HEADERS)],
            [
                (
                    t.sessions,
                    t.succeeded,
                    t.failed,
                    _percent(t.success_rate),
                    *(money_text(getattr(t, k.lower()), currency) for k in MONEY_HEADERS),
                )
                for t in totals
            ],
        ),
        "open_exceptions": sum(n for _, n in exceptions),
    }


MONEY_HEADERS = ("Gross", "Refunds", "Fees", "Net")
