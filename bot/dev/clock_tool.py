"""``bottega clock``: show or move the shared test clock (``bot.storage.clock``) of `make run` or a test Redis.

    bottega clock                      what time it is for Bottega, and how far ahead of real time
    bottega clock advance 1d           to tomorrow, stopping at each due timer on the way (reminders,
                                       check-up clocks) until the worker has fired it and sent what it said
    bottega clock advance 2h30m
    bottega clock set 2026-12-02T08:00 that moment (DEFAULT_TIME_ZONE; or give an offset, +01:00)

Only in dev and test (``BOTTEGA_ENV``): production always runs on the real clock. The clock only moves
forward. It works on ``REDIS_URL``, or on the embedded Redis of a running ``make run``.
"""

from __future__ import annotations

import re
import sys
import time
import zoneinfo
from datetime import datetime

import redis

from bot import composition
from bot.delivery.broker import CLUSTER_SCHEMES
from bot.dev import embedded_redis
from bot.storage import clock
from bot.storage.keys import LearnerPart, learner_key_pattern, timer_index_keys
from config.settings import Settings

STEP_TIMEOUT_SECONDS = 15.0  # how long one due time may take to fire and drain before the clock goes on

_PART = re.compile(r"(\d+)([dhms])")
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000}


def duration_ms(text: str) -> int:
    """``1d2h30m`` -> milliseconds; ValueError with the fix when it is not that shape."""
    compact = text.replace(" ", "").lower()
    if not compact or _PART.sub("", compact):
        raise ValueError(f"{text!r} is not a duration; write it like 1d, 2h30m or 90s")
    return sum(int(number) * _UNIT_MS[unit] for number, unit in _PART.findall(compact))


def moment_ms(text: str, time_zone: str) -> int:
    """``2026-12-02T08:00`` (in ``time_zone`` unless it carries an offset) -> Unix ms."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a moment; write it like 2026-12-02T08:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zoneinfo.ZoneInfo(time_zone))
    return int(moment.timestamp() * 1000)


def run_until(client: redis.Redis, until_ms: int, *, step_timeout: float = STEP_TIMEOUT_SECONDS) -> bool:
    """Move the shared clock to ``until_ms`` through every timer due before it, one due time at a time:
    each is fired by the worker's sweeper (it reads this clock) and its sends drain before the clock goes on,
    so a reminder planned for 19:30 goes at 19:30, not "too late" after a jump. False when a step did not
    settle in ``step_timeout`` (no worker running): the clock still ends at ``until_ms``."""
    settled = True
    while True:
        due = _earliest_due(client)
        if due is None or due > until_ms:
            break
        if due > clock.SharedTestClock(client)():
            clock.set_now(client, due)
        if not _settle(client, time.monotonic() + step_timeout):
            settled = False
            break
    if until_ms > clock.SharedTestClock(client)():
        clock.set_now(client, until_ms)
    return settled


def _earliest_due(client: redis.Redis) -> int | None:
    """The earliest due time in the timer index (every shard), or None."""
    pipe = client.pipeline(transaction=False)
    for index in timer_index_keys():
        pipe.zrange(index, 0, 0, withscores=True)
    firsts = [int(entries[0][1]) for entries in pipe.execute() if entries]
    return min(firsts) if firsts else None


def _settle(client: redis.Redis, deadline: float) -> bool:
    """Wait until no timer is due any more and every outbox is empty (the sends of what fired)."""
    while time.monotonic() < deadline:
        earliest = _earliest_due(client)
        due = earliest is not None and earliest <= clock.SharedTestClock(client)()
        waiting = next(client.scan_iter(match=learner_key_pattern(LearnerPart.OUTBOX), count=1000), None)
        if not due and waiting is None:
            return True
        time.sleep(0.05)
    return False


def clock_command(settings: Settings, action: str, value: str) -> int:
    if not settings.movable_clock:
        print("bottega clock: production runs on the real clock; the test clock moves only with BOTTEGA_ENV=dev "
              "or test.", file=sys.stderr)
        return 2
    if settings.redis_url:
        url = settings.redis_url
    else:
        socket = settings.var_dir / "redis" / embedded_redis.SOCKET_NAME
        if not socket.exists():
            print("bottega clock: no Redis to keep the clock in: start `make run` or set REDIS_URL.", file=sys.stderr)
            return 2
        url = f"unix://{socket}"
    if url.startswith(CLUSTER_SCHEMES):  # a test deployment on a Redis Cluster
        client = composition.cluster_client(url)
    else:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        settled = True
        if action == "advance":
            settled = run_until(client, clock.SharedTestClock(client)() + duration_ms(value))
        elif action == "set":
            target = moment_ms(value, settings.default_time_zone)
            if target < clock.SharedTestClock(client)():
                raise ValueError("the test clock is already past that moment; it only moves forward")
            settled = run_until(client, target)
        now = clock.SharedTestClock(client)()
        ahead = clock.offset_ms(client)
    except ValueError as error:
        print(f"bottega clock: {error}", file=sys.stderr)
        return 2
    except redis.RedisError as error:
        print(f"bottega clock: Redis does not answer ({type(error).__name__})", file=sys.stderr)
        return 2
    finally:
        client.close()
    shown = datetime.fromtimestamp(now / 1000, tz=zoneinfo.ZoneInfo(settings.default_time_zone))
    print(f"Bottega's clock: {shown:%Y-%m-%d %H:%M:%S %Z} ({ahead / 3_600_000:.2f} h ahead of real time).")
    if not settled:
        print("bottega clock: a due timer did not fire: is the worker running (`make run`)? The clock moved on "
              "anyway; what was due fires late (a reminder more than an hour late is skipped).", file=sys.stderr)
    return 0
