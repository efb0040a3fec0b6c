"""The timer sweeper's idle back-off (``bot.delivery.timers.idle_wait``) on a real Redis."""

from __future__ import annotations

import redis

from bot.delivery.timers import SWEEP_IDLE_MAX_SECONDS, SWEEP_INTERVAL_SECONDS, idle_wait
from bot.storage.keys import learner_timer_index_key

NOW_MS = 1_800_000_000_000


def test_an_idle_sweeper_backs_off_to_its_cap(redis_client: redis.Redis) -> None:
    waits, wait = [], SWEEP_INTERVAL_SECONDS
    for _ in range(6):
        wait = idle_wait(redis_client, NOW_MS, wait, SWEEP_IDLE_MAX_SECONDS)
        waits.append(wait)
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_it_never_sleeps_past_the_earliest_due_timer(redis_client: redis.Redis) -> None:
    for learner, due in (("wa:393330000001", NOW_MS + 1_500), ("wa:393330000002", NOW_MS + 60_000)):
        redis_client.zadd(learner_timer_index_key(learner), {learner: due})  # each in its learner's shard
    assert idle_wait(redis_client, NOW_MS, 4.0, SWEEP_IDLE_MAX_SECONDS) == 1.5
    redis_client.zadd(learner_timer_index_key("wa:393330000003"), {"wa:393330000003": NOW_MS + 100})
    assert idle_wait(redis_client, NOW_MS, 4.0, SWEEP_IDLE_MAX_SECONDS) == SWEEP_INTERVAL_SECONDS


def test_without_back_off_it_sweeps_at_the_interval(redis_client: redis.Redis) -> None:
    assert idle_wait(redis_client, NOW_MS, 4.0, SWEEP_INTERVAL_SECONDS) == SWEEP_INTERVAL_SECONDS
