"""CSV and XLSX writers for any report table (exports.PaymentsTable, summaries.*).

A table has `title`, `columns` (cells.Column), `csv_rows()` (text, already neutralised),
`xlsx_rows()` (typed values, cells.Amount for money) and `totals_rows()` (XLSX only,
read after the rows).

CSV: UTF-8 (optionally with a byte order mark, for Excel on Windows), RFC 4180 quoting
and CRLF, ISO 8601 dates, amounts as decimals in major units. Rows are written into a
small buffer that is handed on every ~64 KB, so memory stays flat whatever the size.
XLSX: openpyxl's write-only mode (rows go to a temporary file as they come), typed
cells, a frozen header, and one totals row per currency. A sheet holds at most
1,048,576 rows; a longer export continues on "<title> (2)", and so on.
"""

import csv
import io
import re
from collections.abc import Iterator

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from payments.reports.cells import (
    FORMULA_TRIGGERS,
    MONEY,
    RATIO,
    TEXT,
    Amount,
    excel_number_format,
    neutralise,
)

BOM = "\ufeff"
FLUSH_AT = 64 * 1024
EXCEL_MAX_ROWS = 1_048_576

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}


# A field that starts with a formula trigger starts the line or follows a comma (a
# pattern that starts with a literal is scanned for at C speed; `^|,` is not).
_AFTER_COMMA = re.compile(r",[=+\-@\t\r]")


def csv_chunks(table, *, bom: bool = False, progress=None) -> Iterator[bytes]:
    """The table as CSV, in chunks of about 64 KB. `progress(rows)` is called per chunk.

    Most rows need neither quoting nor neutralising: they are joined with commas as they
    are, which is byte for byte what csv.writer writes for them, at a fraction of its cost.
    A row that might need either (a quote, a line break, an extra comma, or a field that
    may start with a trigger) goes through neutralise() and csv.writer.
    """
    columns = table.columns
    text_at = [i for i, c in enumerate(columns) if c.kind == TEXT]
    commas = len(columns) - 1
    scratch = io.StringIO()
    careful = csv.writer(scratch, lineterminator="\r\n")

    def slow(row) -> str:
        row = list(row)
        for i in text_at:
            row[i] = neutralise(row[i])
        scratch.seek(0)
        scratch.truncate()
        careful.writerow(row)
        return scratch.getvalue()

    lines = [BOM] if bom else []
    lines.append(slow([c.header for c in columns]))
    size = rows = 0
    after_comma = _AFTER_COMMA.search
    for row in table.csv_rows():
        line = ",".join(row)
        if (
            commas
            and line.count(",") == commas
            and '"' not in line
            and "\n" not in line
            and "\r" not in line
            and line[0] not in FORMULA_TRIGGERS
            and not after_comma(line)
        ):
            line += "\r\n"
        else:
            line = slow(row)
        lines.append(line)
        size += len(line)
        rows += 1
        if size >= FLUSH_AT:
            yield "".join(lines).encode()
            lines.clear()
            size = 0
            if progress:
                progress(rows)
    table.rows_written = rows
    yield "".join(lines).encode()
    if progress:
        progress(rows)


class _Sheets:
    """Write-only sheets of one workbook, rolling over at Excel's row limit."""

    def __init__(self, workbook: Workbook, table):
        self.workbook, self.table = workbook, table
        self.bold = Font(bold=True)
        self.formats: dict[int, str] = {}
        self.sheet, self.count, self.rows_in_sheet = None, 0, 0
        self.money_at = [i for i, c in enumerate(table.columns) if c.kind == MONEY]
        self.text_at = [i for i, c in enumerate(table.columns) if c.kind == TEXT]
        self.ratio_at = [i for i, c in enumerate(table.columns) if c.kind == RATIO]

    def new_sheet(self) -> None:
        self.count += 1
        title = self.table.title if self.count == 1 else f"{self.table.title} ({self.count})"
        self.sheet = self.workbook.create_sheet(title[:31])
        for i, column in enumerate(self.table.columns):
            self.sheet.column_dimensions[get_column_letter(i + 1)].width = column.width
        self.sheet.freeze_panes = "A2"
        self.sheet.append([self.cell(c.header, bold=True) for c in self.table.columns])
        self.rows_in_sheet = 1

    def cell(self, value, *, bold=False, number_format=None):
        cell = WriteOnlyCell(self.sheet, value)
        if bold:
            cell.font = self.bold
        if number_format:
            cell.number_format = number_format
        return cell

    def append(self, values, *, bold=False) -> None:
        if self.sheet is None or self.rows_in_sheet >= EXCEL_MAX_ROWS:
            self.new_sheet()
        row = list(values)
        for i in self.text_at:
            if isinstance(row[i], str):
                row[i] = neutralise(row[i])
        for i in self.money_at:
            value = row[i]
            if isinstance(value, Amount):
                places = value.places
                fmt = self.formats.get(places) or self.formats.setdefault(places, excel_number_format(places))
                row[i] = self.cell(value.value, bold=bold, number_format=fmt)
        for i in self.ratio_at:
            if row[i] is not None:
                row[i] = self.cell(row[i], bold=bold, number_format="0.00%")
        if bold:
            row = [v if v is None or isinstance(v, Cell) else self.cell(v, bold=True) for v in row]
        self.sheet.append(row)
        self.rows_in_sheet += 1


def write_xlsx(table, fileobj, *, progress=None, every: int = 5000) -> int:
    """The table as an XLSX workbook into `fileobj`; returns the number of data rows."""
    workbook = Workbook(write_only=True)
    sheets = _Sheets(workbook, table)
    sheets.new_sheet()
    rows = 0
    for values in table.xlsx_rows():
        sheets.append(values)
        rows += 1
        if progress and rows % every == 0:
            progress(rows)
    for values in table.totals_rows():
        sheets.append(values, bold=True)
    table.rows_written = rows
    workbook.save(fileobj)
    if progress:
        progress(rows)
    return rows
