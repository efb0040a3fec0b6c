"""Holders for what linking channels (issue 12 §1) and the chat's export keep about a learner.

* ``LinkedConversations``: each linked channel's own dedup set, outbox, delivery facts and send state, kept
  under the learner's slot as ``bottega:{<learner>}:<part>@<channel>`` (``bot.storage.keys.address``); the
  link-code tries and any journal entry on their other ids.
* ``LinkCodes``: codes the learner asked for and nobody used yet (``bottega:linkcode:{CODE}`` names them in
  its value).
* ``DataExports``: an export waiting at its URL (``bot.privacy.chat``).
"""

from __future__ import annotations

import json
from typing import Any

import redis

from bot.privacy.person import Person
from bot.storage.encoding import text
from bot.storage.key_values import read_value
from bot.storage.keys import EXPORT_PREFIX, LINK_CODE_PREFIX, LearnerPart, learner_key


class LinkedConversations:
    name = "linked_conversations"

    def _keys(self, client: redis.Redis, person: Person) -> list[str]:
        if person.conversation_keys is not None:  # found by identify's one pass over the keyspace
            found = list(person.conversation_keys)
        else:
            found = [text(key) for key in client.scan_iter(match=learner_key(person.learner_id, LearnerPart.SEEN)
                                                           .rsplit(":", 1)[0] + ":*@*", count=1000)]
        for other in person.aliases:
            found += [learner_key(other, part) for part in (LearnerPart.LINK_TRIES, LearnerPart.MERGE)]
        return found

    def export(self, client: redis.Redis, person: Person) -> Any:
        out = {key: value for key in self._keys(client, person) if (value := read_value(client, key)) is not None}
        return out or None

    def erase(self, client: redis.Redis, person: Person, now_ms: int) -> int:
        keys = self._keys(client, person)
        return int(client.delete(*keys)) if keys else 0


def _pointing(client: redis.Redis, prefix: str, person: Person, field: str,
              listed: tuple[str, ...] | None) -> list[tuple[str, Any]]:
    """The keys under ``prefix`` whose JSON value names one of the person's ids in ``field``: among ``listed``
    (identify's one pass found them), or by a scan of their own when that pass did not run."""
    ids = set(person.ids)
    found = []
    candidates = list(listed) if listed is not None else [text(key) for key in client.scan_iter(match=f"{prefix}:*",
                                                                                                count=1000)]
    pipe = client.pipeline(transaction=False)  # one round trip for them all (they live in many hash slots)
    for key in candidates:
        pipe.get(key)
    for key, raw in zip(candidates, pipe.execute() if candidates else [], strict=True):
        try:
            value = json.loads(raw) if raw is not None else None
        except ValueError:
            continue
        if isinstance(value, dict) and value.get(field) in ids:
            found.append((key, value))
    return found


class LinkCodes:
    name = "link_codes"

    def export(self, client: redis.Redis, person: Person) -> Any:
        found = _pointing(client, LINK_CODE_PREFIX, person, "learner", person.link_code_keys)
        return [{"expires_in_s": client.ttl(key)} for key, _ in found] or None

    def erase(self, client: redis.Redis, person: Person, now_ms: int) -> int:
        keys = [key for key, _ in _pointing(client, LINK_CODE_PREFIX, person, "learner", person.link_code_keys)]
        return int(client.delete(*keys)) if keys else 0


class DataExports:
    name = "data_exports"

    def export(self, client: redis.Redis, person: Person) -> Any:
        found = _pointing(client, EXPORT_PREFIX, person, "learner_id", person.export_keys)
        return [{"expires_in_s": client.ttl(key)} for key, _ in found] or None

    def erase(self, client: redis.Redis, person: Person, now_ms: int) -> int:
        keys = [key for key, _ in _pointing(client, EXPORT_PREFIX, person, "learner_id", person.export_keys)]
        return int(client.delete(*keys)) if keys else 0
