"""Small steps for walking a rendered API body and naming what breaks a limit. Shared by the channels. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NO_LIMIT = 10**9  # required strings without a documented length limit


@dataclass(frozen=True, slots=True)
class Shown:
    """What one message looks like on the phone: its text and its options as (id, title)."""

    text: str
    options: tuple[tuple[str, str], ...] = ()


def text(problems: list[str], path: str, value: Any, limit: int, *, required: bool = True) -> None:
    """A string of 1..limit characters (or absent, when not required)."""
    if value is None or value == "":
        if required:
            problems.append(f"{path}: missing or empty, expected 1-{limit} characters")
    elif not isinstance(value, str):
        problems.append(f"{path}: expected a string, got {type(value).__name__}")
    elif len(value) > limit:
        problems.append(f"{path}: {len(value)} characters, limit {limit}")


def items(problems: list[str], path: str, value: Any, low: int, high: int) -> list[dict[str, Any]]:
    """A list of low..high objects; returns the objects to walk further."""
    if not isinstance(value, list):
        problems.append(f"{path}: expected a list of {low}-{high} items, got {type(value).__name__}")
        return []
    if not low <= len(value) <= high:
        problems.append(f"{path}: {len(value)} items, allowed {low}-{high}")
    objects = [item for item in value if isinstance(item, dict)]
    if len(objects) != len(value):
        problems.append(f"{path}: every item must be a JSON object")
    return objects


def obj(problems: list[str], path: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        problems.append(f"{path}: missing, expected a JSON object")
        return {}
    return value


def unique(problems: list[str], path: str, values: list[Any]) -> None:
    duplicates = sorted({str(v) for v in values if values.count(v) > 1})
    if duplicates:
        problems.append(f"{path}: must be unique within the message, repeated {duplicates}")
