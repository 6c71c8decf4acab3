"""What every report's cells share: column kinds, formula neutralisation, money as text
(CSV) or as a typed number (XLSX). Money is converted by core.money only.

Formula neutralisation: a text value that starts with `=`, `+`, `-`, `@`, a tab or a
carriage return (OWASP's list) is written with a leading apostrophe, in CSV and XLSX
alike, so no spreadsheet runs it. Only text is neutralised: amounts are written from
integers by core.money, so a negative amount ("-12.50") is a plain number, never a
formula, and stays a number (a numeric cell in XLSX; in CSV a value matching
`-?digits[.digits]`, which spreadsheets read as a number).
"""

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import NamedTuple

from core import money

TEXT = "text"  # from outside (partners, Twilio, Stripe, tenants): neutralised
CODE = "code"  # Paydesk's own vocabulary (status, channel, currency...): written as is
DATE, TIME, DATETIME = "date", "time", "datetime"
MONEY = "money"
INT = "int"
RATIO = "ratio"
BOOL = "bool"

FORMULA_TRIGGERS = frozenset("=+-@\t\r")


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: str = TEXT
    width: int = 14  # XLSX column width, in characters


def neutralise(value):
    """Text a spreadsheet would execute as a formula, made inert with a leading apostrophe."""
    if value and value[0] in FORMULA_TRIGGERS:
        return "'" + value
    return value


@lru_cache(maxsize=16384)
def money_text(amount_minor: int, currency: str) -> str:
    """Minor units → "12.50" (cached: the same amounts recur, and this runs once per cell)."""
    return money.to_major_string(amount_minor, currency)


class Amount(NamedTuple):
    """A typed money cell for XLSX: the major-unit Decimal and its currency's decimals."""

    value: Decimal
    places: int


def amount(amount_minor: int | None, currency: str | None) -> Amount | None:
    if amount_minor is None or not currency:
        return None
    return Amount(money.to_major_decimal(amount_minor, currency), money.exponent(currency))


def excel_number_format(places: int) -> str:
    return "#,##0" + ("." + "0" * places if places else "")


class Totals:
    """Sums in minor units per currency and money column: integers, never floats, and one
    currency per total."""

    def __init__(self, money_keys: list[str]):
        self.money_keys = money_keys
        self.by_currency: dict[str, dict] = {}

    def add(self, currency: str | None, key: str, amount_minor: int | None, *, count: bool = False) -> None:
        if not currency:
            return
        bucket = self.by_currency.get(currency)
        if bucket is None:
            bucket = self.by_currency[currency] = {"rows": 0, **dict.fromkeys(self.money_keys, 0)}
        if count:
            bucket["rows"] += 1
        if amount_minor is not None:
            bucket[key] += amount_minor

    def rows(self, columns: list[Column]) -> list[list]:
        """One XLSX row per currency, with its total in each money column."""
        keys = [c.key for c in columns]
        label_at = next(
            (i for i, c in enumerate(columns) if c.kind not in (MONEY, INT, RATIO) and c.key != "currency"), None
        )
        out = []
        for currency in sorted(self.by_currency):
            bucket = self.by_currency[currency]
            row: list = [None] * len(columns)
            for key in self.money_keys:
                if key in keys:
                    row[keys.index(key)] = amount(bucket[key], currency)
            if "currency" in keys:
                row[keys.index("currency")] = currency
            if label_at is not None and row[label_at] is None:
                row[label_at] = f"Total {currency} ({bucket['rows']} rows)"
            out.append(row)
        return out
