"""Any Redis key's value as plain JSON-able data, whatever its type (admin tools: export, inspection, tests).

Strings and hash values that hold JSON objects or lists come back parsed (progress parts, outbox items);
everything else as text. Never on a message's path.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from bot.storage.encoding import text


def readable(raw: object) -> Any:
    """A stored value as text, or as the JSON object/list it holds."""
    value = text(raw)
    if value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def read_value(client: redis.Redis, key: str | bytes) -> Any:
    """The value under ``key`` by its Redis type (None: no such key)."""
    kind = text(client.type(key))
    if kind == "string":
        return readable(client.get(key))
    if kind == "hash":
        return {text(field): readable(value) for field, value in client.hgetall(key).items()}
    if kind == "list":
        return [readable(item) for item in client.lrange(key, 0, -1)]
    if kind == "set":
        return sorted(readable(item) for item in client.smembers(key))
    if kind == "zset":
        return [[text(member), score] for member, score in _scored(client, key)]
    if kind == "stream":
        return [[text(entry_id), {text(k): readable(v) for k, v in fields.items()}]
                for entry_id, fields in _entries(client, key)]
    return None


def raw_text(client: redis.Redis, key: str | bytes) -> str:
    """Every byte stored under ``key`` (members, fields, values) as one text: to search it for a substring."""
    kind = text(client.type(key))
    parts: list[object] = []
    if kind == "string":
        parts = [client.get(key)]
    elif kind == "hash":
        parts = [part for pair in client.hgetall(key).items() for part in pair]
    elif kind == "list":
        parts = list(client.lrange(key, 0, -1))
    elif kind == "set":
        parts = list(client.smembers(key))
    elif kind == "zset":
        parts = [member for member, _ in _scored(client, key)]
    elif kind == "stream":
        parts = [part for _, fields in _entries(client, key) for pair in fields.items() for part in pair]
    return "\n".join(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value) for value in parts)


def _scored(client: redis.Redis, key: str | bytes) -> list[tuple[bytes, float]]:
    answer: Any = client.zrange(key, 0, -1, withscores=True)  # redis-py types every reply shape at once
    return list(answer)


def _entries(client: redis.Redis, key: str | bytes) -> list[tuple[bytes, dict[bytes, bytes]]]:
    answer: Any = client.xrange(key)
    return list(answer or [])
