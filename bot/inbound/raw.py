"""Reading raw webhook values defensively: a field of the wrong type reads as empty, never raises.

Shared by both channel parsers. No I/O.
"""

from __future__ import annotations

from typing import Any


def mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def items(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def text(value: object) -> str:
    """A string field as sent, or "" when absent or not a string."""
    return value if isinstance(value, str) else ""


def ident(value: object) -> str:
    """An id or payload: strings as sent, integers as their digits, anything else ""."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""
