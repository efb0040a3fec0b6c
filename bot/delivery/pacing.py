"""How fast Bottega writes to one learner: a token bucket, and a pause between read receipts. No I/O.

WhatsApp allows about one message per 6 s to one person, with a burst (docs/platform.md §10,
error 131056). A lesson's few bubbles must go at once; a flood must not. The bucket holds
``burst`` messages and refills one every ``interval_ms``; an empty bucket holds the outbox back
(and while it waits, later turns supersede its stale re-prompts: ``bot.storage.store``). Read receipts take
no token but go at most once per ``receipt_interval_ms`` (the latest message's, so nothing is lost).
The state lives in one small Redis string per learner, read when a sender takes the learner's lock
and written when it lets go (``bot.delivery.outbox``): only the lock holder sends, so it is never raced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class PaceRules:
    burst: int  # messages that may go at once
    interval_ms: int  # one more message per this long
    receipt_interval_ms: int  # at most one read receipt per this long


@dataclass(kw_only=True, slots=True)
class Pace:
    """One learner's budget during one drain (mutable; saved when the lock is released)."""

    tokens: float
    at_ms: int
    receipt_at_ms: int = 0
    number_waited: bool = False  # told to wait for the sending number's bucket: back in line first next time

    @classmethod
    def from_json(cls, raw: bytes | str | None, rules: PaceRules) -> Pace:
        """The stored state, or a full bucket (a learner not written to lately: ``at_ms`` 0 refills it)."""
        try:
            data = json.loads(raw) if raw else {}
            return cls(tokens=float(data["tokens"]), at_ms=int(data["at_ms"]),
                       receipt_at_ms=int(data.get("receipt_at_ms", 0)), number_waited=bool(data.get("nw")))
        except (ValueError, KeyError, TypeError):
            return cls(tokens=float(rules.burst), at_ms=0)

    def to_json(self) -> str:
        data: dict[str, float | int] = {"tokens": round(self.tokens, 3), "at_ms": self.at_ms,
                                        "receipt_at_ms": self.receipt_at_ms}
        if self.number_waited:
            data["nw"] = 1
        return json.dumps(data, separators=(",", ":"))

    def take(self, rules: PaceRules, now_ms: int) -> int:
        """Spend one message token: 0 when taken, else the milliseconds until one is there."""
        if rules.burst <= 0:
            return 0
        elapsed = max(now_ms - self.at_ms, 0)
        self.tokens = min(float(rules.burst), self.tokens + elapsed / max(rules.interval_ms, 1))
        self.at_ms = now_ms
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0
        return int((1.0 - self.tokens) * rules.interval_ms) + 1

    def receipt_wait(self, rules: PaceRules, now_ms: int) -> int:
        """0 when a read receipt may go now, else the milliseconds to wait."""
        return max(self.receipt_at_ms + rules.receipt_interval_ms - now_ms, 0)
