"""What time it is for Bottega: the real clock in production, a movable one in dev and tests.

Every process reads the time through a ``Clock``: the dispatcher stamps turns with it, the timer
sweeper fires what is due by it, the sender times its backoff and pacing by it. In production that is
``SystemClock`` (Unix time). In dev and test (``Settings.movable_clock``) it is ``SharedTestClock``: the
real time plus an offset kept in Redis (``CLOCK_OFFSET_KEY``), so web, worker, ``bottega`` commands and
the tests all see one time, and moving it forward (``advance``, ``set_now``) makes tomorrow 08:00 come
in seconds: due timers fire on the next sweep, exactly once, as they would on the day.

The offset only ever moves forward: a clock turned back would fire nothing and confuse dedup windows.
Reading it costs one GET per call; production never reads it.
"""

from __future__ import annotations

import time
from typing import Protocol

import redis

from bot.storage.encoding import text
from bot.storage.keys import global_key

CLOCK_OFFSET_KEY = global_key("clock:offset_ms")  # string: ms the shared test clock is ahead of real time


class Clock(Protocol):
    def __call__(self) -> int:
        """Now, in Unix milliseconds."""
        ...


def system_ms() -> int:
    """The real time in Unix milliseconds."""
    return time.time_ns() // 1_000_000


class SystemClock:
    """Production's clock: the real one."""

    def __call__(self) -> int:
        return system_ms()


class SharedTestClock:
    """Real time plus the offset in Redis: one movable clock for every dev or test process."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def __call__(self) -> int:
        return system_ms() + offset_ms(self.client)


def offset_ms(client: redis.Redis) -> int:
    """How far the shared test clock is ahead of real time (0 when never moved)."""
    return int(text(client.get(CLOCK_OFFSET_KEY)) or 0)


def advance(client: redis.Redis, ms: int) -> int:
    """Move the shared test clock ``ms`` forward; returns the new offset. Refuses to go back."""
    if ms < 0:
        raise ValueError(f"the test clock only moves forward; got {ms} ms")
    return int(client.incrby(CLOCK_OFFSET_KEY, ms))


def set_now(client: redis.Redis, at_ms: int) -> int:
    """Move the shared test clock forward to ``at_ms`` (Unix ms); returns the new offset."""
    ahead = at_ms - (system_ms() + offset_ms(client))
    if ahead < 0:
        raise ValueError(f"the test clock is already {-ahead} ms past that moment; it only moves forward")
    return advance(client, ahead)
