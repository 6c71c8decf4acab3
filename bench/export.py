"""The payments export (CSV, streamed) against PostgreSQL's own COPY of the same rows.

    .venv/bin/python bench/export.py [--rows 1000000] [--sizes 100000,1000000] [--rounds 2]

Builds a fresh database (`paydesk_bench_export`, or --database; migrated, dropped at the end unless
--keep-db) with `--rows` pay sessions of one tenant (plus a second tenant's, which no
export may contain), generated in SQL (INSERT … SELECT generate_series): most of them
paid, with their reconciliation record, Stripe charge, balance transaction (fee, net,
payout), daily payouts, a few refunds (one paid session in 50, refunded by half a day
later: a refund row of its own in the export) and disputes; the rest failed, cancelled or
in progress.

For each size N (a created_at range selecting exactly N sessions) it runs, in rounds,
each in a fresh process so that its peak memory is its own:

* export: what GET /api/v1/reports/payments?format=csv and an export job run: the
  export query through a server-side cursor, every row shaped in Python (local and UTC
  times, amounts in major units through core.money, formula neutralisation), CSV
  written in 64 KB chunks, to /dev/null;
* COPY: `COPY (<the export's own SQL>) TO STDOUT (FORMAT csv)`, read in chunks, to
  /dev/null: the same query, the same payment rows, PostgreSQL's formatting alone. The
  export also writes the refund rows (read by a second query and merged in time order),
  so it does a little more than COPY: the refund rows are counted in its rows.

It prints the best time of each, their ratio (goal ≤ 2), rows/s, and the export
process's peak resident memory (VmHWM), absolute and above what the process held before
the export started (goal ≤ 150 MB, and the same at every size: flat).

Then XLSX, the same rows, --xlsx-rows of them (default 20,000 and 100,000), written by
three writers side by side, each in its own process, best of --rounds: Paydesk's
(payments/reports/writers.py, what the API and jobs use), xlsxwriter in constant_memory
mode and openpyxl in write-only mode (both doing what Paydesk's does: typed cells with
number formats, neutralised text, a frozen bold header, totals rows). For each: rows/s
by the clock and by the writing process's own CPU time (steadier on a shared machine),
and peak memory. Goal: Paydesk's ≥ 20,000 rows/s at flat memory. A wrong row count
exits 1; a missed goal exits 0 unless --strict.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
# --database (or PAYDESK_BENCH_EXPORT_DB, which the measuring processes inherit) names it.
DB_NAME = os.environ.get("PAYDESK_BENCH_EXPORT_DB", "paydesk_bench_export")
DB_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
START = datetime(2025, 1, 1, tzinfo=UTC)
STEP_MS = 2000  # one session every 2 s: a million span about 23 days
RATIO_GOAL, MEMORY_GOAL_MB = 2.0, 150
XLSX_GOAL = 20_000  # rows/s
XLSX_WRITERS = ("paydesk", "xlsxwriter", "openpyxl")


def django_setup() -> None:
    os.environ.update(
        DATABASE_URL=DB_URL, DJANGO_SETTINGS_MODULE="config.settings.base", REDIS_URL="", LOG_LEVEL="WARNING"
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def admin_sql(statement: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
        admin.execute(statement)


# --- The data ---------------------------------------------------------------------------


def build(rows: int) -> None:
    from django.core.management import call_command
    from django.db import connection

    from connectors.services import connector_create
    from tenants.services import Actor, tenant_create

    call_command("migrate", verbosity=0)
    actor = Actor.system("bench")
    ids = {}
    for slug, zone in (("bench", "America/New_York"), ("other", "Asia/Tokyo")):
        tenant = tenant_create(
            slug=slug,
            name=slug.capitalize(),
            twilio_account_sid="AC" + "0" * 31 + str(len(ids)),
            twilio_auth_token="a" * 32,
            time_zone=zone,
            actor=actor,
        )
        connector = connector_create(
            tenant=tenant,
            unique_name="Stripe_Prod",
            environment="development",
            stripe_secret_key="sk_test_" + "x" * 24,
            actor=actor,
        )
        ids[slug] = (tenant.pk, connector.pk)
    with connection.cursor() as cursor:
        # Building an index once is far cheaper than a million inserts into it: drop the
        # plain indexes of the tables loaded (constraints stay), load, then rebuild them.
        cursor.execute("SET maintenance_work_mem = '256MB'")
        cursor.execute(_PLAIN_INDEXES)
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        for slug, count in (("bench", rows), ("other", max(rows // 20, 1000))):
            tenant_id, connector_id = ids[slug]
            cursor.execute(_SESSIONS, [slug, tenant_id, connector_id, slug, count, START, STEP_MS])
            cursor.execute("ANALYZE")
            for statement in _MIRROR:
                cursor.execute(statement, {"t": tenant_id, "c": connector_id})
                cursor.execute("ANALYZE")
        for _, definition in indexes:
            cursor.execute(definition)
        cursor.execute("ANALYZE")


_LOADED = (
    "payments_paysession",
    "reconciliation_stripecharge",
    "reconciliation_stripebalancetransaction",
    "reconciliation_sessionreconciliation",
)
_PLAIN_INDEXES = f"""
    SELECT indexname, indexdef FROM pg_indexes
    WHERE tablename IN {_LOADED!r} AND indexname NOT IN (SELECT conname FROM pg_constraint)
