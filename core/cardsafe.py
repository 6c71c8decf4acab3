"""The card-number tripwire.

Card data never enters Paydesk: Twilio sends masked values. Should a full card number
ever reach us anyway (a misconfigured connector, a partner pasting one into a
description), it is masked before it is stored or logged, and counted, so that it can be
alerted on. It should never fire.
"""

import logging
import re

logger = logging.getLogger(__name__)

# 12-19 digits, optionally grouped by single spaces or dashes, not glued to letters or
# digits (so Twilio SIDs like CA…, PK… never match).
_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])\d(?:[ -]?\d){11,18}(?![0-9A-Za-z])")
TRIPWIRE_CACHE_KEY = "paydesk:cardsafe:tripwire"


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def mask_card_numbers(text: str) -> tuple[str, int]:
    """Mask every Luhn-valid 12-19 digit run, keeping the last 4. Returns (text, count)."""
    found = 0

    def _mask(match: re.Match[str]) -> str:
        nonlocal found
        digits = re.sub(r"\D", "", match.group())
        if not 12 <= len(digits) <= 19 or not luhn_valid(digits):
            return match.group()
        found += 1
        return "x" * (len(digits) - 4) + digits[-4:]

    return _CANDIDATE.sub(_mask, text), found


def scrub_mapping(data: dict[str, str], *, source: str) -> dict[str, str]:
    """Mask card numbers in every value of inbound data; count and log each hit."""
    clean: dict[str, str] = {}
    hits = 0
    for key, value in data.items():
        clean[key], found = mask_card_numbers(value)
        hits += found
    if hits:
        tripwire_fired(count=hits, source=source)
    return clean


def tripwire_fired(*, count: int, source: str) -> None:
    from django.core.cache import cache

    try:
        cache.incr(TRIPWIRE_CACHE_KEY, count)
    except ValueError:
        cache.set(TRIPWIRE_CACHE_KEY, count, timeout=None)
    logger.error("card-number tripwire fired: %d masked in %s", count, source)


def tripwire_count() -> int:
    from django.core.cache import cache

    return int(cache.get(TRIPWIRE_CACHE_KEY) or 0)
