"""Retention: a learner inactive for long is warned first where Bottega may still write, then erased. No I/O.

The worker's retention sweep (``bot.privacy.retention``) finds learners whose last own message (on any linked
channel) is older than ``RETENTION_MONTHS`` less ``RETENTION_WARNING_DAYS`` and fires a ``ret:warn:<days>``
clock event for each, once; ``warn`` here places the warning like any message Bottega starts
(``bot.proactive.placement``: free-form while a window is open; no template is declared for it, so a closed
window means no warning) and records that it was decided (``retention_warned_at_ms``), sent or not. Any
message of the learner clears it: the clock starts again. Past ``RETENTION_MONTHS`` the sweep erases them.
"""

from __future__ import annotations

from bot.proactive.placement import place
from bot.tutor import consent, outreach, reminders
from bot.tutor.turn import Turn

TIMER_PREFIX = "ret:warn"


def warn(turn: Turn, payload: str) -> None:
    """The ``ret:warn:<days>`` clock event: the warning, where a window (or the channel) allows it."""
    if turn.progress.retention_warned_at_ms:
        return
    days = payload.rpartition(":")[2]
    now = turn.now_ms
    turn.progress = turn.progress.with_changes(retention_warned_at_ms=now)
    if not consent.may_message_first(turn.progress):
        return
    decided = place(reminders.reach(turn), moment_ms=now, now_ms=now, policy=turn.source.policy, template=None,
                    capped=False)
    if decided.sends:
        outreach.say(turn, decided, kind="retention", text=turn.text("retention_warning", days=days), options=[],
                     fields={})


def on_learner_message(turn: Turn) -> None:
    """They wrote: not inactive any more, a later inactivity is warned about again."""
    if turn.progress.retention_warned_at_ms:
        turn.progress = turn.progress.with_changes(retention_warned_at_ms=0)
