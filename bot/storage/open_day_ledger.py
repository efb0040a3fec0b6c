"""The seats of a Business Open Day, counted in Redis: the source of truth for who is coming.

Each RSVP is one Lua script over the event's own keys (``bot.storage.keys.open_day_key``, hash tag
``{event:<id>}``), so two learners tapping "I'll come" for the last seat at the same moment, in two web
processes, never both get it: the script reads the count and takes the seat in one step.

* ``yes``: a learner already seated or waiting keeps their place (a second tap, a redelivered webhook);
  otherwise they take a seat while ``seated < capacity`` and nobody is waiting, else they join the
  waiting list at its end.
* ``no``: the learner leaves their seat or the waiting list; a freed seat goes to the first learner
  waiting, who is pushed onto the event's ``NOTICES`` list in the same script.
* A learner seated gets a calendar ticket (256 random bits, ``secrets``): the path of their ``.ics``
  (``/open-days/<event>/<ticket>.ics``, ``bot.web.open_days``); cancelling revokes it.

The learner's own record (``bot.tutor.open_days``) is in another hash slot and is never written here: the
dispatcher hands the answer (``bot.model.seats.Seat``) to the learner's turn, which records it — asking
again gives the same answer, so a retried turn stays right. A promoted learner is told by a clock event of
their own (``od:seat:<event>:<ticket>``), scheduled from ``NOTICES`` by ``deliver_notices``; a notice is
removed only after that timer is written, so a crash in between tells them on the next drain.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import redis

from bot.model.seats import Seat, SeatState
from bot.storage.encoding import text
from bot.storage.keys import OpenDayPart, open_day_id_of, open_day_key, open_day_key_pattern

_PARTS = (OpenDayPart.SEATS, OpenDayPart.WAITING, OpenDayPart.DECLINED, OpenDayPart.TICKETS, OpenDayPart.SEQ,
          OpenDayPart.NOTICES)

# KEYS: seats, waiting, declined, tickets, seq, notices. ARGV: action, learner, capacity, fresh ticket, now ms.
# Returns {state, rank, ticket, already}.
_RSVP = """
local seats, waiting, declined, tickets, seq, notices = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local action, lid, capacity, fresh, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
-- seats freed by a raised capacity go to those waiting first, in order
while redis.call('ZCARD', seats) < capacity do
  local first = redis.call('ZRANGE', waiting, 0, 0)[1]
  if not first then break end
  redis.call('ZREM', waiting, first)
  redis.call('ZADD', seats, redis.call('INCR', seq), first)
  redis.call('RPUSH', notices, first)
end
if action == 'yes' then
  if redis.call('ZSCORE', seats, lid) then
    local ticket = redis.call('HGET', tickets, lid)
    if not ticket then
      ticket = fresh
      redis.call('HSET', tickets, lid, ticket, 't:' .. ticket, lid)
    end
    return {'seated', 0, ticket, 1}
  end
  local rank = redis.call('ZRANK', waiting, lid)
  if rank then return {'waiting', rank + 1, '', 1} end
  redis.call('ZREM', declined, lid)
  if redis.call('ZCARD', seats) < capacity then
    redis.call('ZADD', seats, redis.call('INCR', seq), lid)
    redis.call('HSET', tickets, lid, fresh, 't:' .. fresh, lid)
    return {'seated', 0, fresh, 0}
  end
  redis.call('ZADD', waiting, redis.call('INCR', seq), lid)
  return {'waiting', redis.call('ZRANK', waiting, lid) + 1, '', 0}
end
local was_seated = redis.call('ZREM', seats, lid)
local was_waiting = redis.call('ZREM', waiting, lid)
local already = redis.call('ZSCORE', declined, lid) and was_seated == 0 and was_waiting == 0
redis.call('ZADD', declined, now, lid)
local old = redis.call('HGET', tickets, lid)
if old then redis.call('HDEL', tickets, lid, 't:' .. old) end
if was_seated == 1 and redis.call('ZCARD', seats) < capacity then
  local first = redis.call('ZRANGE', waiting, 0, 0)[1]
  if first then
    redis.call('ZREM', waiting, first)
    redis.call('ZADD', seats, redis.call('INCR', seq), first)
    redis.call('RPUSH', notices, first)
  end
end
return {'declined', 0, '', already and 1 or 0}
"""

# KEYS: seats, tickets. ARGV: learner, fresh ticket. The learner's ticket ("" when they hold no seat).
_TICKET = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return '' end
local ticket = redis.call('HGET', KEYS[2], ARGV[1])
if ticket then return ticket end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2], 't:' .. ARGV[2], ARGV[1])
return ARGV[2]
"""

Schedule = Callable[[str, str], None]  # (learner id, timer payload): a clock event for that learner, due now


def new_ticket() -> str:
    """256 random bits, URL-safe: a calendar file's path cannot be guessed."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, kw_only=True, slots=True)
class Attendees:
    """An event's ledger as it stands: learner ids in the order they got a seat / joined the list."""

    seated: tuple[str, ...]
    waiting: tuple[str, ...]
    declined: tuple[str, ...]


