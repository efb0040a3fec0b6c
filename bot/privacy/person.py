"""Who one learner is in storage: their learner id, the other ids that point at them, their raw identifiers.

``identify`` reads the progress hash (phone, BSUID, user id) and collects the aliases — the ids whose
``LearnerPart.ALIAS`` names this learner — from the ids the record names and, when ``thorough``, from a
scan of every alias key (an id moved twice, a phone that was linked, anything the record no longer
names). Thorough is for export and erase; a console page that only shows a learner skips the scan. The
thorough pass over the keyspace also lists the certificate records, the Open Days with a ledger, the
learner's linked-channel conversation keys, the link codes and the data exports waiting, so holders need no
scan of their own: one pass over the keyspace per export or erase (it was four).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from bot import channels
from bot.storage import certificate_store
from bot.storage.encoding import text
from bot.storage.keys import (
    EXPORT_PREFIX,
    LINK_CODE_PREFIX,
    LearnerPart,
    OpenDayPart,
    learner_id_of,
    learner_key,
    learner_key_pattern,
    open_day_id_of,
    open_day_key_pattern,
)

SCAN_COUNT = 5000  # keys per SCAN step (and per MGET) in the one pass over the keyspace


@dataclass(frozen=True, kw_only=True, slots=True)
class Person:
    learner_id: str  # the id whose keys hold the record
    aliases: tuple[str, ...] = ()  # other learner ids whose alias key points at ``learner_id``
    identifiers: tuple[str, ...] = field(default=())  # raw ids: user id, phone, BSUID (for searches and tests)
    thorough: bool = True  # holders may scan (export, erase); False: direct reads only (a console page)
    certificate_records: tuple[str, ...] | None = None  # thorough: every certificate record key (one scan for all)
    open_days: tuple[str, ...] | None = None  # thorough: every Business Open Day with a ledger (the same scan)
    conversation_keys: tuple[str, ...] | None = None  # thorough: the learner's ``<part>@<channel>`` keys (same scan)
    link_code_keys: tuple[str, ...] | None = None  # thorough: every link code waiting, anyone's (the same scan)
    export_keys: tuple[str, ...] | None = None  # thorough: every data export waiting, anyone's (the same scan)

    @property
    def ids(self) -> tuple[str, ...]:
        """Every learner id of this person (the record's first)."""
        return (self.learner_id, *self.aliases)


def identify(client: redis.Redis, learner_id: str, *, thorough: bool = True) -> Person:
    """``learner_id``'s ``Person`` (it need not have a record: a half-erased learner is still found)."""
    names = ("user_id", "phone", "bsuid")
    stored = client.hmget(learner_key(learner_id, LearnerPart.PROGRESS), list(names))
    record = {name: text(value) for name, value in zip(names, stored, strict=True)}
    prefix, _, user = learner_id.partition(":")
    identifiers = tuple(dict.fromkeys(v for v in (user, record["user_id"], record["phone"], record["bsuid"]) if v))
    candidates = [f"{prefix}:{raw}" for raw in identifiers if f"{prefix}:{raw}" != learner_id]
    alias_keys = [learner_key(candidate, LearnerPart.ALIAS) for candidate in candidates]
    records: list[str] | None = None
    events: set[str] = set()
    conversations: list[str] = []
    link_codes: list[str] = []
    exports: list[str] = []
    if thorough:  # one pass over every key: the alias keys, the certificate records, what the holders look for
        records = []
        own_start = learner_key(learner_id, LearnerPart.PROGRESS).rsplit(":", 1)[0] + ":"  # bottega:{<id>}:
        link_code_start, export_start = f"{LINK_CODE_PREFIX}:", f"{EXPORT_PREFIX}:"
        event_start = open_day_key_pattern(OpenDayPart.SEATS).split("*")[0]
        ledgers = {open_day_key_pattern(part).split("*")[1] for part in (OpenDayPart.SEATS, OpenDayPart.WAITING,
                                                                         OpenDayPart.DECLINED)}
        alias_pattern = learner_key_pattern(LearnerPart.ALIAS)
        alias_start, alias_end = alias_pattern.split("*")
        for raw in client.scan_iter(count=SCAN_COUNT):
            key = text(raw)
            if key.startswith(alias_start) and key.endswith(alias_end):
                alias_keys.append(key)
            elif certificate_store.is_record_key(key):
                records.append(key)
            elif key.startswith(event_start) and key[key.rindex("}"):] in ledgers:
                events.add(open_day_id_of(key))
            elif key.startswith(own_start) and "@" in key[len(own_start):]:
                conversations.append(key)
            elif key.startswith(link_code_start):
                link_codes.append(key)
            elif key.startswith(export_start):
                exports.append(key)
    alias_keys = list(dict.fromkeys(alias_keys))
    pointing: list[object] = []
    for start in range(0, len(alias_keys), SCAN_COUNT):
        pipe = client.pipeline(transaction=False)  # not MGET: the aliases live in many hash slots
        for key in alias_keys[start:start + SCAN_COUNT]:
            pipe.get(key)
        pointing += pipe.execute()
    aliases = tuple(learner_id_of(key) for key, target in zip(alias_keys, pointing, strict=True)
                    if text(target) == learner_id and learner_id_of(key) != learner_id)
    return Person(learner_id=learner_id, aliases=aliases, identifiers=identifiers, thorough=thorough,
                  certificate_records=tuple(records) if records is not None else None,
                  open_days=tuple(sorted(events)) if thorough else None,
                  conversation_keys=tuple(conversations) if thorough else None,
                  link_code_keys=tuple(link_codes) if thorough else None,
                  export_keys=tuple(exports) if thorough else None)


def channel_prefixes() -> tuple[str, ...]:
    return tuple(parts.channel.prefix for parts in channels.every())
