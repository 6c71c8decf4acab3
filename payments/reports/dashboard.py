"""The finance dashboard of one tenant: daily volume and success rate, failures by
reason, and open reconciliation exceptions, over the last N local days (charts.py)."""

from collections import Counter, defaultdict
from datetime import timedelta

from payments.reports import charts, selectors
from payments.reports.cells import money_text
from payments.reports.specs import last_days
from payments.reports.summaries import DailySummary
from tenants.models import Tenant


def dashboard_context(*, tenant: Tenant, days: int = 30, currency: str = "") -> dict:
    first, today = last_days(days, tenant=tenant)  # the API's last_N_days window
    summary = DailySummary(tenant=tenant, filters={"date_from": first.isoformat(), "date_to": today.isoformat()})
    gross: dict = defaultdict(lambda: defaultdict(int))
    ended: dict = defaultdict(lambda: [0, 0])  # day → [succeeded, failed], all currencies
    failures: Counter = Counter()
    for row in summary.days:
        gross[row.currency][row.day] += row.gross
        ended[row.day][0] += row.succeeded
        ended[row.day][1] += row.failed
        failures.update(row.failures)
    currencies = sorted(gross, key=lambda c: -sum(gross[c].values()))
    currency = currency if currency in gross else (currencies[0] if currencies else tenant.default_currency)
    span = [first + timedelta(days=i) for i in range(days)]
    volume = [
        (
            d.strftime("%m-%d"),
            gross[currency][d],
            f"{d.isoformat()}: {money_text(gross[currency][d], currency)} {currency}",
        )
        for d in span
    ]

    def rate(d):
        ok, failed = ended[d]
        return ok / (ok + failed) if ok + failed else None

    success = [
        (
            d.strftime("%m-%d"),
            rate(d),
            f"{d.isoformat()}: " + (f"{rate(d):.1%}" if rate(d) is not None else "none ended"),
        )
        for d in span
    ]
    exceptions = selectors.open_exception_counts(tenant=tenant)
    totals = summary.totals()
    return {
        "tenant": tenant,
        "days": days,
        "first": first,
        "today": today,
        "currency": currency,
        "currencies": currencies,
        "volume_chart": charts.bar_chart(
            volume, title=f"Daily volume ({currency}, succeeded)", fmt=lambda v: money_text(int(v), currency)
        ),
        "success_chart": charts.line_chart(success, title="Success rate per day"),
        "failures_chart": charts.hbar_chart(failures.most_common(), title="Failures by reason"),
        "exceptions_chart": charts.hbar_chart(exceptions, title="Open reconciliation exceptions", color="#c77700"),
        "volume_table": charts.data_table(
            ["Day", f"Gross ({currency})", "Succeeded", "Failed"],
            [(d.isoformat(), money_text(gross[currency][d], currency), *ended[d]) for d in span],
        ),
        "totals_table": charts.data_table(
            ["Currency", "Sessions", "Succeeded", "Failed", "Success rate", "Gross", "Refunds", "Fees", "Net"],
            [
                (
                    t["currency"],
                    t["sessions"],
                    t["succeeded"],
                    t["failed"],
                    t["success_rate"] or "—",
                    t["gross"],
                    t["refunds"],
                    t["fees"],
                    t["net"],
                )
                for t in (total.as_json() for total in totals)
            ],
        ),
        "open_exceptions": sum(n for _, n in exceptions),
    }
