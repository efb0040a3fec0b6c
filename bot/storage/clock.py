"""The clock a learner's turns and timers run on: the wall clock, or in dev mode a test clock moved forward.

Production reads the wall clock and nothing else (``wall_ms``). In dev mode (``make run``, the simulator,
the browser tests) web and worker read ``TestClock.now_ms``: the wall clock plus an offset kept in
Redis (``OFFSET_KEY``), so moving it forward (``advance``) moves every process at once — the check-up's
deadline and warnings, and any later clock event, fall due as if that time had passed, and the
worker's timer sweeper fires them. It only ever moves forward, and only for the whole dev service:
every learner shares it. Costs one GET per turn, in dev mode only.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from bot.storage.encoding import text
from bot.storage.keys import global_key

OFFSET_KEY = global_key("testclock:offset_ms")  # string: how far the dev service's clock is ahead of the wall

Clock = Callable[[], int]  # the current time, in Unix milliseconds


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class TestClock:
    """The wall clock plus an offset in Redis that only grows; dev and tests only."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, client: redis.Redis):
        self.client = client

    def offset_ms(self) -> int:
        raw = self.client.get(OFFSET_KEY)
        return int(text(raw)) if raw else 0

    def now_ms(self) -> int:
        return wall_ms() + self.offset_ms()

    def advance(self, seconds: float) -> int:
        """Move the clock forward by ``seconds`` (> 0); returns the new offset in ms."""
        if seconds <= 0:
            raise ValueError(f"the test clock only moves forward; got {seconds} seconds")
        return int(self.client.incrby(OFFSET_KEY, int(seconds * 1000)))