"""


_SESSIONS = """
INSERT INTO payments_paysession (
    uuid, tenant_id, connector_id, channel, call_sid, payment_sid, idempotency_key, request_fingerprint,
    callback_token, payment_method, amount_minor, currency, token_type, postal_code, security_code,
    valid_card_types, bank_account_type, confirmation, require_matching_inputs, description, parameter, status,
    capturing_field, required_fields, last_error_type, card_number_masked, card_last4, card_type, card_expiration,
    postal_code_value, bank_routing_number, bank_account_last2, result, payment_confirmation_code, payment_token,
    profile_id, pay_error_code, payment_error, connector_error, twilio_error_code, twilio_error_message,
    created_at, updated_at, last_activity_at, completed_at)
SELECT md5(%s || i)::uuid, %s, %s, CASE WHEN mod(i, 4) = 0 THEN 'ivr' ELSE 'agent' END,
       'CA' || md5('c' || i), 'PK' || md5('p' || i), 'k' || i, repeat('f', 64), md5(%s || 't' || i), 'credit-card',
       100 + mod(i * 7919, 99900), 'USD', '', true, true, '', '', false, '[]',
       CASE WHEN mod(i, 1000) = 0 THEN '=HYPERLINK("http://x")' ELSE 'Order #' || i END, '{}',
       s.status, '', '[]', '', 'xxxxxxxxxxxx' || lpad(mod(i, 10000)::text, 4, '0'), lpad(mod(i, 10000)::text, 4, '0'),
       'visa', '1230', '', '', '', s.result, CASE WHEN s.status = 'succeeded' THEN 'pi_' || md5('i' || i) ELSE '' END,
       '', '', '', '', '', '', '', ts, ts, ts, ts
FROM generate_series(1::bigint, %s) AS i,
     LATERAL (SELECT %s::timestamptz + (i * %s) * interval '1 millisecond' AS ts) t,
     LATERAL (SELECT CASE WHEN mod(i, 10) < 8 THEN 'succeeded' WHEN mod(i, 10) = 8 THEN 'failed' ELSE 'cancelled' END
                         AS status,
                     CASE WHEN mod(i, 10) < 8 THEN 'success' WHEN mod(i, 10) = 8 THEN 'payment-connector-error'
                          ELSE 'caller-hung-up' END AS result) s
