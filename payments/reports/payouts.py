"""The payout report: which balance transactions make up each payout, with their fees,
and whether the payout's amount equals the sum of its rows' net (Stripe: gross − fees −
refunds ± disputes and adjustments), as Stripe's payout reconciliation report does. A
manual payout, or one whose transactions are not listed yet, has no rows: "not itemised".
"""

from collections import defaultdict

from payments.reports import selectors
from payments.reports.cells import BOOL, CODE, DATE, DATETIME, MONEY, Column, Totals, money_text
from payments.reports.summaries import Money, TypedTable
from tenants.models import Tenant


def _balanced(row: dict) -> str:
    if not row["rows"]:
        return "not itemised"
    return "yes" if row["rows_net_minor"] == row["payout_amount_minor"] else "no"


class PayoutReport(TypedTable):
    """Which balance transactions make up each payout, with fees, and whether the payout's
    amount equals the sum of its rows' net (Stripe: gross − fees − refunds ± disputes and
    adjustments). A manual payout, or one not itemised yet, has no rows."""

    title = "Payouts"
    columns = [
        Column("payout_id", "Payout ID", width=30),
        Column("connector", "Connector"),
        Column("payout_date", "Payout date", DATE, 11),
        Column("payout_amount", "Payout amount", MONEY, 14),
        Column("payout_currency", "Payout currency", CODE, 9),
        Column("payout_status", "Payout status", width=10),
        Column("automatic", "Automatic", BOOL, 9),
        Column("rows_net", "Sum of rows' net", MONEY, 14),
        Column("balanced", "Payout = sum of rows", CODE, 12),
        Column("transaction_id", "Balance transaction", width=30),
        Column("type", "Type", width=12),
        Column("reporting_category", "Reporting category", width=14),
        Column("created", "Created (local)", DATETIME, 20),
        Column("available_on", "Available on", DATE, 11),
        Column("gross", "Gross", MONEY, 12),
        Column("fee", "Fee", MONEY, 10),
        Column("net", "Net", MONEY, 12),
        Column("currency", "Currency", CODE, 9),
        Column("source_id", "Source", width=30),
        Column("session_id", "Session ID", CODE, 37),
        Column("call_sid", "Call SID", width=35),
        Column("confirmation_code", "Confirmation code", width=30),
    ]

    def __init__(self, *, tenant: Tenant, connector: str = "", date_from=None, date_to=None):
        self.tenant = tenant
        self.query = {"connector": connector, "date_from": date_from, "date_to": date_to}
        self.totals = Totals(["gross", "fee", "net"])

    def raw(self):
        for values in selectors.payout_rows(tenant=self.tenant, **self.query):
            yield dict(zip(selectors.PAYOUT_FIELDS, values, strict=True))

    def typed_rows(self):
        for r in self.raw():
            cur, pcur = r["currency"], r["payout_currency"]
            if r["transaction_id"]:
                self.totals.add(cur, "gross", r["gross_minor"], count=True)
                self.totals.add(cur, "fee", r["fee_minor"])
                self.totals.add(cur, "net", r["net_minor"])
            yield (
                r["payout_id"],
                r["connector"],
                r["payout_date"],
                Money(r["payout_amount_minor"], pcur),
                pcur,
                r["payout_status"],
                r["automatic"],
                Money(r["rows_net_minor"], pcur),
                _balanced(r),
                r["transaction_id"],
                r["type"],
                r["reporting_category"],
                r["created"],
                r["available_on"],
                *(Money(r[k], cur) if r["transaction_id"] else None for k in ("gross_minor", "fee_minor", "net_minor")),
                cur,
                r["source_id"],
                r["session_id"],
                r["call_sid"],
                r["confirmation_code"],
            )

    def totals_rows(self) -> list[list]:
        return self.totals.rows(self.columns)

    def payouts(self) -> list[dict]:
        """One summary per payout (the JSON form): its rows' sums and the check."""
        out: dict[str, dict] = {}
        for r in self.raw():
            p = out.get(r["payout_id"])
            if p is None:
                p = out[r["payout_id"]] = {
                    "payout_id": r["payout_id"],
                    "connector": r["connector"],
                    "date": r["payout_date"].isoformat() if r["payout_date"] else None,
                    "currency": r["payout_currency"],
                    "status": r["payout_status"],
                    "automatic": r["automatic"],
                    "rows": r["rows"],
                    "sums": defaultdict(int),
                    "raw": r,
                }
            if r["transaction_id"]:
                for key in ("gross", "fee", "net"):
                    p["sums"][key] += r[f"{key}_minor"]
        result = []
        for p in out.values():
            r, cur = p.pop("raw"), p["currency"]
            sums = p.pop("sums")
            p["amount"] = money_text(r["payout_amount_minor"], cur)
            p.update({k: money_text(sums[k], cur) for k in ("gross", "fee", "net")})
            p["balanced"] = {"yes": True, "no": False}.get(_balanced(r))
            p["difference"] = money_text(r["payout_amount_minor"] - r["rows_net_minor"], cur) if r["rows"] else None
            result.append(p)
        return result

    def as_json(self) -> dict:
        return {"time_zone": self.tenant.time_zone, "payouts": self.payouts()}
