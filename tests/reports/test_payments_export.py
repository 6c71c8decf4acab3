"""The payments export, parsed back (csv, openpyxl) and compared with the database: every
row, every column, totals, local days, 0- and 3-decimal currencies, neutralised formulas,
and one tenant's rows only, whatever the filters."""

import zoneinfo
from datetime import date, datetime, time
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core import money
from payments.reconciliation.models import (
    SessionReconciliation,
    StripeBalanceTransaction,
    StripeCharge,
    StripeDispute,
    StripePayout,
)
from payments.refunds.models import Refund
from payments.reports.exports import COLUMN_KEYS, COLUMNS
from payments.sessions.models import PaySession
from tests.reports.conftest import at, content, parse_csv, parse_xlsx, payout, session, stripe_payment

pytestmark = pytest.mark.django_db
HEADERS = {c.header: c.key for c in COLUMNS}
URL = "/api/v1/reports/payments"


def export_csv(api, **params) -> list[dict]:
    response = api.get(URL, {"format": "csv", **params})
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/csv")
    return [{HEADERS[k]: v for k, v in row.items()} for row in parse_csv(content(response))]


def major(minor, currency) -> str:
    return "" if minor is None else money.to_major_string(minor, currency)


def expected_row(s: PaySession) -> dict:
    """What the export must say about a session, read from the database independently."""
    local = s.created_at.astimezone(zoneinfo.ZoneInfo(s.tenant.time_zone))
    utc = s.created_at.astimezone(zoneinfo.ZoneInfo("UTC"))
    row = {
        "date": local.date().isoformat(),
        "time": local.strftime("%H:%M:%S"),
        "created_utc": utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tenant": s.tenant.name,
        "connector": s.connector.unique_name,
        "environment": s.connector.environment,
        "channel": s.channel,
        "session_id": str(s.uuid),
        "call_sid": s.call_sid,
        "payment_sid": s.payment_sid,
        "payment_method": s.payment_method,
        "card_type": s.card_type,
        "card_last4": s.card_last4,
        "amount": major(s.amount_minor, s.currency),
        "currency": s.currency,
        "status": s.status,
        "result": s.result,
        "confirmation_code": s.payment_confirmation_code,
        "description": s.description,
        **dict.fromkeys(["stripe_fee", "net", "settlement_currency", "amount_refunded", "refund_currency"], ""),
        **dict.fromkeys(["dispute_status", "payout_id", "payout_date", "reconciliation_state"], ""),
        "row_type": "payment",
        "refund_id": "",
    }
    record = SessionReconciliation.objects.filter(session=s).first()
    if record is None:
        return row
    row["reconciliation_state"] = record.state
    charge = StripeCharge.objects.filter(tenant=s.tenant, connector=s.connector, stripe_id=record.charge_id).first()
    if charge is None:
        return row
    txn = StripeBalanceTransaction.objects.get(
        tenant=s.tenant, connector=s.connector, stripe_id=charge.balance_transaction_id
    )
    row.update(
        stripe_fee=major(txn.fee, txn.currency),
        net=major(txn.net, txn.currency),
        settlement_currency=txn.currency,
        payout_id=txn.payout_id,
    )
    dispute = StripeDispute.objects.filter(tenant=s.tenant, charge_id=charge.stripe_id).order_by("-created").first()
    row["dispute_status"] = dispute.status if dispute else ""
    paid_out = StripePayout.objects.filter(tenant=s.tenant, stripe_id=txn.payout_id).first()
    row["payout_date"] = paid_out.arrival_date.date().isoformat() if paid_out else ""
    return row


def expected_refund_row(r: Refund) -> dict:
    """What the export must say about a refund: the session's columns, on Stripe's day."""
    s = r.session
    local = r.refunded_at.astimezone(zoneinfo.ZoneInfo(s.tenant.time_zone))
    utc = r.refunded_at.astimezone(zoneinfo.ZoneInfo("UTC"))
    empty = ["amount", "result", "stripe_fee", "net", "settlement_currency", "dispute_status", "payout_id"]
    return {
        **expected_row(s),
        **dict.fromkeys([*empty, "payout_date", "reconciliation_state"], ""),
        "date": local.date().isoformat(),
        "time": local.strftime("%H:%M:%S"),
        "created_utc": utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "status": r.status,
        "amount_refunded": major(r.amount_minor, r.currency),
        "refund_currency": r.currency,
        "description": f"Refund ({r.get_reason_display() or 'no reason given'})" + (f": {r.note}" if r.note else ""),
        "row_type": "refund",
        "refund_id": r.stripe_refund_id,
    }


