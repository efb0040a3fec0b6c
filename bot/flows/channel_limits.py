"""The limits every course text must fit on every channel — asked of the channel registry. No I/O.

Each is the tightest registered channel's value, with a reason that names the channels it binds
("a WhatsApp button and a Messenger quick reply allow 20"), so the checker's message tells the author
which channel would break. A new channel's limits apply here as soon as its folder is registered.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot import channels
from bot.channels.parts import FlowLimits


@dataclass(frozen=True, slots=True)
class Limit:
    chars: int
    reason: str  # what the limit belongs to, as the checker's message says it: "a WhatsApp button ..."


def _binding(attr: str) -> tuple[int, list[str], list[str]]:
    """The tightest value of ``attr``, the channels it comes from, and "Title: value" of the others."""
    values = [(getattr(parts.flow_limits, attr), parts.title) for parts in channels.every()]
    low = min(value for value, _ in values)
    return low, [title for value, title in values if value == low], \
        [f"{title}: {value}" for value, title in values if value != low]


def _a(words: str) -> str:
    """``words`` with its article: "a WhatsApp button", "an Instagram quick reply"."""
    return f"{'an' if words[:1].lower() in 'aeiou' else 'a'} {words}"


def _joined(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _limit(attr: str, noun: str) -> Limit:
    chars, binding, others = _binding(attr)
    reason = _a(f"{_joined(binding)} {noun}") + (f" ({', '.join(others)})" if others else "")
    return Limit(chars=chars, reason=reason)


def _label() -> Limit:
    chars, _, _ = _binding("label_chars")
    binding = [parts for parts in channels.every() if parts.flow_limits.label_chars == chars]
    return Limit(chars=chars, reason=_joined([_a(f"{p.title} {p.flow_limits.label_noun}") for p in binding]))


def _options() -> tuple[int, str]:
    low, binding, others = _binding("options_max")
    return low, f"{_joined(binding)} shows at most {low}" + (f" ({', '.join(others)})" if others else "")


LABEL = _label()
MESSAGE = _limit("message_chars", "text")
QUESTION = _limit("body_with_options_chars", "message with options")
CAPTION = _limit("caption_chars", "media caption")
OPTIONS_MAX, OPTIONS_REASON = _options()

__all__ = ["CAPTION", "LABEL", "MESSAGE", "OPTIONS_MAX", "OPTIONS_REASON", "QUESTION", "FlowLimits", "Limit"]
