"""Find the learner a reference names, as an admin types it.

Accepted, in this order: a learner id (``wa:393331112222``, ``ms:PSID``); the 12 hex characters of
``learner_ref`` that log lines carry (found by hashing every learner id: a scan, for admin tools only);
a phone number (``+39 333 111 2222``, ``393331112222``); a Messenger/Instagram id or a WhatsApp BSUID
(tried under every channel's prefix). Aliases are followed (at most ``MAX_HOPS``) to the id that holds
the record. An id with no progress but other keys left (an erase cut short) is still found.
"""

from __future__ import annotations

import re

import redis

from bot.model.privacy import learner_ref
from bot.privacy.person import channel_prefixes
from bot.storage.encoding import text
from bot.storage.keys import LearnerPart, learner_id_of, learner_key, learner_key_pattern

MAX_HOPS = 3
_REF = re.compile(r"[0-9a-f]{12}")
_PHONE = re.compile(r"\+?[0-9][0-9 ().-]{5,}")


def find(client: redis.Redis, ref: str) -> list[str]:
    """The learner ids (holding records) ``ref`` may name: none, one, or several when ambiguous
    (digits that are a WhatsApp phone and a Messenger id at once)."""
    ref = ref.strip()
    if not ref or "{" in ref or "}" in ref:
        return []
    prefix, sep, rest = ref.partition(":")
    if sep and prefix in channel_prefixes() and rest:
        found = _resolve(client, ref)
        return [found] if found else []
    if _REF.fullmatch(ref):
        by_ref = _by_learner_ref(client, ref)
        if by_ref:
            return by_ref
    raw = re.sub(r"[^0-9]", "", ref) if _PHONE.fullmatch(ref) else ref
    found_ids = [_resolve(client, f"{prefix}:{raw}") for prefix in channel_prefixes()]
    return list(dict.fromkeys(found for found in found_ids if found))


def _resolve(client: redis.Redis, learner_id: str) -> str:
    """The id holding ``learner_id``'s record after aliases, or ""."""
    for _ in range(MAX_HOPS + 1):
        pipe = client.pipeline(transaction=False)
        for part in LearnerPart:
            pipe.exists(learner_key(learner_id, part))
        pipe.get(learner_key(learner_id, LearnerPart.ALIAS))
        *present, alias = pipe.execute()
        has = {part for part, there in zip(LearnerPart, present, strict=True) if there}
        if LearnerPart.PROGRESS in has:
            return learner_id
        target = text(alias)
        if not target or target == learner_id:
            return learner_id if has - {LearnerPart.ALIAS} else ""
        learner_id = target
    return ""


def find_by_ref(client: redis.Redis, ref: str) -> list[str]:
    """The learner(s) whose ``learner_ref`` (or an alias's) is ``ref``; nothing else is tried."""
    return _by_learner_ref(client, ref) if _REF.fullmatch(ref) else []


def _by_learner_ref(client: redis.Redis, ref: str) -> list[str]:
    found: list[str] = []
    for part in (LearnerPart.PROGRESS, LearnerPart.ALIAS):
        for key in client.scan_iter(match=learner_key_pattern(part), count=1000):
            learner_id = learner_id_of(key)
            if learner_ref(learner_id) == ref:
                resolved = _resolve(client, learner_id)
                if resolved and resolved not in found:
                    found.append(resolved)
        if found:
            return found
    return found
