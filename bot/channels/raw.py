"""Reading raw webhook values defensively: a field of the wrong type reads as empty, never raises.

Shared by the channel parsers. Every string that leaves here is valid Unicode: JSON may carry lone
surrogates (``"\\ud800"``), which Python decodes but cannot encode to UTF-8 — one in a profile name
would make every later write of that learner fail. They become U+FFFD. No I/O.
"""

from __future__ import annotations

import math
import re
from typing import Any

_VOCABULARY = re.compile(r"[a-z][a-z0-9_]{0,39}")  # what a Meta field/type name looks like


def mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def items(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def text(value: object) -> str:
    """A string field as sent (lone surrogates replaced), or "" when absent or not a string."""
    return valid_unicode(value) if isinstance(value, str) else ""


def ident(value: object) -> str:
    """An id or payload: strings as sent, integers as their digits, anything else ""."""
    if isinstance(value, str):
        return valid_unicode(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def word(value: object, fallback: str = "other") -> str:
    """A Meta field or type name, safe to log; anything that does not look like one is ``fallback``."""
    if isinstance(value, str) and _VOCABULARY.fullmatch(value):
        return value
    return fallback


def number(value: object, *, max_digits: int) -> int:
    """A non-negative integer of at most ``max_digits`` digits, sent as a number or a digit string; else 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, float):
        value = int(value) if math.isfinite(value) else 0
    if isinstance(value, str):
        value = int(value) if value.isascii() and value.isdigit() and len(value) <= max_digits else 0
    whole = value if isinstance(value, int) else 0
    return whole if 0 <= whole < 10**max_digits else 0


def valid_unicode(value: str) -> str:
    """``value`` with every lone surrogate replaced by U+FFFD (valid pairs are kept)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value
