"""JSON from outside, bounded before anything walks it.

`json.loads` recurses once per level of nesting, and so do serializers, the card-number
scrubber and the database adapter after it: a 10 KB body nested 5,000 deep ends in a
RecursionError somewhere down the line. PostgreSQL stores no NUL character in text or
jsonb, and no lone UTF-16 surrogate ("\\ud800") survives encoding to UTF-8. So a
document is refused here, with a message saying why, when it is nested deeper than
`max_depth` or holds such a string (in a key or a value).
"""

import json
from typing import Any

MAX_DEPTH = 32


class UnsafeJSON(ValueError):
    """Not JSON, or JSON that Paydesk will not walk or store; the message says which."""


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    if isinstance(text, bytes | bytearray):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise UnsafeJSON("The body is not UTF-8.") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:  # the parser's own limit (Python's recursion limit) came first
        raise UnsafeJSON(f"JSON nested deeper than {max_depth} levels.") from None
    except ValueError as exc:
        raise UnsafeJSON(f"Not valid JSON: {exc}") from None
    check(value, max_depth=max_depth)
    return value


def check(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a parsed document nested deeper than `max_depth` or holding text that
    cannot be stored. Iterative: it never recurses itself."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise UnsafeJSON(f"JSON nested deeper than {max_depth} levels.")
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise UnsafeJSON("Text may not contain the NUL character (\\u0000).")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeJSON("Text may not contain a lone UTF-16 surrogate (\\ud800-\\udfff).") from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")
