"""``bottega clock``: show or move the shared test clock (``bot.storage.clock``) of `make run` or a test Redis.

    bottega clock                      what time it is for Bottega, and how far ahead of real time
    bottega clock advance 1d           tomorrow, now: due timers (reminders, check-up clocks) fire at once
    bottega clock advance 2h30m
    bottega clock set 2026-12-02T08:00 that moment (DEFAULT_TIME_ZONE; or give an offset, +01:00)

Only in dev and test (``BOTTEGA_ENV``): production always runs on the real clock. The clock only moves
forward. It works on ``REDIS_URL``, or on the embedded Redis of a running ``make run``.
"""

from __future__ import annotations

import re
import sys
import zoneinfo
from datetime import datetime

import redis

from bot.dev import embedded_redis
from bot.storage import clock
from config.settings import Settings

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
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        if action == "advance":
            clock.advance(client, duration_ms(value))
        elif action == "set":
            clock.set_now(client, moment_ms(value, settings.default_time_zone))
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
    print(f"Bottega's clock: {shown:%Y-%m-%d %H:%M:%S %Z} ({ahead / 3_600_000:.2f} h ahead of real time). "
          "Due timers fire within a second.")
    return 0
