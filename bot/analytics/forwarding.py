"""The sender's part of learning analytics: forward a learner's waiting events to their stream. Redis only.

After a drain (``bot.delivery.outbox``), ``forward`` XADDs the analytics events the drain found on the
learner's own list, and one event per item sent or dropped for good, to the learner's stream
(``Recorder.stream_for``), then removes from the list exactly the events it forwarded (a script pops the head
while it is one of them: another sender that forwarded and trimmed them first cannot make it drop newer
ones). All in one pipeline. A crash between the XADD and the pop forwards them twice; the fold counts each
event id once (``bot.analytics.store``).
"""

from __future__ import annotations

from collections.abc import Iterable

import redis
from redis.cluster import RedisCluster

from bot.analytics.recording import Recorder, send_event
from bot.delivery.outbox import Settled
from bot.model.sandbox import is_sandbox
from bot.storage import pipelined_script
from bot.storage.keys import LearnerPart, learner_key

# KEYS: the learner's events list. ARGV: the events forwarded, oldest first. Pops each while it is the head.
_POP_FORWARDED = """
local popped = 0
for i = 1, #ARGV do
  if redis.call('lindex', KEYS[1], 0) ~= ARGV[i] then break end
  redis.call('lpop', KEYS[1])
  popped = popped + 1
end
return popped
"""


class Forwarder:
    """Forwards one learner's events at a time; one per worker process (the script is registered once)."""

    def __init__(self, client: redis.Redis, recorder: Recorder) -> None:
        self.client = client
        self.recorder = recorder
        self._pop = client.register_script(_POP_FORWARDED)

    def forward(self, lid: str, events: Iterable[bytes | str], sends: Iterable[Settled]) -> int:
        """XADD ``events`` (raw, as the drain read them) and ``sends``; pop the events; the number XADDed."""
        waiting = list(events)
        if is_sandbox(lid):  # the simulator's sandbox learner: its sends count for nobody (nor do its turns)
            sends = ()
        entries: list[bytes | str] = [*waiting, *(send_event(lid, settled.item, ok=settled.ok, code=settled.code,
                                                             now_ms=settled.at_ms) for settled in sends)]
        if not entries:
            return 0
        stream = self.recorder.stream_for(lid)
        pipe = self.client.pipeline(transaction=False)
        for entry in entries:
            pipe.xadd(stream, {"e": entry}, maxlen=self.recorder.stream_max, approximate=True)
        # a cluster's pipeline cannot load a script a node lacks (NOSCRIPT): there the pop runs after it, alone
        on_cluster = isinstance(self.client, RedisCluster)
        keys = [learner_key(lid, LearnerPart.EVENTS)]
        index = pipelined_script.queue(pipe, self._pop, keys, waiting) if waiting and not on_cluster else None
        results = pipe.execute(raise_on_error=False)
        if index is None:
            pipelined_script.raise_errors(results)
            if waiting:
                self._pop(keys=keys, args=waiting)
        else:
            pipelined_script.raise_errors(results, but=[index])
            pipelined_script.settle(results, index, self._pop, keys, waiting)
        return len(entries)