class OpenDayLedger:
    def __init__(self, client: redis.Redis):
        self.client = client
        self._rsvp = client.register_script(_RSVP)
        self._ticket = client.register_script(_TICKET)

    @staticmethod
    def keys(event_id: str) -> list[str]:
        return [open_day_key(event_id, part) for part in _PARTS]

    def rsvp(self, event_id: str, learner_id: str, *, coming: bool, capacity: int, now_ms: int) -> Seat:
        """Take a seat (or a place on the waiting list) for ``learner_id``, or give it up; idempotent."""
        answer = self._rsvp(keys=self.keys(event_id),
                            args=["yes" if coming else "no", learner_id, capacity, new_ticket(), now_ms])
        state, rank, ticket, already = answer
        return Seat(event_id=event_id, state=SeatState(text(state)), rank=int(rank), ticket=text(ticket),
                    already=bool(int(already)))

    def deliver_notices(self, event_id: str, schedule: Schedule) -> int:
        """Tell every learner promoted from the waiting list (a clock event each); returns how many."""
        notices = open_day_key(event_id, OpenDayPart.NOTICES)
        told = 0
        for raw in self.client.lrange(notices, 0, -1):
            learner_id = text(raw)
            ticket = text(self._ticket(keys=[open_day_key(event_id, OpenDayPart.SEATS),
                                             open_day_key(event_id, OpenDayPart.TICKETS)],
                                       args=[learner_id, new_ticket()]))
            if ticket:  # still seated (they may have cancelled since)
                schedule(learner_id, f"od:seat:{event_id}:{ticket}")
                told += 1
            self.client.lrem(notices, 1, learner_id)
        return told

    def holder(self, event_id: str, ticket: str) -> str:
        """The learner whose calendar ticket this is, "" if none (never issued, or their seat was given up)."""
        return text(self.client.hget(open_day_key(event_id, OpenDayPart.TICKETS), f"t:{ticket}"))

    def attendees(self, event_id: str) -> Attendees:
        pipe = self.client.pipeline(transaction=False)
        for part in (OpenDayPart.SEATS, OpenDayPart.WAITING, OpenDayPart.DECLINED):
            pipe.zrange(open_day_key(event_id, part), 0, -1)
        seated, waiting, declined = pipe.execute()
        return Attendees(seated=tuple(text(x) for x in seated), waiting=tuple(text(x) for x in waiting),
                         declined=tuple(text(x) for x in declined))

    def event_ids(self) -> list[str]:
        """Every event that has a ledger (a SCAN: admin tools, never per message)."""
        parts = {open_day_key_pattern(part).rsplit(":", 1)[1] for part in (OpenDayPart.SEATS, OpenDayPart.WAITING,
                                                                              OpenDayPart.DECLINED)}
        pattern = open_day_key_pattern(OpenDayPart.SEATS).rsplit(":", 1)[0] + ":*"  # one pass, every part
        found = {open_day_id_of(key) for key in self.client.scan_iter(match=pattern, count=5000)
                 if text(key).rsplit(":", 1)[1] in parts}
        return sorted(found)

    def rsvps_of(self, learner_ids: tuple[str, ...], *,
                 event_ids: tuple[str, ...] | None = None) -> dict[str, dict[str, str]]:
        """Where ``learner_ids`` stand in every event's ledger: event id -> {learner id: seated|waiting|declined}.
        ``event_ids``: the events with a ledger, when the caller has listed them already (else a SCAN)."""
        found: dict[str, dict[str, str]] = {}
        for event_id in event_ids if event_ids is not None else self.event_ids():
            pipe = self.client.pipeline(transaction=False)
            for learner_id in learner_ids:
                for part in (OpenDayPart.SEATS, OpenDayPart.WAITING, OpenDayPart.DECLINED):
                    pipe.zscore(open_day_key(event_id, part), learner_id)
            answers = iter(pipe.execute())
            for learner_id in learner_ids:
                states = [state for state in (SeatState.SEATED, SeatState.WAITING, SeatState.DECLINED)
                          if next(answers) is not None]
                if states:
                    found.setdefault(event_id, {})[learner_id] = states[0].value
        return found

    def forget(self, learner_ids: tuple[str, ...], *, event_ids: tuple[str, ...] | None = None) -> int:
        """Remove ``learner_ids`` from every event's ledger (their seat, place, ticket, notice); entries removed.

        A seat freed this way goes to the first one waiting at the event's next RSVP (the script fills seats
        below capacity from the waiting list first)."""
        removed = 0
        for event_id in event_ids if event_ids is not None else self.event_ids():
            tickets = open_day_key(event_id, OpenDayPart.TICKETS)
            pipe = self.client.pipeline(transaction=True)
            for learner_id in learner_ids:
                for part in (OpenDayPart.SEATS, OpenDayPart.WAITING, OpenDayPart.DECLINED):
                    pipe.zrem(open_day_key(event_id, part), learner_id)
                pipe.lrem(open_day_key(event_id, OpenDayPart.NOTICES), 0, learner_id)
            removed += sum(int(count) for count in pipe.execute())
            for learner_id in learner_ids:
                ticket = text(self.client.hget(tickets, learner_id))
                if ticket:
                    removed += int(self.client.hdel(tickets, learner_id, f"t:{ticket}")) // 2
        return removed
