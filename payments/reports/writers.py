"""CSV and XLSX writers for any report table (exports.PaymentsTable, summaries.*).

A table has `title`, `columns` (cells.Column), `csv_rows()` (text, already neutralised),
`xlsx_rows()` (typed values, cells.Amount for money) and `totals_rows()` (XLSX only,
read after the rows).

CSV: UTF-8 (optionally with a byte order mark, for Excel on Windows), RFC 4180 quoting
and CRLF, ISO 8601 dates, amounts as decimals in major units. Rows are written into a
small buffer that is handed on every ~64 KB, so memory stays flat whatever the size.
XLSX: streamed into the zip as rows come (see "XLSX" below), typed cells (numbers,
dates and times with their formats, money with its currency's decimals), formula
neutralisation as in CSV, a frozen bold header, and one totals row per currency. A sheet
holds at most 1,048,576 rows; a longer export continues on "<title> (2)", and so on.
"""

import csv
import io
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

from payments.reports.cells import (
    DATE,
    DATETIME,
    FORMULA_TRIGGERS,
    RATIO,
    TEXT,
    TIME,
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


# --- XLSX --------------------------------------------------------------------------------
#
# SpreadsheetML (ECMA-376 Part 1) written as it streams: each sheet's XML goes straight into
# its zip member, a row at a time, so memory stays flat at any size. A row is one string
# built by a small function per value type. xlsxwriter's constant_memory mode (the usual
# choice) and openpyxl's write-only mode build an object and an XML element per cell:
# 3,400 and 2,100 rows/s of the payments export on our 2-core machine, against 20,000 asked
# for (bench/export.py measures all three side by side). The package parts around the
# sheets are fixed text; styles are collected as the rows need them and written last.

_EXCEL_EPOCH = datetime(1899, 12, 30)
_XML_SPECIAL = re.compile(r"[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_XML_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
EXCEL_MAX_TEXT = 32_767
NUMBER_FORMATS = {DATE: "yyyy-mm-dd", TIME: "hh:mm:ss", DATETIME: "yyyy-mm-dd hh:mm:ss", RATIO: "0.00%"}


def _xml_text(value: str) -> str:
    """Text for an element: &, < and > escaped; characters XML cannot hold written as
    Excel's _xHHHH_ escapes."""
    value = _XML_CONTROL.sub(lambda m: f"_x{ord(m.group()):04X}_", value)
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _column_letter(n: int) -> str:
    """1 → A, 26 → Z, 27 → AA."""
    letters = ""
    while n:
        n, rest = divmod(n - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _serial(value) -> float:
    """Days since Excel's epoch (1899-12-30), as Excel stores dates and times."""
    if isinstance(value, datetime):
        delta = value.replace(tzinfo=None) - _EXCEL_EPOCH
        return delta.days + (delta.seconds + delta.microseconds / 1e6) / 86400
    if isinstance(value, date):
        return (value - _EXCEL_EPOCH.date()).days
    return (value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6) / 86400


class _Styles:
    """cellXfs as the rows ask for them: (number format, bold) → index."""

    def __init__(self):
        self.index: dict[tuple[str, bool], int] = {("", False): 0, ("", True): 1}
        self.codes: dict[str, int] = {}

    def __call__(self, code: str, bold: bool = False) -> int:
        key = (code, bold)
        if key not in self.index:
            if code and code not in self.codes:
                self.codes[code] = 164 + len(self.codes)  # 164 and up: custom formats
            self.index[key] = len(self.index)
        return self.index[key]

    def xml(self) -> str:
        formats = "".join(f'<numFmt numFmtId="{i}" formatCode="{escape(c)}"/>' for c, i in self.codes.items())
        xfs = "".join(
            f'<xf numFmtId="{self.codes.get(code, 0)}" fontId="{int(bold)}" fillId="0" borderId="0" xfId="0"'
            + (' applyNumberFormat="1"' if code else "")
            + (' applyFont="1"' if bold else "")
            + "/>"
            for code, bold in self.index
        )
        return (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            f'<numFmts count="{len(self.codes)}">{formats}</numFmts>'
            '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
            '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
            '<fills count="2"><fill><patternFill patternType="none"/></fill>'
            '<fill><patternFill patternType="gray125"/></fill></fills>'
            '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
            '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
            f'<cellXfs count="{len(self.index)}">{xfs}</cellXfs>'
            '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
            "</styleSheet>"
        )


class _Rows:
    """Turns typed rows into the XML of one sheet's rows. Values are typed by the table
    (cells.Column kinds): text is neutralised, money is cells.Amount, ratios numbers."""

    def __init__(self, columns, styles: _Styles):
        self.letters = [_column_letter(i + 1) for i in range(len(columns))]
        self.text_at = frozenset(i for i, c in enumerate(columns) if c.kind == TEXT)
        self.ratio_at = frozenset(i for i, c in enumerate(columns) if c.kind == RATIO)
        self.styles = styles
        self.money: dict[tuple[int, bool], int] = {}
        self.plain = {kind: styles(code) for kind, code in NUMBER_FORMATS.items()}
        self.bold = {kind: styles(code, True) for kind, code in NUMBER_FORMATS.items()}

    def money_style(self, places: int, bold: bool) -> int:
        key = (places, bold)
        if key not in self.money:
            self.money[key] = self.styles(excel_number_format(places), bold)
        return self.money[key]

    def row(self, n: int, values, *, bold: bool = False) -> str:
        """One <row>: the hottest code of an export, so locals and one branch per type."""
        parts = [f'<row r="{n}">']
        append, letters, text_at, special = parts.append, self.letters, self.text_at, _XML_SPECIAL.search
        styles = self.bold if bold else self.plain
        font = ' s="1"' if bold else ""
        for i, value in enumerate(values):
            kind = type(value)
            if kind is str:
                if not value:
                    continue
                if i in text_at and value[0] in FORMULA_TRIGGERS:
                    value = "'" + value
                if len(value) > EXCEL_MAX_TEXT:
                    value = value[:EXCEL_MAX_TEXT]
                if special(value):
                    value = _xml_text(value)
                space = ' xml:space="preserve"' if value[0] <= " " or value[-1] <= " " else ""
                append(f'<c r="{letters[i]}{n}"{font} t="inlineStr"><is><t{space}>{value}</t></is></c>')
            elif value is None:
                continue
            elif kind is Amount:
                append(f'<c r="{letters[i]}{n}" s="{self.money_style(value.places, bold)}"><v>{value.value}</v></c>')
            elif kind is datetime:
                append(f'<c r="{letters[i]}{n}" s="{styles[DATETIME]}"><v>{_serial(value)!r}</v></c>')
            elif kind is date:
                append(f'<c r="{letters[i]}{n}" s="{styles[DATE]}"><v>{_serial(value)}</v></c>')
            elif kind is time:
                append(f'<c r="{letters[i]}{n}" s="{styles[TIME]}"><v>{_serial(value)!r}</v></c>')
            elif kind is bool:
                append(f'<c r="{letters[i]}{n}"{font} t="b"><v>{int(value)}</v></c>')
            elif i in self.ratio_at:
                append(f'<c r="{letters[i]}{n}" s="{styles[RATIO]}"><v>{value}</v></c>')
            elif kind is int or kind is float or kind is Decimal:
                append(f'<c r="{letters[i]}{n}"{font}><v>{value}</v></c>')
            else:  # anything else is written as its text
                append(f'<c r="{letters[i]}{n}"{font} t="inlineStr"><is><t>{_xml_text(str(value))}</t></is></c>')
        append("</row>")
        return "".join(parts)


class _Sheets:
    """The workbook's sheets, each a zip member written as its rows come, rolling over at
    Excel's row limit to "<title> (2)" and so on."""

    def __init__(self, package: zipfile.ZipFile, table, styles: _Styles):
        self.package, self.table, self.styles = package, table, styles
        self.rows = _Rows(table.columns, styles)
        self.titles: list[str] = []
        self.out = None
        self.buffer: list[str] = []
        self.size = 0
        self.rows_in_sheet = 0

    def new_sheet(self) -> None:
        self.close_sheet()
        count = len(self.titles) + 1
        self.titles.append((self.table.title if count == 1 else f"{self.table.title} ({count})")[:31])
        # The sheet's XML goes to a temporary file, then into the zip once its size is known:
        # ZIP64 only when a member needs it (some Excel versions warn about it otherwise).
        self.out = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close_sheet
        widths = "".join(
            f'<col min="{i}" max="{i}" width="{c.width}" customWidth="1"/>'
            for i, c in enumerate(self.table.columns, start=1)
        )
        self.out.write(
            (
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
                '<sheetViews><sheetView workbookViewId="0">'
                '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
                '<selection pane="bottomLeft"/></sheetView></sheetViews>'
                f'<sheetFormatPr defaultRowHeight="15"/><cols>{widths}</cols><sheetData>'
            ).encode()
        )
        self.rows_in_sheet = 0
        self.append([c.header for c in self.table.columns], bold=True)

    def append(self, values, *, bold: bool = False) -> None:
        if self.out is None or self.rows_in_sheet >= EXCEL_MAX_ROWS:
            self.new_sheet()
        self.rows_in_sheet += 1
        line = self.rows.row(self.rows_in_sheet, values, bold=bold)
        self.buffer.append(line)
        self.size += len(line)
        if self.size >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.out.write("".join(self.buffer).encode())
            self.buffer.clear()
            self.size = 0

    def close_sheet(self) -> None:
        if self.out is not None:
            self.flush()
            self.out.write(b'</sheetData><pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" '
                           b'header="0.3" footer="0.3"/></worksheet>')  # fmt: skip
            size = self.out.tell()
            self.out.seek(0)
            name = f"xl/worksheets/sheet{len(self.titles)}.xml"
            with self.package.open(name, "w", force_zip64=size >= zipfile.ZIP64_LIMIT) as member:
                shutil.copyfileobj(self.out, member, FLUSH_AT * 16)
            self.out.close()
            self.out = None


def write_xlsx(table, fileobj, *, progress=None, every: int = 5000) -> int:
    """The table as an XLSX workbook into `fileobj`; returns the number of data rows."""
    styles = _Styles()
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as package:
        sheets = _Sheets(package, table, styles)
        sheets.new_sheet()
        rows = 0
        for values in table.xlsx_rows():
            sheets.append(values)
            rows += 1
            if progress and rows % every == 0:
                progress(rows)
        for values in table.totals_rows():
            sheets.append(values, bold=True)
        sheets.close_sheet()
        _write_package(package, sheets.titles, styles)
    table.rows_written = rows
    if progress:
        progress(rows)
    return rows


def _write_package(package: zipfile.ZipFile, titles: list[str], styles: _Styles) -> None:
    """Everything around the sheets: content types, relationships, workbook, styles."""
    head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    package_rel = "http://schemas.openxmlformats.org/package/2006/relationships"
    sheet_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
    numbers = range(1, len(titles) + 1)
    package.writestr(
        "[Content_Types].xml",
        head + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        + "".join(f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="{sheet_type}"/>' for n in numbers)
        + "</Types>",
    )
    package.writestr(
        "_rels/.rels",
        head + f'<Relationships xmlns="{package_rel}">'
        f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    )
    sheets = "".join(
        f'<sheet name={quoteattr(title)} sheetId="{n}" r:id="rId{n}"/>'
        for n, title in zip(numbers, titles, strict=True)
    )
    package.writestr(
        "xl/workbook.xml", head + f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets>{sheets}</sheets></workbook>'
    )
    links = "".join(
        f'<Relationship Id="rId{n}" Type="{rel}/worksheet" Target="worksheets/sheet{n}.xml"/>' for n in numbers
    )
    package.writestr(
        "xl/_rels/workbook.xml.rels",
        head + f'<Relationships xmlns="{package_rel}">{links}'
        f'<Relationship Id="rId{len(titles) + 1}" Type="{rel}/styles" Target="styles.xml"/></Relationships>',
    )
    package.writestr("xl/styles.xml", styles.xml())