def expected_rows(sessions) -> list[dict]:
    """Every session, oldest first, then every succeeded refund of theirs, oldest first."""
    refunds = Refund.objects.filter(session__in=sessions, status="succeeded").order_by("refunded_at", "pk")
    return [
        *(expected_row(s) for s in sorted(sessions, key=lambda s: s.created_at)),
        *(expected_refund_row(r) for r in refunds),
    ]


@pytest.fixture
def acme_payments(world):
    """Acme (New York) with paid, refunded, disputed, failed and in-progress sessions."""
    tw = world.acme
    tw.tenant.time_zone = "America/New_York"
    tw.tenant.save()
    payout(tw, stripe_id="po_acme_1", amount=3000, arrival=at("2025-02-03 00:00"))
    paid = session(tw, when=at("2025-01-31 04:30"), amount_minor=1250, description="Invoice 7, with a comma")
    stripe_payment(paid, fee=66, payout_id="po_acme_1")
    refunded = session(tw, when=at("2025-01-31 15:00"), amount_minor=2000, connector="Stripe_Stage")
    stripe_payment(refunded, fee=88, refunded=500, state="refunded")
    disputed = session(tw, when=at("2025-02-01 10:00"), amount_minor=999, channel="ivr", description='Say "hi"')
    stripe_payment(disputed, fee=59, dispute="needs_response", state="disputed")
    failed = session(tw, when=at("2025-02-01 11:00"), status="failed", result="payment-connector-error")
    ongoing = session(tw, when=at("2025-02-01 12:00"), status="capturing", result="", completed_at=None)
    tokenized = session(tw, when=at("2025-02-01 13:00"), amount_minor=None, token_type="reusable")
    return [paid, refunded, disputed, failed, ongoing, tokenized]


def test_csv_export_has_every_session_with_every_column_as_in_the_database(world, api, acme_payments):
    other = session(world.globex, when=at("2025-01-31 05:00"))
    stripe_payment(other, fee=1)

    rows = export_csv(api)

    assert list(rows[0]) == COLUMN_KEYS
    assert rows == expected_rows(acme_payments)
    assert rows[0]["date"] == "2025-01-30" and rows[0]["time"] == "23:30:00"  # 04:30 UTC is 23:30 in New York
    assert rows[0]["stripe_fee"] == "0.66" and rows[0]["net"] == "11.84" and rows[0]["payout_date"] == "2025-02-03"
    assert rows[1]["amount_refunded"] == "" and rows[1]["row_type"] == "payment"
    assert rows[2]["dispute_status"] == "needs_response"
    assert rows[5]["amount"] == "" and rows[5]["stripe_fee"] == ""
    assert (rows[6]["row_type"], rows[6]["amount_refunded"], rows[6]["time"]) == ("refund", "5.00", "10:15:00")
    assert rows[6]["session_id"] == rows[1]["session_id"] and rows[6]["refund_id"].startswith("re_")


def test_csv_is_rfc4180_with_crlf_and_an_optional_byte_order_mark(api, acme_payments):
    plain = content(api.get(URL, {"format": "csv"}))
    with_bom = content(api.get(URL, {"format": "csv", "bom": "true"}))

    assert not plain.startswith(b"\xef\xbb\xbf") and with_bom.startswith(b"\xef\xbb\xbf")
    assert with_bom[3:] == plain
    assert plain.count(b"\r\n") == len(acme_payments) + 2  # the header and one refund row
    assert b'"Say ""hi"""' in plain and b'"Invoice 7, with a comma"' in plain


def test_a_local_day_runs_midnight_to_midnight_in_the_tenant_time_zone(world, api):
    tw = world.acme
    tw.tenant.time_zone = "America/New_York"
    tw.tenant.save()
    late = session(tw, when=at("2025-02-01 04:30"))  # 23:30 on 31 January in New York
    early = session(tw, when=at("2025-02-01 05:00"))  # 00:00 on 1 February

    january = export_csv(api, date_from="2025-01-31", date_to="2025-01-31")
    february = export_csv(api, date_from="2025-02-01", date_to="2025-02-01")

    assert [(r["session_id"], r["date"], r["time"]) for r in january] == [(str(late.uuid), "2025-01-31", "23:30:00")]
    assert [(r["session_id"], r["date"], r["time"]) for r in february] == [(str(early.uuid), "2025-02-01", "00:00:00")]
    assert january[0]["created_utc"] == "2025-02-01T04:30:00Z"


