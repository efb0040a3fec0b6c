"""The sending number's throughput: one token bucket per WhatsApp number (or Page), shared on Redis.

Meta counts every message a number sends (80 per second by default, up to 1,000; a Page's Send API
about 300/s) and answers 130429 past it (docs/platform.md §10). Every worker process and thread sends
from the same numbers, so the bucket lives in Redis: one hash per number (``keys.throughput_key``)
holding ``tokens`` and the Redis server time they were counted at. ``take`` runs one Lua script: it
refills at ``rate`` per second up to ``capacity`` (``rate * burst_seconds``, at least one) and takes
one token, or answers how many ms until one is there. The script reads the time from Redis itself
(``TIME``), so processes on different boxes share one clock and clock skew cannot over-spend.

Two classes share the bucket: a learner's own conversation (``bulk=False``) may take any token; a
broadcast (``bulk=True``) only while more than ``reserve`` tokens remain (``BULK_RESERVE_PERCENT`` of
the capacity). When a broadcast keeps the bucket near empty, the reserve is what a learner's reply
finds: turn replies never wait behind bulk traffic for the number's budget. Meta's 130429 back-off
in ``bot.delivery.outbox`` stays the last line, for traffic this bucket does not see (another app on
the same number, or Meta counting inbound messages too).

**Waiting in line, not in a herd.** When the bucket is empty, each sender that finds it so is told a
different wait: the bucket also counts the senders waiting for it (``wc`` conversations, ``wb``
broadcasts; the count drains at ``rate`` per second, as the tokens they wait for come), and the k-th
waiter is told to come back when k tokens have refilled. Before, every waiter was told the same ~1/rate
and came back together: at 600 learners against 80/s each sent message cost 13 ms of worker CPU in
retries (bench/README.md). A sender coming back (``waited``) takes any token it finds; a newcomer leaves
the tokens the waiters ahead of it are owed, and a conversation never counts the broadcasts waiting.
Nothing is reserved: every send still takes a real token when it goes, so waiters woken together (a
delayed job's wake-up is not exact) cannot go over the bucket; those who find it empty again queue again.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from bot.storage.keys import throughput_key
from config.settings import Settings

# KEYS: the bucket. ARGV: rate per s, capacity, reserve (tokens a bulk take must leave), ttl ms, bulk 0|1,
# waited 0|1 (this sender was told to wait and came back). -> 0 taken, else the ms to wait (this sender's place
# in line). Effects replication (Redis >= 5) makes TIME safe before a write.
_TAKE = """
local rate, capacity, reserve = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local bulk, waited = ARGV[5] == '1', ARGV[6] == '1'
local now = redis.call('time')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local state = redis.call('hmget', KEYS[1], 't', 'at', 'wc', 'wb')
local tokens, at = tonumber(state[1]), tonumber(state[2])
local wc, wb = tonumber(state[3]) or 0, tonumber(state[4]) or 0
if tokens == nil or at == nil then tokens, at = capacity, now_us end
if now_us > at then
  local came = (now_us - at) * rate / 1000000
  tokens = math.min(capacity, tokens + came)
  local served = math.min(wc, came)  -- conversations first, then broadcasts
  wc, wb = wc - served, math.max(wb - (came - served), 0)
end
local ahead = 0
if not waited then
  ahead = wc
  if bulk then ahead = wc + wb end
end
local wait = 0
if tokens >= 1 + reserve + ahead then
  tokens = tokens - 1
else
  local place
  if bulk then wb = wb + 1; place = wc + wb else wc = wc + 1; place = wc end
  wait = math.floor((reserve + place - tokens) * 1000 / rate) + 1
end
redis.call('hset', KEYS[1], 't', tostring(tokens), 'at', now_us, 'wc', tostring(wc), 'wb', tostring(wb))
redis.call('pexpire', KEYS[1], ARGV[4])
return wait
"""
BUCKET_TTL_MS = 60_000  # an idle number's bucket is full again long before this


@dataclass(frozen=True, kw_only=True, slots=True)
class Rate:
    per_second: float
    burst_seconds: float
    reserve_ratio: float

    @property
    def capacity(self) -> float:
        return max(self.per_second * self.burst_seconds, 1.0)

    def reserve(self, bulk: bool) -> float:
        """Tokens a bulk take must leave: the reserve share, but never so much that bulk can take none."""
        return min(self.capacity * self.reserve_ratio, self.capacity - 1.0) if bulk else 0.0


class Throughput:
    """The buckets of the numbers this process sends from (one script, registered once)."""

    def __init__(self, client: redis.Redis, rates: dict[str, Rate]):
        self.client = client
        self.rates = rates  # by channel value ("whatsapp", "messenger", "instagram"); a channel missing: no limit
        self._take = client.register_script(_TAKE)

    @classmethod
    def from_settings(cls, client: redis.Redis, settings: Settings) -> Throughput:
        def rate(per_second: float) -> Rate:
            return Rate(per_second=per_second, burst_seconds=settings.send_burst_seconds,
                        reserve_ratio=settings.bulk_reserve_percent / 100)
        page = rate(settings.page_messages_per_second)
        return cls(client, {"whatsapp": rate(settings.whatsapp_messages_per_second), "messenger": page,
                            "instagram": page})

    def take(self, channel: str, sender_id: str, *, bulk: bool = False, waited: bool = False) -> int:
        """Take one send from ``sender_id``'s bucket: 0 when taken, else the ms until this sender's place in line
        comes. ``waited``: the sender was told to wait before and is back (it goes before newcomers)."""
        rate = self.rates.get(channel)
        if rate is None or not sender_id:
            return 0
        args: list[str | int] = [repr(rate.per_second), repr(rate.capacity), repr(rate.reserve(bulk)), BUCKET_TTL_MS,
                                 int(bulk), int(waited)]
        return int(self._take(keys=[throughput_key(channel, sender_id)], args=args))
