"""Pure rules of the simulated caller input: fields, validation, masks, money.

No I/O and no state here, so every rule can be tested on its own. Section
numbers refer to docs/twilio-pay.md.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

# --- Fields -------------------------------------------------------------------

CARD_NUMBER = "payment-card-number"
EXPIRATION_DATE = "expiration-date"
SECURITY_CODE = "security-code"
POSTAL_CODE = "postal-code"
ROUTING_NUMBER = "bank-routing-number"
ACCOUNT_NUMBER = "bank-account-number"

CARD_FIELDS = (CARD_NUMBER, EXPIRATION_DATE, SECURITY_CODE, POSTAL_CODE)
BANK_FIELDS = (ROUTING_NUMBER, ACCOUNT_NUMBER)
# Canonical order, used for the Required list (§2: "Required=ExpirationDate").
ALL_FIELDS = CARD_FIELDS + BANK_FIELDS
MATCHER_SUFFIX = "-matcher"
# payments_enum_capture: the 6 fields plus a -matcher twin for the 4 card fields.
CAPTURE_VALUES = ALL_FIELDS + tuple(f + MATCHER_SUFFIX for f in CARD_FIELDS)
MATCHABLE_FIELDS = CARD_FIELDS  # RequireMatchingInputs' allowed values (§1.1)


def split_capture(capture: str) -> tuple[str, bool]:
    """ "postal-code-matcher" -> ("postal-code", True)."""
    if capture.endswith(MATCHER_SUFFIX):
        return capture[: -len(MATCHER_SUFFIX)], True
    return capture, False


# Name of each field in the Required list (PascalCase, as in the doc example).
REQUIRED_NAMES = {
    CARD_NUMBER: "PaymentCardNumber",
    EXPIRATION_DATE: "ExpirationDate",
    SECURITY_CODE: "SecurityCode",
    POSTAL_CODE: "PostalCode",
    ROUTING_NUMBER: "BankRoutingNumber",
    ACCOUNT_NUMBER: "BankAccountNumber",
}
# Callback parameter carrying each field's (masked) value (§2). Note the
# postal code is PaymentCardPostalCode in callbacks but PostalCode in Required.
VALUE_PARAMS = {
    CARD_NUMBER: "PaymentCardNumber",
    EXPIRATION_DATE: "ExpirationDate",
    SECURITY_CODE: "SecurityCode",
    POSTAL_CODE: "PaymentCardPostalCode",
    ROUTING_NUMBER: "BankRoutingNumber",
    ACCOUNT_NUMBER: "BankAccountNumber",
}
# Every value parameter, always sent (empty when not captured or not applicable).
MASKED_PARAM_NAMES = (
    "PaymentCardNumber",
    "PaymentCardType",
    "ExpirationDate",
    "SecurityCode",
    "PaymentCardPostalCode",
    "BankRoutingNumber",
    "BankAccountNumber",
)

# --- Enums of CreatePayments (spec components payments_enum_*) -----------------

PAYMENT_METHODS = ("credit-card", "ach-debit")
BANK_ACCOUNT_TYPES = ("consumer-checking", "consumer-savings", "commercial-checking")
ONE_TIME, REUSABLE, PAYMENT_METHOD = "one-time", "reusable", "payment-method"
TOKEN_TYPES = (ONE_TIME, REUSABLE, PAYMENT_METHOD)
STATUSES = ("complete", "cancel")
# <Pay validCardTypes> list (§3.1).
KNOWN_CARD_TYPES = (
    "visa",
    "mastercard",
    "amex",
    "maestro",
    "discover",
    "optima",
    "jcb",
    "diners-club",
    "enroute",
)
DEFAULT_CARD_TYPES = ("visa", "mastercard", "amex")

# --- ErrorType values (§2, <Pay> list; the Payments API spelling of timeout) ---

INVALID_CARD_NUMBER = "invalid-card-number"
INVALID_CARD_TYPE = "invalid-card-type"
INVALID_DATE = "invalid-date"
INVALID_SECURITY_CODE = "invalid-security-code"
INVALID_POSTAL_CODE = "invalid-postal-code"
INVALID_ROUTING_NUMBER = "invalid-bank-routing-number"
INVALID_ACCOUNT_NUMBER = "invalid-bank-account-number"
INPUT_TIMEOUT = "input-timeout"
INPUT_MATCHING_FAILED = "input-matching-failed"


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


# (card type, prefix ranges, allowed lengths). Ranges are inclusive and
# compared on the first len(low) digits. Order matters: the first match wins,
# so the narrow Discover ranges come before Maestro's broad 6x ranges.
# Optima (an Amex product) and enRoute are accepted in ValidCardTypes but not
# detected: a number is never classified as either.
_CARD_RANGES: tuple[tuple[str, tuple[tuple[str, str], ...], tuple[int, ...]], ...] = (
    ("amex", (("34", "34"), ("37", "37")), (15,)),
    ("diners-club", (("300", "305"), ("36", "36"), ("38", "39")), (14, 15, 16, 17, 18, 19)),
    ("jcb", (("3528", "3589"),), (16, 17, 18, 19)),
    ("visa", (("4", "4"),), (13, 16, 19)),
    ("mastercard", (("51", "55"), ("2221", "2720")), (16,)),
    ("discover", (("6011", "6011"), ("644", "649"), ("65", "65"), ("622126", "622925")), (16, 17, 18, 19)),
    ("maestro", (("50", "50"), ("56", "58"), ("6", "6")), tuple(range(12, 20))),
)


def detect_card_type(digits: str) -> tuple[str, tuple[int, ...]] | None:
    for card_type, ranges, lengths in _CARD_RANGES:
        for low, high in ranges:
            head = digits[: len(low)]
            if len(head) == len(low) and low <= head <= high:
                return card_type, lengths
    return None


def check_card_number(digits: str, valid_types: tuple[str, ...]) -> tuple[str | None, str | None]:
    """Return (card type, error type). Exactly one of them is None."""
    if not 12 <= len(digits) <= 19 or not luhn_ok(digits):
        return None, INVALID_CARD_NUMBER
    detected = detect_card_type(digits)
    if detected is None or detected[0] not in valid_types:
        return None, INVALID_CARD_TYPE
    card_type, lengths = detected
    if len(digits) not in lengths:
        return None, INVALID_CARD_NUMBER
    return card_type, None


def check_expiration(digits: str, today: dt.date) -> str | None:
    """MMYY; a card is valid through the last day of its month."""
    if len(digits) != 4:
        return INVALID_DATE
    month, year = int(digits[:2]), 2000 + int(digits[2:])
    if not 1 <= month <= 12:
        return INVALID_DATE
    if (year, month) < (today.year, today.month):
        return INVALID_DATE
    return None


def security_code_lengths(card_type: str | None) -> tuple[int, ...]:
    if card_type is None:  # captured before the card number: either is plausible
        return (3, 4)
    return (4,) if card_type == "amex" else (3,)


def check_security_code(digits: str, card_type: str | None) -> str | None:
    return None if len(digits) in security_code_lengths(card_type) else INVALID_SECURITY_CODE


def check_postal_code(digits: str, min_length: int | None) -> str | None:
    if not digits or (min_length is not None and len(digits) < min_length):
        return INVALID_POSTAL_CODE
    return None


def check_routing_number(digits: str) -> str | None:
    """ABA routing number: 9 digits, weights 3-7-1 sum to a multiple of 10."""
    if len(digits) != 9:
        return INVALID_ROUTING_NUMBER
    d = [int(c) for c in digits]
    total = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])
    return None if total % 10 == 0 else INVALID_ROUTING_NUMBER


def check_account_number(digits: str) -> str | None:
    """US account numbers run 4 to 17 digits (Nacha's DFI account field is 17)."""
    return None if 4 <= len(digits) <= 17 else INVALID_ACCOUNT_NUMBER


def mask(field: str, digits: str) -> str:
    """The value Twilio reports for a captured field (§2)."""
    if field == CARD_NUMBER:
        return "x" * (len(digits) - 4) + digits[-4:]
    if field == SECURITY_CODE:
        return "x" * len(digits)
    if field == ACCOUNT_NUMBER:
        return "*" * (len(digits) - 2) + digits[-2:]
    # Expiration date, postal code and routing number are not PCI data: in clear.
    return digits


# --- Money ----------------------------------------------------------------------

# ISO 4217 minor-unit exponents that differ from 2, as Stripe lists them.
# Paydesk's own table lives in core/money.py; the simulator is a separate
# tool and keeps its own so it never imports product code.
_ZERO_DECIMAL = frozenset(
    ("BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF")
)
_THREE_DECIMAL = frozenset(("BHD", "JOD", "KWD", "OMR", "TND"))
MAX_CHARGE = Decimal(1_000_000)
_AMOUNT_RE = re.compile(r"^-?\d+(\.\d+)?$|^-?\.\d+$")
_CURRENCY_RE = re.compile(r"^[A-Za-z]{3}$")


def currency_exponent(currency: str) -> int:
    code = currency.upper()
    if code in _ZERO_DECIMAL:
        return 0
    if code in _THREE_DECIMAL:
        return 3
    return 2


def valid_currency(currency: str) -> bool:
    return bool(_CURRENCY_RE.match(currency))


def parse_charge_amount(text: str, currency: str) -> Decimal | None:
    """Parse ChargeAmount. None means tokenize (blank or 0, §1.1).

    Raises ValueError with a message for Twilio error 64003: not a plain
    decimal, negative, not below 1,000,000, or more decimals than the currency
    has (trailing zeros do not count: "1250.0" JPY is 1250).
    """
    text = text.strip()
    if text == "":
        return None
    if not _AMOUNT_RE.match(text):
        raise ValueError(f"ChargeAmount {text!r} is not a number")
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex rules it out
        raise ValueError(f"ChargeAmount {text!r} is not a number") from exc
    if amount < 0:
        raise ValueError(f"ChargeAmount {text!r} is negative")
    if amount == 0:
        return None
    if amount >= MAX_CHARGE:
        raise ValueError(f"ChargeAmount {text!r} must be less than 1,000,000")
    exponent = amount.normalize().as_tuple().exponent
    decimals = max(0, -exponent) if isinstance(exponent, int) else 0
    if decimals > currency_exponent(currency):
        raise ValueError(
            f"ChargeAmount {text!r} has more decimals than {currency.upper()} allows ({currency_exponent(currency)})"
        )
    return amount


def format_amount(amount: Decimal, currency: str) -> str:
    """Major units with the currency's decimals, e.g. 12.5 USD -> "12.50"."""
    return str(amount.quantize(Decimal(1).scaleb(-currency_exponent(currency))))


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Stripe takes integers in the currency's minor unit."""
    return int(amount.scaleb(currency_exponent(currency)))