"""

_MIRROR = [
    # A charge, a balance transaction (2.9% + 30) and a reconciliation record per paid session.
    """INSERT INTO reconciliation_stripecharge (tenant_id, connector_id, stripe_id, created, observed_at, updated_at,
           amount, amount_refunded, currency, status, disputed, payment_intent_id, customer_id, payment_method_id,
           balance_transaction_id, description, paydesk_ref)
       SELECT %(t)s, %(c)s, 'ch_' || substr(payment_confirmation_code, 4), created_at, created_at, created_at,
              amount_minor, CASE WHEN mod(id, 50) = 0 THEN amount_minor / 2 ELSE 0 END, 'USD', 'succeeded',
              mod(id, 997) = 0, payment_confirmation_code, '', '', 'txn_' || substr(payment_confirmation_code, 4),
              '', uuid
       FROM payments_paysession WHERE tenant_id = %(t)s AND status = 'succeeded'""",
    """INSERT INTO reconciliation_stripebalancetransaction (tenant_id, connector_id, stripe_id, created, observed_at,
           updated_at, type, reporting_category, source_id, amount, fee, net, currency, status, available_on, payout_id)
       SELECT %(t)s, %(c)s, balance_transaction_id, created, created, created, 'charge', 'charge', stripe_id, amount,
              (amount * 29) / 1000 + 30, amount - ((amount * 29) / 1000 + 30), 'USD', 'available',
              date_trunc('day', created) + interval '2 days',
              'po_' || %(t)s || '_' || to_char(date_trunc('day', created) + interval '2 days', 'YYYYMMDD')
       FROM reconciliation_stripecharge WHERE tenant_id = %(t)s""",
    """INSERT INTO reconciliation_stripepayout (tenant_id, connector_id, stripe_id, created, observed_at, updated_at,
           amount, currency, status, automatic, arrival_date, balance_transaction_id, transactions_linked_at)
       SELECT %(t)s, %(c)s, payout_id, min(available_on), now(), now(), sum(net), 'USD', 'paid', true,
              min(available_on), '', now()
       FROM reconciliation_stripebalancetransaction WHERE tenant_id = %(t)s GROUP BY payout_id""",
    """INSERT INTO reconciliation_stripedispute (tenant_id, connector_id, stripe_id, created, observed_at,
           updated_at, amount, currency, status, reason, charge_id, payment_intent_id)
       SELECT %(t)s, %(c)s, 'dp_' || substr(stripe_id, 4), created, created, created, amount, 'USD',
              'needs_response', 'fraudulent', stripe_id, payment_intent_id
       FROM reconciliation_stripecharge WHERE tenant_id = %(t)s AND disputed""",
    """INSERT INTO reconciliation_sessionreconciliation (tenant_id, connector_id, session_id, state, detail,
           stripe_object_id, charge_id, payment_intent_id, stripe_amount, stripe_currency, amount_refunded, fee, net,
           available_on, payout_id, checked_at, matched_at)
       SELECT %(t)s, %(c)s, s.id, CASE WHEN ch.disputed THEN 'disputed' WHEN ch.amount_refunded > 0 THEN 'refunded'
              ELSE 'matched' END, '', s.payment_confirmation_code, ch.stripe_id, ch.payment_intent_id, ch.amount,
              'USD', ch.amount_refunded, bt.fee, bt.net, bt.available_on, bt.payout_id, now(), now()
       FROM payments_paysession s
       JOIN reconciliation_stripecharge ch
         ON ch.tenant_id = %(t)s AND ch.connector_id = %(c)s AND ch.paydesk_ref = s.uuid
       JOIN reconciliation_stripebalancetransaction bt
         ON bt.tenant_id = %(t)s AND bt.connector_id = %(c)s AND bt.stripe_id = ch.balance_transaction_id
       WHERE s.tenant_id = %(t)s""",
    # Paydesk's refund of each refunded charge, made by Stripe half a day after the payment.
    """INSERT INTO refunds_refund (uuid, tenant_id, session_id, connector_id, amount_minor, currency, reason, note,
           origin, status, failure_reason, stripe_refund_id, refunded_at, stripe_observed_at, idempotency_key,
           request_fingerprint, requested_by, checks, created_at, updated_at, completed_at)
       SELECT md5('r' || s.id)::uuid, %(t)s, s.id, %(c)s, ch.amount_refunded, 'USD', 'requested_by_customer', '',
              'paydesk', 'succeeded', '', 're_' || substr(ch.stripe_id, 4), ch.created + interval '12 hours', now(),
              'refund-' || s.id, '', 'bench', 0, ch.created + interval '12 hours', now(),
              ch.created + interval '12 hours'
       FROM reconciliation_stripecharge ch
       JOIN payments_paysession s ON s.tenant_id = %(t)s AND s.uuid = ch.paydesk_ref
       WHERE ch.tenant_id = %(t)s AND ch.connector_id = %(c)s AND ch.amount_refunded > 0""",
]


def filters_for(size: int) -> dict:
    """A created_at range that selects exactly `size` sessions (one every STEP_MS)."""
    end = START + timedelta(milliseconds=STEP_MS * size + STEP_MS // 2)
    return {"created_after": START.isoformat(), "created_before": end.isoformat()}


# --- The XLSX writers Paydesk's is measured against ----------------------------------------
#
# Each writes what payments/reports/writers.py writes (typed cells, number formats,
# neutralised text, a frozen bold header, the totals rows), one sheet (the sizes here stay
# far below Excel's row limit), with its library's constant-memory mode.


def xlsx_xlsxwriter(table, out) -> int:
    import datetime as dt

    import xlsxwriter

    from payments.reports.cells import MONEY, RATIO, TEXT, Amount, excel_number_format, neutralise

    book = xlsxwriter.Workbook(out, {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False})
    sheet = book.add_worksheet(table.title)
    bold = book.add_format({"bold": True})
    formats = {
        dt.datetime: book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
        dt.date: book.add_format({"num_format": "yyyy-mm-dd"}),
        dt.time: book.add_format({"num_format": "hh:mm:ss"}),
    }
    money, ratio = {}, book.add_format({"num_format": "0.00%"})
    text_at = {i for i, c in enumerate(table.columns) if c.kind == TEXT}
    kinds = [c.kind for c in table.columns]
    for i, column in enumerate(table.columns):
        sheet.set_column(i, i, column.width)
        sheet.write_string(0, i, column.header, bold)
    sheet.freeze_panes(1, 0)

    def write(r, values):
        for i, v in enumerate(values):
            if v is None or v == "":
                continue
            if isinstance(v, str):
                sheet.write_string(r, i, neutralise(v) if i in text_at else v)
            elif isinstance(v, Amount):
                if v.places not in money:
                    money[v.places] = book.add_format({"num_format": excel_number_format(v.places)})
                sheet.write_number(r, i, v.value, money[v.places])
            elif isinstance(v, dt.date | dt.time):
                sheet.write_datetime(r, i, v, formats[type(v)])
            elif kinds[i] == RATIO:
                sheet.write_number(r, i, v, ratio)
            elif kinds[i] != MONEY:
                sheet.write(r, i, v)

    rows = 0
    for values in table.xlsx_rows():
        rows += 1
        write(rows, values)
    for n, values in enumerate(table.totals_rows(), start=rows + 1):
        write(n, values)
    book.close()
    return rows


def xlsx_openpyxl(table, out) -> int:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    from payments.reports.cells import RATIO, TEXT, Amount, excel_number_format, neutralise

    book = Workbook(write_only=True)
    sheet = book.create_sheet(table.title)
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    text_at = {i for i, c in enumerate(table.columns) if c.kind == TEXT}
    ratio_at = {i for i, c in enumerate(table.columns) if c.kind == RATIO}

    def cell(value, number_format=None, font=None):
        c = WriteOnlyCell(sheet, value)
        if number_format:
            c.number_format = number_format
        if font:
            c.font = font
        return c

    sheet.append([cell(c.header, font=bold) for c in table.columns])

    def append(values):
        row = list(values)
        for i, v in enumerate(row):
            if isinstance(v, Amount):
                row[i] = cell(v.value, excel_number_format(v.places))
            elif i in text_at and isinstance(v, str):
                row[i] = neutralise(v)
            elif i in ratio_at and v is not None:
                row[i] = cell(v, "0.00%")
        sheet.append(row)

    rows = 0
    for values in table.xlsx_rows():
        append(values)
        rows += 1
    for values in table.totals_rows():
        append(values)
    book.save(out)
    return rows


# --- One measurement, in its own process ------------------------------------------------


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def worker(mode: str, size: int) -> dict:
    django_setup()
    from django.db import connection

    from payments.reports import selectors
    from payments.reports.exports import PaymentsTable
    from payments.reports.writers import csv_chunks
    from tenants.models import Tenant

    tenant = Tenant.objects.get(slug="bench")
    filters = filters_for(size)
    refunds = selectors.report_refunds(tenant=tenant, filters=filters).count() if mode != "copy" else 0
    connection.ensure_connection()
    baseline = _rss_kb("VmRSS")
    written = rows = 0
    cpu_started = time.process_time()
    started = time.perf_counter()
    if mode == "export":
        table = PaymentsTable(tenant=tenant, filters=filters)
        with open(os.devnull, "wb") as sink:
            for chunk in csv_chunks(table):
                written += len(chunk)
                sink.write(chunk)
        rows = table.rows_written
    elif mode.startswith("xlsx-"):
        import tempfile

        from payments.reports.writers import write_xlsx

        write = {"paydesk": write_xlsx, "xlsxwriter": xlsx_xlsxwriter, "openpyxl": xlsx_openpyxl}[mode[5:]]
        table = PaymentsTable(tenant=tenant, filters=filters)
        with tempfile.TemporaryFile() as out:
            rows = write(table, out)
            written = out.tell()
    else:
        sql, params = selectors.payment_sql(tenant=tenant, filters=filters)
        with connection.cursor() as cursor, open(os.devnull, "wb") as sink:
            raw = cursor.cursor  # psycopg's own cursor: COPY is not in the DB-API
            with raw.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv, HEADER)", params) as copy:
                for chunk in copy:
                    written += len(chunk)
                    rows += bytes(chunk).count(b"\n")
                    sink.write(chunk)
            rows -= 1  # the header
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    return {
        "cpu_seconds": cpu_seconds,
        "mode": mode,
        "size": size,
        "expected": size + refunds,  # the export's rows: the sessions, and the refunds in the window
        "refunds": refunds,
        "rows": rows,
        "bytes": written,
        "seconds": seconds,
        "peak_mb": _rss_kb("VmHWM") / 1024,
        "growth_mb": (_rss_kb("VmHWM") - baseline) / 1024,
    }


def measure(mode: str, size: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", mode, str(size)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{mode} {size} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="pay sessions to generate (default 1,000,000)")
    parser.add_argument("--sizes", default="", help="export sizes, comma-separated (default: 100000 and --rows)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each side per size; the best counts")
    parser.add_argument("--database", default=DB_NAME, help=f"database to build and drop (default {DB_NAME})")
    parser.add_argument("--keep-db", action="store_true", help="keep the database (and reuse it with --reuse-db)")
    parser.add_argument("--reuse-db", action="store_true", help="use the database a --keep-db run left")
    parser.add_argument(
        "--xlsx-rows", default="20000,100000", help="time the XLSX writers at these sizes, comma-separated (0: skip)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]))))
        return 0

    if args.database != DB_NAME:  # the measuring processes read it from their environment
        os.environ["PAYDESK_BENCH_EXPORT_DB"] = args.database
        os.execv(sys.executable, [sys.executable, *sys.argv])
    sizes = sorted({int(s) for s in args.sizes.split(",") if s} or {min(100_000, args.rows), args.rows})
    if max(sizes) > args.rows:
        parser.error("a size is larger than --rows")
    started = time.perf_counter()
    if not args.reuse_db:
        admin_sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        admin_sql(f"CREATE DATABASE {DB_NAME}")
        django_setup()
        print(f"generating {args.rows:,} pay sessions with their Stripe mirror …", file=sys.stderr, flush=True)
        build(args.rows)
        from django.db import connections

        connections.close_all()
        print(f"  done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    results = {}
    try:
        for size in sizes:
            measure("copy", size)  # warm-up: the same pages in cache for both sides
            runs = {"export": [], "copy": []}
            for round_ in range(args.rounds):
                for mode in ("export", "copy") if round_ % 2 == 0 else ("copy", "export"):
                    runs[mode].append(measure(mode, size))
                    print(f"  {size:>9,} {mode:<6} {runs[mode][-1]['seconds']:6.2f} s", file=sys.stderr, flush=True)
            results[size] = {m: min(r, key=lambda x: x["seconds"]) for m, r in runs.items()}
            results[size]["export_peak"] = max(r["peak_mb"] for r in runs["export"])
            results[size]["export_growth"] = max(r["growth_mb"] for r in runs["export"])
        xlsx = {}
        for size in sorted({min(int(n), args.rows) for n in args.xlsx_rows.split(",") if int(n)}):
            runs = {w: [] for w in XLSX_WRITERS}
            for round_ in range(args.rounds):
                for writer in XLSX_WRITERS if round_ % 2 == 0 else XLSX_WRITERS[::-1]:
                    runs[writer].append(measure(f"xlsx-{writer}", size))
                    print(f"  {size:>9,} xlsx {writer:<10} {runs[writer][-1]['seconds']:6.2f} s", file=sys.stderr)
            xlsx[size] = {w: min(r, key=lambda x: x["seconds"]) for w, r in runs.items()}
    finally:
        if not args.keep_db:
            admin_sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    return report(results, xlsx, args.strict)


def report(results: dict, xlsx: dict | None, strict: bool) -> int:
    print("\nPayments export (CSV) vs COPY (<the export's SQL>) TO STDOUT (FORMAT csv); best of each, to /dev/null")
    header = (
        f"{'rows':>10} {'export s':>9} {'COPY s':>8} {'ratio':>6} {'export rows/s':>14} "
        f"{'export MB':>10} {'COPY MB':>8} {'peak RSS MB':>12} {'above start MB':>15}"
    )
    print(header)
    failed, missed = [], []
    for size, r in results.items():
        export, copy = r["export"], r["copy"]
        ratio = export["seconds"] / copy["seconds"]
        print(
            f"{size:>10,} {export['seconds']:>9.2f} {copy['seconds']:>8.2f} {ratio:>6.2f} "
            f"{export['rows'] / export['seconds']:>14,.0f} {export['bytes'] / 2**20:>10.1f} "
            f"{copy['bytes'] / 2**20:>8.1f} {r['export_peak']:>12.1f} {r['export_growth']:>15.1f}"
        )
        if export["rows"] != export["expected"] or copy["rows"] != size:
            failed.append(
                f"{size}: export wrote {export['rows']} rows (expected {export['expected']}), COPY {copy['rows']}"
            )
        if ratio > RATIO_GOAL:
            missed.append(f"time ratio {ratio:.2f} > {RATIO_GOAL} at {size:,} rows")
        if r["export_peak"] > MEMORY_GOAL_MB:
            missed.append(f"peak memory {r['export_peak']:.0f} MB > {MEMORY_GOAL_MB} MB at {size:,} rows")
    refund_rows = ", ".join(f"{size:,}: {r['export']['refunds']:,}" for size, r in results.items())
    print(f"refund rows in the export (beside the sessions), by size: {refund_rows}")
    peaks = [r["export_peak"] for r in results.values()]
    flat = max(peaks) - min(peaks)
    print(f"memory across sizes: peak RSS {min(peaks):.1f}–{max(peaks):.1f} MB (spread {flat:.1f} MB)")
    if xlsx:
        csv_rate = {size: r["export"]["rows"] / r["export"]["seconds"] for size, r in results.items()}
        print(
            "\nXLSX, the same rows (typed cells, number formats, neutralised text, totals rows); best of each;"
            f" goal for Paydesk's: ≥ {XLSX_GOAL:,} rows/s"
        )
        print(
            f"{'rows':>10} {'writer':<11} {'s':>7} {'rows/s':>9} {'rows/s CPU':>11} {'MB':>6} {'peak RSS MB':>12}"
            f" {'above start MB':>15}"
        )
        for size, by_writer in xlsx.items():
            for writer, r in by_writer.items():
                print(
                    f"{size:>10,} {writer:<11} {r['seconds']:>7.2f} {r['rows'] / r['seconds']:>9,.0f}"
                    f" {r['rows'] / r['cpu_seconds']:>11,.0f} {r['bytes'] / 2**20:>6.1f} {r['peak_mb']:>12.1f}"
                    f" {r['growth_mb']:>15.1f}"
                )
                if r["rows"] != size:
                    failed.append(f"XLSX ({writer}) wrote {r['rows']} rows of {size}")
            ours = by_writer["paydesk"]
            rate = ours["rows"] / ours["seconds"]
            nearest_csv = csv_rate.get(size) or next(iter(csv_rate.values()))
            print(f"{'':>10} Paydesk's XLSX ÷ CSV export, rows/s: {rate / nearest_csv:.2f}")
            if rate < XLSX_GOAL:
                missed.append(f"XLSX {rate:,.0f} rows/s < {XLSX_GOAL:,} at {size:,} rows")
            if ours["peak_mb"] > MEMORY_GOAL_MB:
                missed.append(f"XLSX peak memory {ours['peak_mb']:.0f} MB > {MEMORY_GOAL_MB} MB at {size:,} rows")
    for line in failed:
        print(f"FAIL {line}")
    for line in missed:
        print(f"GOAL MISSED {line}")
    if not failed and not missed:
        xlsx_goal = f"; Paydesk's XLSX ≥ {XLSX_GOAL:,} rows/s" if xlsx else ""
        print(f"PASS: every size within {RATIO_GOAL}x COPY's time and {MEMORY_GOAL_MB} MB{xlsx_goal}")
    return 1 if failed or (strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
