"""Amounts on the phone: what the caller keys in, and how an amount is spoken.

Pure functions (no database, no I/O). Every conversion between minor units and a
decimal amount goes through core.money; here there is only keypad text and words.

Keying in (the two modes of PaymentFlow.amount_entry):

* units then cents: "12#" then "50#" is 12.50; the second entry counts cents, so "5#"
  is 12.05 and a bare "#" is 12.00. A KWD caller keys up to three digits of fils; a JPY
  caller is asked once, in whole yen. A first entry with a star ("12*50#") is read as in
  the other mode, and then no cents are asked: callers key amounts both ways.
* one entry with * as the decimal point: "12*5#" is 12.50 (digits after the star are
  decimals, as written), "12#" is 12.00.
"""

import re

from django.core.exceptions import ValidationError

from core import money

MAX_WHOLE_DIGITS = 6  # Twilio takes amounts below 1,000,000 (docs/twilio-pay.md §1.1)


class AmountError(ValueError):
    """Why an entry is not a payable amount: no_input, unreadable, decimals, zero,
    below_minimum or above_maximum (each has its own prompt)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


# --- Keying in -------------------------------------------------------------------------


def needs_minor_entry(currency: str) -> bool:
    return money.exponent(currency) > 0


def parse_units_and_cents(whole: str, cents: str, currency: str) -> int:
    """Two entries (whole units, then minor units) → amount_minor."""
    digits = money.exponent(currency)
    if whole == "":
        raise AmountError("no_input")
    if not whole.isdigit() or (cents and not cents.isdigit()):
        raise AmountError("unreadable")
    if len(cents) > digits:
        raise AmountError("decimals")
    text = _major_text(whole, cents.zfill(digits) if digits else "")
    return _to_minor(text, currency)


def parse_whole_units(whole: str, currency: str) -> int:
    """The first of the two entries alone (raises as parse_units_and_cents would)."""
    return parse_units_and_cents(whole, "", currency)


def parse_star_entry(entry: str, currency: str) -> int:
    """One entry with * as the decimal point → amount_minor."""
    if entry == "":
        raise AmountError("no_input")
    if not re.fullmatch(r"[0-9]*\*?[0-9]*", entry) or entry == "*":
        raise AmountError("unreadable")
    whole, _, decimals = entry.partition("*")
    if len(decimals) > money.exponent(currency):
        raise AmountError("decimals")
    return _to_minor(_major_text(whole or "0", decimals), currency)


def check_bounds(amount_minor: int, *, minimum: int | None, maximum: int | None) -> None:
    if amount_minor <= 0:
        raise AmountError("zero")
    if minimum is not None and amount_minor < minimum:
        raise AmountError("below_minimum")
    if maximum is not None and amount_minor > maximum:
        raise AmountError("above_maximum")


def _major_text(whole: str, decimals: str) -> str:
    whole = whole.lstrip("0") or "0"
    if len(whole) > MAX_WHOLE_DIGITS:
        raise AmountError("above_maximum")
    return f"{whole}.{decimals}" if decimals else whole


def _to_minor(text: str, currency: str) -> int:
    try:
        return money.parse_major(text, currency)
    except ValidationError:
        raise AmountError("unreadable") from None


# --- Speaking --------------------------------------------------------------------------

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((1_000_000_000, "billion"), (1_000_000, "million"), (1_000, "thousand"))


def number_words(n: int) -> str:
    """US English, no "and" inside a number; 1100-9999 with hundreds said as hundreds
    ("twelve hundred fifty"), the way amounts are read aloud."""
    if n < 0:
        return "minus " + number_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if n < 1000 or (n < 10_000 and (n // 100) % 10):
        hundreds, rest = divmod(n, 100)
        return f"{number_words(hundreds)} hundred" + (f" {number_words(rest)}" if rest else "")
    for scale, name in _SCALES:
        if n >= scale:
            high, rest = divmod(n, scale)
            return f"{number_words(high)} {name}" + (f" {number_words(rest)}" if rest else "")
    raise AssertionError("unreachable")


# Unit names: (major singular, major plural, minor singular, minor plural).
_DOLLAR = ("dollar", "dollars", "cent", "cents")
_DINAR_FILS = ("dinar", "dinars", "fils", "fils")
UNIT_NAMES: dict[str, tuple[str, str, str, str]] = {
    **dict.fromkeys(["USD", "CAD", "AUD", "NZD", "SGD", "HKD", "JMD", "TTD", "BSD", "BBD", "BZD", "XCD"], _DOLLAR),
    **dict.fromkeys(["KWD", "BHD", "IQD", "JOD"], _DINAR_FILS),
    "EUR": ("euro", "euros", "cent", "cents"),
    "GBP": ("pound", "pounds", "penny", "pence"),
    "JPY": ("yen", "yen", "", ""),
    "KRW": ("won", "won", "", ""),
    "CLP": ("peso", "pesos", "", ""),
    "ISK": ("krona", "kronur", "", ""),
    "CHF": ("franc", "francs", "centime", "centimes"),
    "MXN": ("peso", "pesos", "centavo", "centavos"),
    "PHP": ("peso", "pesos", "centavo", "centavos"),
    "BRL": ("real", "reais", "centavo", "centavos"),
    "INR": ("rupee", "rupees", "paisa", "paise"),
    "ZAR": ("rand", "rand", "cent", "cents"),
    "SEK": ("krona", "kronor", "ore", "ore"),
    "NOK": ("krone", "kroner", "ore", "ore"),
    "DKK": ("krone", "kroner", "ore", "ore"),
    "PLN": ("zloty", "zlotys", "grosz", "groszy"),
    "CNY": ("yuan", "yuan", "fen", "fen"),
    "ILS": ("shekel", "shekels", "agora", "agorot"),
    "AED": ("dirham", "dirhams", "fils", "fils"),
    "SAR": ("riyal", "riyals", "halala", "halalas"),
    "OMR": ("rial", "rials", "baisa", "baisa"),
    "TND": ("dinar", "dinars", "millime", "millimes"),
    "LYD": ("dinar", "dinars", "dirham", "dirhams"),
}
# Languages whose numbers are written with a decimal comma.
_DECIMAL_COMMA = ("es", "fr", "de", "it")


def is_english(language: str) -> bool:
    return language.lower().startswith("en")


def spelled(text: str) -> str:
    """Digits and letters one by one, as a voice reads a reference or a code: "1 2 3"."""
    return " ".join(text)


def unit_names(currency: str) -> tuple[str, str]:
    """(major plural, minor plural) for prompts such as "enter the amount in dollars"."""
    names = UNIT_NAMES.get(currency.upper())
    if names is None:
        return spelled(currency.upper()), "decimals"
    return names[1], names[3] or "decimals"


def spoken_amount(amount_minor: int, currency: str, language: str = "en-US") -> str:
    """Words for English ("twelve dollars and fifty cents", "twelve hundred fifty yen",
    "one dinar and two hundred thirty-four fils"); for other languages the amount in
    figures with the language's decimal mark and the currency code ("12,50 EUR")."""
    whole, _, decimals = money.to_major_string(amount_minor, currency).partition(".")
    code = currency.upper()
    if not is_english(language):
        mark = "," if language.lower()[:2] in _DECIMAL_COMMA else "."
        return f"{whole}{mark}{decimals} {code}" if decimals else f"{whole} {code}"
    names = UNIT_NAMES.get(code)
    if names is None:  # no unit names known: figures, read digit by digit after the point
        point = f" point {spelled(decimals)}" if decimals else ""
        return f"{number_words(int(whole))}{point} {spelled(code)}"
    major_one, major_many, minor_one, minor_many = names
    major, minor = int(whole), int(decimals or 0)
    parts = []
    if major or not minor:
        parts.append(f"{number_words(major)} {major_one if major == 1 else major_many}")
    if minor:
        parts.append(f"{number_words(minor)} {minor_one if minor == 1 else minor_many}")
    return " and ".join(parts)
