"""Lua scripts registered once per Redis client, not once per call.

``client.register_script(text)`` encodes the text and hashes it (SHA-1) each time it is called; the
drain registered its four scripts on every call and ``schedule`` and the broadcast steps one per call.
``script(client, text)`` keeps one ``Script`` per client and text for as long as the client lives.
"""

from __future__ import annotations

import threading
import weakref

import redis
from redis.commands.core import Script

_scripts: weakref.WeakKeyDictionary[redis.Redis, dict[str, Script]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def script(client: redis.Redis, text: str) -> Script:
    """The client's ``Script`` for ``text`` (registered on first use)."""
    try:
        return _scripts[client][text]
    except KeyError:
        with _lock:
            registered = _scripts.setdefault(client, {})
            return registered.setdefault(text, client.register_script(text))