def test_zero_and_three_decimal_currencies_keep_their_decimals(world, api):
    yen = session(world.acme, when=at("2025-03-01 10:00"), amount_minor=1250, currency="JPY")
    stripe_payment(yen, fee=45)
    dinar = session(world.acme, when=at("2025-03-01 11:00"), amount_minor=12345, currency="KWD")
    stripe_payment(dinar, fee=371)

    rows = export_csv(api)

    assert [(r["amount"], r["stripe_fee"], r["net"]) for r in rows] == [
        ("1250", "45", "1205"),
        ("12.345", "0.371", "11.974"),
    ]


def test_xlsx_cells_are_typed_and_a_totals_row_per_currency_adds_up(world, api, acme_payments):
    yen = session(world.acme, when=at("2025-02-02 10:00"), amount_minor=1250, currency="JPY")
    stripe_payment(yen, fee=45)
    dinar = session(world.acme, when=at("2025-02-02 11:00"), amount_minor=12345, currency="KWD")
    stripe_payment(dinar, fee=371)

    response = api.get(URL, {"format": "xlsx"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = parse_xlsx(content(response))["Payments"]
    values = list(sheet.iter_rows(values_only=True))
    header, body = values[0], values[1:]
    assert list(header) == [c.header for c in COLUMNS]
    at_ = {k: i for i, k in enumerate(COLUMN_KEYS)}
    data, totals = body[:9], body[9:]
    expected = expected_rows([*acme_payments, yen, dinar])
    for row, want in zip(data, expected, strict=True):
        assert row[at_["date"]] == datetime.combine(date.fromisoformat(want["date"]), time())
        assert row[at_["time"]] == time.fromisoformat(want["time"])
        assert row[at_["created_utc"]] == datetime.fromisoformat(want["created_utc"].rstrip("Z"))
        for key in ("amount", "stripe_fee", "net", "amount_refunded"):
            cell = row[at_[key]]
            assert (Decimal(str(cell)) if cell is not None else "") == (Decimal(want[key]) if want[key] else ""), key
            assert cell is None or isinstance(cell, int | float)
        for key in ("session_id", "call_sid", "card_last4", "status", "description", "payout_id"):
            assert (row[at_[key]] or "") == want[key], key
    by_currency = {}
    for want in expected:
        if want["amount"]:
            by_currency.setdefault(want["currency"], []).append(want)
    assert [r[at_["currency"]] for r in totals] == sorted(by_currency)
    for row in totals:
        rows = by_currency[row[at_["currency"]]]
        assert Decimal(str(row[at_["amount"]])) == sum(Decimal(w["amount"]) for w in rows)
        assert Decimal(str(row[at_["stripe_fee"]])) == sum(Decimal(w["stripe_fee"] or 0) for w in rows)
        refunds = [w for w in expected if w["refund_currency"] == row[at_["currency"]]]
        assert Decimal(str(row[at_["amount_refunded"]])) == sum(Decimal(w["amount_refunded"]) for w in refunds)
        assert row[0].startswith(f"Total {row[at_['currency']]}")
    assert Decimal(str(totals[-1][at_["amount_refunded"]])) == Decimal("5.00")  # USD: the one refund
    amounts = [sheet.cell(row=r, column=at_["amount"] + 1) for r in range(2, 11)]
    number_formats = {c.number_format for c in amounts if c.value is not None}
    assert number_formats == {"#,##0.00", "#,##0", "#,##0.000"}


def test_formulas_are_neutralised_in_text_cells_but_negative_amounts_stay_numbers(world, api):
    world.acme.tenant.name = "=Acme"
    world.acme.tenant.save()
    risky = {
        "=1+1": "'=1+1",
        "+41 22": "'+41 22",
        "-2+3+cmd|' /C calc'!A0": "'-2+3+cmd|' /C calc'!A0",
        "@SUM(A1)": "'@SUM(A1)",
        "\tTAB": "'\tTAB",
        "safe -1": "safe -1",
    }
    sessions = []
    for i, text in enumerate(risky):
        s = session(world.acme, when=at(f"2025-03-01 1{i}:00"), description=text, card_type="-visa", amount_minor=10)
        stripe_payment(s, fee=33)  # net -0.23: a negative amount
        sessions.append(s)

    rows = export_csv(api)
    book = parse_xlsx(content(api.get(URL, {"format": "xlsx"})))

    assert [r["description"] for r in rows] == list(risky.values())
    assert {r["tenant"] for r in rows} == {"'=Acme"} and {r["card_type"] for r in rows} == {"'-visa"}
    assert {r["net"] for r in rows} == {"-0.23"}  # an amount from an integer: a number, never a formula
    sheet = book["Payments"]
    at_ = {k: i for i, k in enumerate(COLUMN_KEYS)}
    cells = list(sheet.iter_rows(min_row=2, max_row=len(risky) + 1))
    assert [c[at_["description"]].value for c in cells] == list(risky.values())
    assert all(c[at_["description"]].data_type == "s" for c in cells)
    assert {c[at_["net"]].value for c in cells} == {-0.23} and {c[at_["net"]].data_type for c in cells} == {"n"}


def test_the_column_picker_keeps_the_order_asked_and_refuses_unknown_columns(api, acme_payments):
    rows = export_csv(api, columns="amount,session_id,date")
    response = api.get(URL, {"columns": "amount,secret"})

    assert list(rows[0]) == ["amount", "session_id", "date"] and len(rows) == len(acme_payments) + 1  # a refund
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["columns"][0].startswith("Unknown column(s): secret.")


def test_the_pay_session_api_filters_apply(api, acme_payments):
    paid, refunded, disputed, failed, *_ = acme_payments

    assert {r["session_id"] for r in export_csv(api, status="failed")} == {str(failed.uuid)}
    assert {r["session_id"] for r in export_csv(api, connector="Stripe_Stage")} == {str(refunded.uuid)}
    assert {r["session_id"] for r in export_csv(api, channel="ivr")} == {str(disputed.uuid)}
    assert {r["session_id"] for r in export_csv(api, call_sid=paid.call_sid)} == {str(paid.uuid)}
    after = export_csv(api, created_after="2025-02-01T10:30:00Z", created_before="2025-02-01T12:30:00Z")
    assert len(after) == 2


def test_an_unknown_or_invalid_filter_is_refused_with_the_error_envelope(api):
    misspelt = api.get(URL, {"stauts": "failed"})
    invalid = api.get(URL, {"status": "paid"})

    assert misspelt.status_code == 400 and "stauts" in misspelt.json()["error"]["message"]
    assert invalid.status_code == 400 and "status" in invalid.json()["error"]["fields"]


def test_another_tenant_rows_never_appear_whatever_the_filters(world, api):
    mine = session(world.acme, when=at("2025-01-10 10:00"))
    stripe_payment(mine, fee=10, charge_id="ch_shared")
    theirs = session(world.globex, when=at("2025-01-10 10:00"), call_sid=mine.call_sid, payment_sid=mine.payment_sid)
    stripe_payment(theirs, fee=99, charge_id="ch_shared", dispute="lost", payout_id="po_globex")
    payout(world.globex, stripe_id="po_globex", amount=1, arrival=at("2025-01-12 00:00"))
    probes = [
        {},
        {"connector": "Stripe_Prod"},
        {"call_sid": mine.call_sid},
        {"payment_sid": theirs.payment_sid},
        {"status": "succeeded"},
        {"date_from": "2025-01-01", "date_to": "2025-12-31"},
    ]

    for params in probes:
        rows = export_csv(api, **params)
        assert [r["session_id"] for r in rows] == [str(mine.uuid)], params
        assert rows[0]["stripe_fee"] == "0.10" and rows[0]["dispute_status"] == "" and rows[0]["payout_id"] == ""


def test_the_export_runs_the_same_queries_for_2_rows_as_for_40(world):
    from payments.reports.exports import PaymentsTable
    from payments.reports.writers import csv_chunks

    def export(n_new: int) -> tuple[int, int]:
        for i in range(n_new):
            stripe_payment(session(world.acme, when=at(f"2025-04-0{1 + i % 9} 10:{i:02d}")), fee=1)
        with CaptureQueriesContext(connection) as queries:
            body = b"".join(csv_chunks(PaymentsTable(tenant=world.acme.tenant, filters={})))
        return body.count(b"\r\n") - 1, len(queries)

    rows_few, queries_few = export(2)
    rows_many, queries_many = export(38)

    assert (rows_few, rows_many) == (2, 40)
    assert queries_few == queries_many  # no query per row
