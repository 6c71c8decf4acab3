"""Money: minor units and currency exponents. The only place that converts.

Paydesk stores `amount_minor` (an integer) plus an ISO 4217 `currency`. Twilio takes a
major-unit decimal string ("12.50"); Stripe takes minor integers (1250). Conversion
happens here, with an exponent table, and nowhere else.
"""

import re
from decimal import Decimal

from django.core.exceptions import ValidationError

# ISO 4217 active codes (2024 list, less precious metals, testing and fund codes).
ISO_4217 = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD
    FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY
    KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP
    MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR
    RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT
    TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR
    ZMW ZWG
    """.split()  # noqa: SIM905 - a table reads better as text
)

_EXPONENTS = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split(), 0),  # noqa: SIM905
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),  # noqa: SIM905
}
DEFAULT_EXPONENT = 2

# Twilio: "a positive decimal value less than 1,000,000".
MAX_MAJOR_AMOUNT = Decimal(1_000_000)

# ASCII digits, one optional decimal point, no sign, no exponent. Python's Decimal() alone
# would also take "١٢.٥٠" (Arabic-Indic) or full-width digits as 12.50, and "-0.00" as 0
# (which means "tokenize"): an amount is charged only when written the plain way.
_PLAIN_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z", re.ASCII)


def validate_currency(value: str) -> None:
    if value not in ISO_4217:
        raise ValidationError(f"{value!r} is not an ISO 4217 currency code (three upper-case letters, e.g. USD).")


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), DEFAULT_EXPONENT)


def parse_major(amount: str, currency: str) -> int:
    """A major-unit decimal string ("12.50") → minor units (1250), validated as Twilio does.

    Raises ValidationError for anything that is not a plain positive decimal below
    1,000,000, written in ASCII digits, with no more decimals than the currency has.
    """
    value = parse_decimal(amount)
    digits = exponent(currency)
    if -value.as_tuple().exponent > digits and value != value.quantize(Decimal(1).scaleb(-digits)):
        raise ValidationError(f"{currency} amounts have at most {digits} decimal places.")
    return int(value.scaleb(digits))


def parse_decimal(amount: str) -> Decimal:
    """The currency-independent half of parse_major: a plain, unsigned decimal below
    1,000,000 in ASCII digits ("12.50", "0", ".5"), as a Decimal."""
    text = str(amount).strip(" \t")
    if text.startswith(("-", "+")):
        raise ValidationError("The amount must be positive, without a sign.")
    if not _PLAIN_DECIMAL.match(text):
        raise ValidationError(f"{amount!r} is not a decimal amount such as 12.50 (ASCII digits and a point).")
    value = Decimal(text)
    if value >= MAX_MAJOR_AMOUNT:
        raise ValidationError("The amount must be less than 1,000,000.")
    return value


def to_major_string(amount_minor: int, currency: str) -> str:
    """Minor units → the major-unit string Twilio takes: 1250 USD → "12.50", 1250 JPY → "1250"."""
    digits = exponent(currency)
    return f"{Decimal(amount_minor).scaleb(-digits):.{digits}f}"


def to_major_decimal(amount_minor: int, currency: str) -> Decimal:
    return Decimal(amount_minor).scaleb(-exponent(currency))
