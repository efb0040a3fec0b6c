"""Export and erase one learner: every holder's part, in one document or one sweep.

Both take the learner id that holds the record (``lookup.find`` turns what an admin typed into it).
Erase is idempotent: run it again after a crash and it finishes the job; it returns what it removed
per holder (counts only — nothing about the learner).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from bot.model.privacy import learner_ref
from bot.privacy.holders import DEFAULT_HOLDERS, LearnerDataHolder
from bot.privacy.person import identify

EXPORT_FORMAT = "bottega-learner-export/1"


@dataclass(frozen=True, kw_only=True, slots=True)
class Erased:
    ref: str  # learner_ref of the erased id: what a log line or the audit log may carry
    removed: dict[str, int]  # holder name -> keys or entries removed

    @property
    def total(self) -> int:
        return sum(self.removed.values())


def export_learner(client: redis.Redis, learner_id: str, *, holders: Sequence[LearnerDataHolder] | None = None,
                   now_ms: int | None = None) -> dict[str, Any]:
    """Everything stored about ``learner_id`` as one JSON-able document."""
    person = identify(client, learner_id, thorough=True)
    stamp = now_ms if now_ms is not None else int(time.time() * 1000)
    data: dict[str, Any] = {}
    for holder in holders if holders is not None else DEFAULT_HOLDERS:
        part = holder.export(client, person)
        if part is not None:
            data[holder.name] = part
    return {"format": EXPORT_FORMAT, "learner_id": person.learner_id, "other_ids": list(person.aliases),
            "exported_at": datetime.fromtimestamp(stamp / 1000, UTC).isoformat(timespec="seconds"),
            "data": data}


def erase_learner(client: redis.Redis, learner_id: str, *, holders: Sequence[LearnerDataHolder] | None = None,
                  now_ms: int | None = None) -> Erased:
    """Remove everything stored about ``learner_id`` (certificates become revoked tombstones)."""
    person = identify(client, learner_id, thorough=True)
    stamp = now_ms if now_ms is not None else int(time.time() * 1000)
    removed = {holder.name: holder.erase(client, person, stamp)
               for holder in (holders if holders is not None else DEFAULT_HOLDERS)}
    return Erased(ref=learner_ref(learner_id), removed=removed)
