"""Reading the typed parts of a learner's record back from stored JSON, tolerantly. No I/O.

Each part of the progress hash that holds JSON (``bot.tutor.progress_parts``, ``entry_record``,
``handover_record``, ``bot.proactive.record``) is read with these: a key a newer version wrote is ignored,
a missing or mistyped one takes its default, so stored learners never break on an upgrade or a downgrade.
"""

from __future__ import annotations

from typing import Any


def integer(data: dict[str, Any], key: str) -> int:
    """A whole number (a float is truncated; a bool, a string or nothing is 0)."""
    value = data.get(key, 0)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def text(data: dict[str, Any], key: str) -> str:
    value = data.get(key, "")
    return value if isinstance(value, str) else ""


def strings(data: dict[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key) or ()
    return tuple(str(item) for item in value) if isinstance(value, list | tuple) else ()


def mapping(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def text_map(data: dict[str, Any], key: str) -> dict[str, str]:
    value = data.get(key) or {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
