"""What the Open Day ledger answered about one learner's RSVP: plain data, no I/O.

The ledger (``bot.storage.open_day_ledger``) counts the seats of an event in Redis and is the source of
truth; the dispatcher asks it before the learner's turn and hands this answer to the engine
(``bot.tutor.open_days``), which keeps the learner's RSVP state as its consequence and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class SeatState(str, Enum):
    SEATED = "seated"  # one of the ``capacity`` seats is the learner's
    WAITING = "waiting"  # on the waiting list, promoted in order when a seat frees up
    DECLINED = "declined"  # not coming (said so, or cancelled)


@dataclass(frozen=True, kw_only=True, slots=True)
class Seat:
    event_id: str
    state: SeatState
    rank: int = 0  # WAITING: the learner's place on the waiting list, 1 = next
    ticket: str = ""  # SEATED: the unguessable token of their calendar file (/open-days/<event>/<ticket>.ics)
    already: bool = False  # the learner was already in this state (a second tap, a redelivered webhook)
