"""Reading raw webhook values defensively: a field of the wrong type reads as empty, never raises.

Shared by both channel parsers. Every string that leaves here is valid Unicode: JSON may carry lone
surrogates (``"\\ud800"``), which Python decodes but cannot encode to UTF-8 — one in a profile name
would make every later write of that learner fail. They become U+FFFD. No I/O.
"""

from __future__ import annotations

from typing import Any


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


def valid_unicode(value: str) -> str:
    """``value`` with every lone surrogate replaced by U+FFFD (valid pairs are kept)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value
