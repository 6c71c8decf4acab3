"""Daily summary, payout report and exceptions report: totals in minor units, one currency
per total, local days, and the same numbers as the export's rows."""

from collections import defaultdict
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from payments.reports.summaries import DailySummary
from tests.reports.conftest import (
    at,
    balance_txn,
    content,
    item,
    parse_csv,
    parse_xlsx,
    payout,
    session,
    stripe_payment,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def month(world):
    """Acme in New York: two days of payments in USD and JPY on two connectors."""
    tw = world.acme
    tw.tenant.time_zone = "America/New_York"
    tw.tenant.save()
    made = []
    for when, conn, amount, currency, status, result, fee, refunded in [
        ("2025-03-01 15:00", "Stripe_Prod", 1000, "USD", "succeeded", "success", 59, 0),
        ("2025-03-02 04:30", "Stripe_Prod", 2000, "USD", "succeeded", "success", 88, 500),  # 23:30 on 1 March
        ("2025-03-02 04:40", "Stripe_Prod", 500, "USD", "failed", "payment-connector-error", None, 0),
        ("2025-03-02 04:50", "Stripe_Prod", 700, "USD", "cancelled", "caller-hung-up", None, 0),
        ("2025-03-02 14:00", "Stripe_Prod", 1500, "USD", "succeeded", "success", 74, 0),
        ("2025-03-02 15:00", "Stripe_Stage", 1200, "JPY", "succeeded", "success", 43, 0),
        ("2025-03-02 16:00", "Stripe_Stage", 300, "USD", "capturing", "", None, 0),
        ("2025-03-02 17:00", "Stripe_Stage", 800, "USD", "expired", "", None, 0),
    ]:
        s = session(
            tw, when=at(when), connector=conn, amount_minor=amount, currency=currency, status=status, result=result
        )
        if fee is not None:
            stripe_payment(s, fee=fee, refunded=refunded)
        made.append(s)
    return made


def summary(api, **params):
    response = api.get("/api/v1/reports/daily-summary", params)
    assert response.status_code == 200, response.content[:400]
    return response


def test_daily_totals_per_local_day_connector_and_currency(api, month):
    data = summary(api, date_from="2025-03-01", date_to="2025-03-02").json()

    days = {(d["date"], d["connector"], d["currency"]): d for d in data["days"]}
    first = days[("2025-03-01", "Stripe_Prod", "USD")]
    assert first | {"failures": None} == {
        "date": "2025-03-01",
        "connector": "Stripe_Prod",
        "currency": "USD",
        "sessions": 4,
        "succeeded": 2,
        "failed": 2,
        "success_rate": "0.5000",
        "gross": "30.00",
        "refunds": "5.00",
        "fees": "1.47",
        "net": "28.53",
        "failures": None,
    }
    assert first["failures"] == {"caller-hung-up": 1, "payment-connector-error": 1}
    second = days[("2025-03-02", "Stripe_Prod", "USD")]
    assert (second["sessions"], second["gross"], second["success_rate"]) == (1, "15.00", "1.0000")
    yen = days[("2025-03-02", "Stripe_Stage", "JPY")]
    assert (yen["gross"], yen["fees"], yen["net"]) == ("1200", "43", "1157")
    stage = days[("2025-03-02", "Stripe_Stage", "USD")]
    assert (stage["sessions"], stage["failed"], stage["success_rate"], stage["failures"]) == (
        2,
        1,
        "0.0000",
        {"expired": 1},
    )
    assert data["time_zone"] == "America/New_York"


def test_totals_are_the_sum_of_the_rows_and_match_the_export(api, month):
    data = summary(api, date_from="2025-03-01", date_to="2025-03-02").json()
    export = parse_csv(
        content(api.get("/api/v1/reports/payments", {"date_from": "2025-03-01", "date_to": "2025-03-02"}))
    )

    for total in data["totals"]:
        rows = [d for d in data["days"] if d["currency"] == total["currency"]]
        for key in ("gross", "refunds", "fees", "net"):
            assert Decimal(total[key]) == sum(Decimal(r[key]) for r in rows), key
        assert total["sessions"] == sum(r["sessions"] for r in rows)
    from_export = defaultdict(lambda: dict.fromkeys(["sessions", "gross", "fees", "net", "refunds"], Decimal(0)))
    for row in export:
        key = (row["Date (local)"], row["Connector"], row["Currency"])
        if row["Row"] == "refund":
            from_export[key]["refunds"] += Decimal(row["Amount refunded"])
            continue
        from_export[key]["sessions"] += 1
        if row["Status"] == "succeeded":
            from_export[key]["gross"] += Decimal(row["Amount"])
        from_export[key]["fees"] += Decimal(row["Stripe fee"] or 0)
        from_export[key]["net"] += Decimal(row["Net"] or 0)
    for d in data["days"]:
        mine = from_export[(d["date"], d["connector"], d["currency"])]
        assert {k: Decimal(d[k]) for k in ("sessions", "gross", "fees", "net", "refunds")} == mine


def test_currencies_are_never_mixed_in_a_total(world, api):
    yen = session(world.acme, when=at("2025-03-05 12:00"), amount_minor=5000, currency="JPY")
    stripe_payment(yen, fee=30, settlement="USD", net=3300, amount=5000)  # settled in USD cents

    data = summary(api, date_from="2025-03-05", date_to="2025-03-05").json()

    by_currency = {d["currency"]: d for d in data["days"]}
    assert (by_currency["JPY"]["gross"], by_currency["JPY"]["fees"], by_currency["JPY"]["net"]) == ("5000", "0", "0")
    assert (by_currency["USD"]["sessions"], by_currency["USD"]["fees"], by_currency["USD"]["net"]) == (
        0,
        "0.30",
        "33.00",
    )


def test_daily_summary_as_xlsx_has_typed_totals_per_currency(api, month):
    book = parse_xlsx(
        content(
            api.get(
                "/api/v1/reports/daily-summary", {"date_from": "2025-03-01", "date_to": "2025-03-02", "format": "xlsx"}
            )
        )
    )
    rows = list(book["Daily summary"].iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    col = {h: i for i, h in enumerate(header)}
    days, totals = [r for r in body if r[col["Date (local)"]]], [r for r in body if not r[col["Date (local)"]]]
    assert [t[col["Connector"]] for t in totals] == ["Total JPY", "Total USD"]
    usd = totals[1]
    assert Decimal(str(usd[col["Gross"]])) == sum(
        Decimal(str(r[col["Gross"]])) for r in days if r[col["Currency"]] == "USD"
    )
    assert usd[col["Sessions"]] == 7 and isinstance(usd[col["Success rate"]], float)


def test_summary_of_another_tenant_days_is_empty(world, api_for, month):
    data = summary(api_for(world.globex.raw_key), date_from="2025-03-01", date_to="2025-03-02").json()
    assert data["days"] == [] and data["totals"] == []


def test_summary_object_totals_equal_rows_in_minor_units(world, month):
    table = DailySummary(tenant=world.acme.tenant, filters={"date_from": "2025-03-01", "date_to": "2025-03-02"})
    for total in table.totals():
        rows = [d for d in table.days if d.currency == total.currency]
        assert total.gross == sum(r.gross for r in rows) and isinstance(total.gross, int)


# --- Payouts ---------------------------------------------------------------------------


@pytest.fixture
def payouts(world):
    tw = world.acme
    first = session(tw, when=at("2025-03-01 12:00"), amount_minor=1000)
    stripe_payment(first, fee=59, payout_id="po_ok")
    second = session(tw, when=at("2025-03-01 13:00"), amount_minor=2000)
    stripe_payment(second, fee=88, payout_id="po_ok")
    balance_txn(tw, stripe_id="txn_refund", payout_id="po_ok", amount=-500, fee=0, type_="refund", source_id="re_1")
    balance_txn(tw, stripe_id="txn_payout", payout_id="po_ok", amount=-2353, fee=0, type_="payout", source_id="po_ok")
    payout(tw, stripe_id="po_ok", amount=941 + 1912 - 500, arrival=at("2025-03-03 00:00"))
    third = session(tw, when=at("2025-03-02 12:00"), amount_minor=3000)
    stripe_payment(third, fee=117, payout_id="po_short")
    payout(tw, stripe_id="po_short", amount=2800, arrival=at("2025-03-04 00:00"))
    payout(tw, stripe_id="po_manual", amount=100, arrival=at("2025-03-04 00:00"), automatic=False)
    return first, second, third


def test_payout_report_checks_each_payout_against_the_sum_of_its_rows(api, payouts):
    data = api.get("/api/v1/reports/payouts", {"date_from": "2025-03-01", "date_to": "2025-03-31"}).json()

    by_id = {p["payout_id"]: p for p in data["payouts"]}
    assert by_id["po_ok"] | {"connector": None} == {
        "payout_id": "po_ok",
        "connector": None,
        "date": "2025-03-03",
        "currency": "USD",
        "status": "paid",
        "automatic": True,
        "rows": 3,
        "amount": "23.53",
        "gross": "25.00",
        "fee": "1.47",
        "net": "23.53",
        "balanced": True,
        "difference": "0.00",
    }
    assert (by_id["po_short"]["balanced"], by_id["po_short"]["difference"]) == (False, "-0.83")
    assert (by_id["po_manual"]["balanced"], by_id["po_manual"]["rows"]) == (None, 0)


def test_payout_report_rows_name_the_payments_they_come_from(api, payouts):
    first, second, _ = payouts
    rows = parse_csv(content(api.get("/api/v1/reports/payouts", {"format": "csv"})))

    ok = [r for r in rows if r["Payout ID"] == "po_ok"]
    assert [(r["Type"], r["Net"], r["Session ID"]) for r in ok] == [
        ("charge", "9.41", str(first.uuid)),
        ("charge", "19.12", str(second.uuid)),
        ("refund", "-5.00", ""),
    ]
    assert {r["Payout = sum of rows"] for r in ok} == {"yes"}
    assert sum(Decimal(r["Net"]) for r in ok) == Decimal(ok[0]["Payout amount"])


def test_payout_report_never_shows_another_tenant_payouts(world, api_for, payouts):
    data = api_for(world.globex.raw_key).get("/api/v1/reports/payouts").json()
    assert data["payouts"] == []


# --- Exceptions -------------------------------------------------------------------------


def test_exceptions_report_answers_json_when_asked(world, api):
    s = session(world.acme, when=at("2025-03-01 12:00"), amount_minor=1250)
    open_item = item(world.acme, s)
    item(world.globex, session(world.globex, when=at("2025-03-01 12:00")))

    response = api.get("/api/v1/reports/exceptions", {"format": "json"})

    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["time_zone"] == world.acme.tenant.time_zone
    [row] = body["items"]
    assert (row["session_id"], row["reason"], row["status"]) == (str(s.uuid), "amount_mismatch", "open")
    assert (row["paydesk_amount"], row["stripe_amount"], row["stripe_currency"]) == ("12.50", "12.51", "USD")
    assert (
        row["opened_at"]
        == open_item.opened_at.astimezone(ZoneInfo(world.acme.tenant.time_zone))
        .replace(microsecond=0, tzinfo=None)
        .isoformat()
    )


def test_exceptions_report_lists_the_tenant_items_with_amounts_in_major_units(world, api):
    s = session(world.acme, when=at("2025-03-01 12:00"), amount_minor=1250)
    open_item = item(world.acme, s)
    item(world.acme, None, reason="stripe_only", resolved=True)
    item(world.globex, session(world.globex, when=at("2025-03-01 12:00")))

    every = parse_csv(content(api.get("/api/v1/reports/exceptions")))
    still_open = parse_csv(content(api.get("/api/v1/reports/exceptions", {"status": "open"})))

    assert len(every) == 2
    assert [
        (r["Session ID"], r["Reason"], r["Paydesk amount"], r["Stripe amount"], r["Stripe currency"])
        for r in still_open
    ] == [(str(s.uuid), "amount_mismatch", "12.50", "12.51", "USD")]
    assert open_item.detail in still_open[0]["Detail"]


def test_a_payout_row_links_the_tenant_own_session_even_when_charge_ids_coincide(world, api):
    theirs = session(world.globex, when=at("2025-03-01 11:00"))  # created first: the lower id
    stripe_payment(theirs, fee=1, charge_id="ch_same")
    mine = session(world.acme, when=at("2025-03-01 12:00"))
    stripe_payment(mine, fee=59, charge_id="ch_same", payout_id="po_mine")
    payout(world.acme, stripe_id="po_mine", amount=1191, arrival=at("2025-03-03 00:00"))

    rows = parse_csv(content(api.get("/api/v1/reports/payouts", {"format": "csv"})))

    assert [(r["Source"], r["Session ID"], r["Call SID"]) for r in rows] == [("ch_same", str(mine.uuid), mine.call_sid)]
