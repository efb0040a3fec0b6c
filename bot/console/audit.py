"""The audit log: every admin action that changes something (or reveals a phone number), who and when.

A Redis stream (``bot.storage.keys.ADMIN_AUDIT_KEY``), capped near ``AUDIT_MAX_ENTRIES``. Entries name
a learner only by ``learner_ref`` — never an id, phone or name — so the log itself holds no personal
data and survives the erasure of the learner it mentions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from bot.storage.encoding import hash_fields, text
from bot.storage.keys import ADMIN_AUDIT_KEY

AUDIT_MAX_ENTRIES = 100_000


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditEntry:
    at_ms: int
    who: str  # the admin's name ("cli" for the command line)
    action: str  # e.g. "publish", "learner.erase", "learner.show_phone", "admin.add"
    target: str = ""  # a release number, a learner_ref, an admin name
    detail: str = ""

    @property
    def when(self) -> str:
        return datetime.fromtimestamp(self.at_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def record(client: redis.Redis, who: str, action: str, target: str = "", detail: str = "",
           *, now_ms: int | None = None) -> None:
    at_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    fields = {"at_ms": str(at_ms), "who": who, "action": action, "target": target, "detail": detail}
    client.xadd(ADMIN_AUDIT_KEY, hash_fields(fields), maxlen=AUDIT_MAX_ENTRIES, approximate=True)


def recent(client: redis.Redis, count: int = 200) -> list[AuditEntry]:
    """The newest ``count`` entries, newest first."""
    entries = []
    answer: Any = client.xrevrange(ADMIN_AUDIT_KEY, count=count)  # redis-py types every reply shape at once
    for _, raw in answer or []:
        values = {text(k): text(v) for k, v in raw.items()}
        entries.append(AuditEntry(at_ms=int(values.get("at_ms") or 0), who=values.get("who", ""),
                                  action=values.get("action", ""), target=values.get("target", ""),
                                  detail=values.get("detail", "")))
    return entries
