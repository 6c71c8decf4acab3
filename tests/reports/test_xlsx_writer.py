"""The streaming XLSX writer (payments/reports/writers.py), read back with openpyxl: every
value type keeps its type and format, text survives XML's special characters, formulas
are neutralised, a long table rolls over to a second sheet, and the package opens."""

import io
import zipfile
from datetime import date, datetime, time
from decimal import Decimal

import openpyxl

from payments.reports import writers
from payments.reports.cells import BOOL, CODE, DATE, DATETIME, INT, MONEY, RATIO, TEXT, TIME, Column, amount


class Table:
    title = "Payments"
    columns = [
        Column("text", "Text", TEXT),
        Column("code", "Code", CODE),
        Column("day", "Day", DATE),
        Column("at", "At", TIME),
        Column("when", "When", DATETIME),
        Column("n", "N", INT),
        Column("money", "Money", MONEY),
        Column("rate", "Rate", RATIO),
        Column("yes", "Yes", BOOL),
    ]
    rows_written = 0

    def __init__(self, rows, totals=()):
        self.rows, self.totals = rows, list(totals)

    def xlsx_rows(self):
        yield from self.rows

    def totals_rows(self):
        return self.totals


def written(table) -> openpyxl.Workbook:
    out = io.BytesIO()
    assert writers.write_xlsx(table, out) == len(table.rows)
    return openpyxl.load_workbook(io.BytesIO(out.getvalue()))


def test_values_keep_their_types_and_formats():
    row = (
        "Order #1",
        "succeeded",
        date(2025, 3, 1),
        time(23, 58, 7),
        datetime(2025, 3, 2, 4, 58, 7),
        42,
        amount(-1234, "USD"),
        Decimal("0.8125"),
        True,
    )
    book = written(Table([row], totals=[["Total USD", None, None, None, None, 42, amount(-1234, "USD"), None, None]]))

    sheet = book["Payments"]
    header, cells, total = list(sheet.iter_rows())
    assert [c.value for c in header] == [c.header for c in Table.columns] and all(c.font.b for c in header)
    assert [c.value for c in cells] == [
        "Order #1",
        "succeeded",
        datetime(2025, 3, 1),
        time(23, 58, 7),
        datetime(2025, 3, 2, 4, 58, 7),
        42,
        -12.34,
        0.8125,
        True,
    ]
    formats = [c.number_format for c in cells]
    assert formats[2:5] == ["yyyy-mm-dd", "hh:mm:ss", "yyyy-mm-dd hh:mm:ss"]
    assert (formats[6], formats[7]) == ("#,##0.00", "0.00%")
    assert total[6].value == -12.34 and total[6].font.b and total[6].number_format == "#,##0.00"
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["A"].width == Table.columns[0].width


def test_text_survives_xml_and_formulas_are_neutralised():
    texts = ["a & b < c > d", "  padded  ", "=1+1", "@SUM(A1)", "bell\x07 and nul\x00", "x" * 40_000, "", "Ünïcødé ✓"]
    rows = [(t, *([None] * 8)) for t in texts]

    sheet = written(Table(rows))["Payments"]

    values = [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert values == [
        "a & b < c > d",
        "  padded  ",
        "'=1+1",
        "'@SUM(A1)",
        "bell_x0007_ and nul_x0000_",  # characters XML cannot hold, as Excel writes them
        "x" * writers.EXCEL_MAX_TEXT,
        None,  # an empty text is an empty cell
        "Ünïcødé ✓",
    ]


def test_a_table_longer_than_a_sheet_continues_on_the_next(monkeypatch):
    monkeypatch.setattr(writers, "EXCEL_MAX_ROWS", 3)  # header + 2 rows per sheet
    rows = [(f"row {i}", *([None] * 8)) for i in range(5)]

    book = written(Table(rows))

    assert book.sheetnames == ["Payments", "Payments (2)", "Payments (3)"]
    seen = [r[0] for name in book.sheetnames for r in book[name].iter_rows(min_row=2, values_only=True)]
    assert seen == [f"row {i}" for i in range(5)]


def test_the_package_holds_what_excel_needs_and_no_zip64_for_a_small_file():
    out = io.BytesIO()
    writers.write_xlsx(Table([("a", *([None] * 8))]), out)

    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as package:
        names = set(package.namelist())
        assert {
            "[Content_Types].xml",
            "_rels/.rels",
            "xl/workbook.xml",
            "xl/_rels/workbook.xml.rels",
            "xl/styles.xml",
            "xl/worksheets/sheet1.xml",
        } <= names
        assert all(info.file_size < 2**31 and not info.extra for info in package.infolist())
        assert package.testzip() is None
