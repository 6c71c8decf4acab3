"""Refunds in the finance reports: the payments export, the daily summary and the payout
report count each refund on the day Stripe made it, not on the day of its payment."""

from decimal import Decimal

import pytest
from django.utils import timezone

from tests.refunds.conftest import paid, refund_via_api
from tests.reports.conftest import at, balance_txn, content, parse_csv, payout, refund, session, stripe_payment

pytestmark = pytest.mark.django_db


@pytest.fixture
def late_refund(world):
    """Paid on 1 March (New York), 5.00 refunded by Stripe on 5 March, 1.00 failed on 6 March."""
    tw = world.acme
    tw.tenant.time_zone = "America/New_York"
    tw.tenant.save()
    s = session(tw, when=at("2025-03-01 15:00"), amount_minor=2000)
    stripe_payment(s, fee=88)
    made = refund(s, 500, at=at("2025-03-06 04:30"), reason="requested_by_customer")  # 23:30 on 5 March locally
    refund(s, 100, at=at("2025-03-06 15:00"), status="failed")
    other = session(tw, when=at("2025-03-05 15:00"), amount_minor=700, connector="Stripe_Stage")
    stripe_payment(other, fee=30)
    return s, made, other


def days(api, **params) -> dict:
    response = api.get("/api/v1/reports/daily-summary", params)
    assert response.status_code == 200, response.content[:300]
    return {(d["date"], d["connector"], d["currency"]): d for d in response.json()["days"]}


def export(api, **params) -> list[dict]:
    response = api.get("/api/v1/reports/payments", {"format": "csv", **params})
    assert response.status_code == 200, response.content[:300]
    return parse_csv(content(response))


def test_the_summary_counts_a_refund_on_the_day_stripe_made_it(acme_api, late_refund):
    march = days(acme_api, date_from="2025-03-01", date_to="2025-03-06")

    assert march[("2025-03-01", "Stripe_Prod", "USD")]["refunds"] == "0.00"
    fifth = march[("2025-03-05", "Stripe_Prod", "USD")]
    assert (fifth["sessions"], fifth["gross"], fifth["refunds"]) == (0, "0.00", "5.00")
    assert ("2025-03-06", "Stripe_Prod", "USD") not in march  # the failed refund counts nowhere
    only_fifth = days(acme_api, date_from="2025-03-05", date_to="2025-03-05")
    assert only_fifth[("2025-03-05", "Stripe_Prod", "USD")]["refunds"] == "5.00"
    assert days(acme_api, date_from="2025-03-05", date_to="2025-03-05", connector="Stripe_Stage").keys() == {
        ("2025-03-05", "Stripe_Stage", "USD")
    }


def test_the_export_has_the_refund_as_a_row_of_its_own_day_after_the_payments(acme_api, late_refund):
    s, made, other = late_refund

    first = export(acme_api, date_from="2025-03-01", date_to="2025-03-01")
    fifth = export(acme_api, date_from="2025-03-05", date_to="2025-03-05")

    assert [(r["Row"], r["Session ID"], r["Amount refunded"]) for r in first] == [("payment", str(s.uuid), "")]
    assert [(r["Row"], r["Session ID"], r["Time (local)"], r["Amount refunded"]) for r in fifth] == [
        ("payment", str(other.uuid), "10:00:00", ""),
        ("refund", str(s.uuid), "23:30:00", "5.00"),
    ]
    row = fifth[1]
    assert (row["Stripe refund"], row["Status"], row["Refund currency"], row["Amount"]) == (
        made.stripe_refund_id,
        "succeeded",
        "USD",
        "",
    )
    assert row["Description"] == "Refund (requested by customer)" and row["Call SID"] == s.call_sid


def test_export_and_summary_totals_agree_with_refunds(acme_api, late_refund):
    summary = days(acme_api, date_from="2025-03-01", date_to="2025-03-06")
    rows = export(acme_api, date_from="2025-03-01", date_to="2025-03-06")

    for (day, connector, currency), d in summary.items():
        mine = [r for r in rows if (r["Date (local)"], r["Connector"], r["Currency"]) == (day, connector, currency)]
        refunded = sum(Decimal(r["Amount refunded"] or 0) for r in mine if r["Row"] == "refund")
        assert Decimal(d["refunds"]) == refunded
        assert d["sessions"] == len([r for r in mine if r["Row"] == "payment"])


def test_a_refund_in_a_payout_names_its_session_from_paydesks_record(world, acme_api):
    tw = world.acme
    s = session(tw, when=at("2025-03-01 12:00"), amount_minor=2000)
    stripe_payment(s, fee=88, payout_id="po_with_refund")
    made = refund(s, 500, at=at("2025-03-02 09:00"))
    balance_txn(
        tw,
        stripe_id="txn_refund_1",
        payout_id="po_with_refund",
        amount=-500,
        fee=0,
        type_="refund",
        source_id=made.stripe_refund_id,
        when=made.refunded_at,
    )
    payout(tw, stripe_id="po_with_refund", amount=2000 - 88 - 500, arrival=at("2025-03-04 00:00"))

    rows = parse_csv(content(acme_api.get("/api/v1/reports/payouts", {"format": "csv"})))

    assert [(r["Type"], r["Net"], r["Session ID"], r["Created (local)"][:10]) for r in rows] == [
        ("charge", "19.12", str(s.uuid), "2025-03-01"),
        ("refund", "-5.00", str(s.uuid), "2025-03-02"),
    ]
    assert {r["Payout = sum of rows"] for r in rows} == {"yes"}


def test_refunds_made_through_the_api_show_in_todays_summary(acme_api, world, stripe_objects):
    dev = world.acme.connectors["Stripe_Dev"]
    session_, _ = paid(dev, stripe_objects, amount=2000)
    refund_via_api(acme_api, session_, amount="3.00")
    refund_via_api(acme_api, session_, amount="1.50")
    today = timezone.localdate().isoformat()

    summary = days(acme_api, date_from=today, date_to=today)

    assert summary[(today, "Stripe_Dev", "USD")]["refunds"] == "4.50"
    assert [r["Amount refunded"] for r in export(acme_api, date_from=today) if r["Row"] == "refund"] == [
        "3.00",
        "1.50",
    ]
