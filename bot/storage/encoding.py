"""How values cross into and out of Redis: replies come back as bytes, hashes go in as field maps.

redis-py types every reply as "bytes or str" (the client may decode), so readers state which one they
expect here rather than at each call.
"""

from __future__ import annotations

from collections.abc import Mapping

from redis.typing import EncodableT, FieldT


def text(value: object) -> str:
    """A reply as text: bytes decoded as UTF-8, str as it is, None or anything else as ""."""
    if isinstance(value, bytes):
        return value.decode()
    return value if isinstance(value, str) else ""


def hash_fields(values: Mapping[str, str]) -> dict[FieldT, EncodableT]:
    """A ``{field: value}`` map as ``HSET ... mapping=`` takes it."""
    return {name: value for name, value in values.items()}
