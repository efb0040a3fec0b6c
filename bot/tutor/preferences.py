"""What the platforms tell us about a learner's wish to hear from Bottega first, kept on their record. No I/O.

* WhatsApp ``user_preferences`` (marketing messages stop/resume) and Messenger ``messaging_optins``
  (a marketing-messages token with its expiry and time zone; STOP/RESUME) arrive as PREFERENCE events.
* Meta's refusals of a proactive message arrive as failed STATUS events (a status webhook, or the
  sender's own answer): 131050 (the learner stopped marketing messages), 131049 (per-user marketing limit:
  not before a day later), 131047 (the window was closed after all: the next message goes as a template).

None of this is our own opt-out: ``stop`` (``bot.tutor.consent``) stops everything, these only shape
which way a proactive message may go (``bot.proactive.placement``). Nothing here sends anything.
"""

from __future__ import annotations

from bot.model.events import InboundEvent
from bot.proactive.policy import DAY_MS
from bot.tutor.progress_parts import NOTICES_MAX, NoticeShown
from bot.tutor.turn import Turn

WINDOW_CLOSED, MARKETING_LIMIT, MARKETING_STOPPED = 131047, 131049, 131050
REFUSAL_CODES = frozenset({WINDOW_CLOSED, MARKETING_LIMIT, MARKETING_STOPPED})


def on_preference(turn: Turn, event: InboundEvent) -> None:
    record = turn.progress.proactive
    now = turn.now_ms
    if event.status == "stop":
        record = record.with_changes(marketing_stopped=True, marketing_changed_ms=now)
    elif event.status == "resume":
        record = record.with_changes(marketing_stopped=False, marketing_changed_ms=now)
    if event.token:
        record = record.with_changes(optin_token=event.token, optin_expires_ms=event.expires_ms)
    if event.time_zone and turn.source.policy.zone(event.time_zone).key == event.time_zone:
        record = record.with_changes(time_zone=event.time_zone)
    p = turn.progress  # a marketing opt-in, stop or resume, recorded like the privacy notice: what, when, where
    entry = NoticeShown(what=f"marketing_{event.status or 'opt_in'}", version=event.detail, at_ms=now,
                        channel=event.channel.name)
    turn.progress = p.with_changes(proactive=record, notices=(*p.notices, entry)[-NOTICES_MAX:])


def on_refusal(turn: Turn, event: InboundEvent) -> None:
    code, now = event.error_code, turn.now_ms
    if code not in REFUSAL_CODES:
        return
    record = turn.progress.proactive.with_refusal(code, now)
    if code == MARKETING_STOPPED:
        record = record.with_changes(marketing_stopped=True, marketing_changed_ms=now)
    elif code == MARKETING_LIMIT:
        record = record.with_changes(marketing_retry_ms=now + DAY_MS)
    else:
        record = record.with_changes(window_refused_ms=now)
    turn.progress = turn.progress.with_changes(proactive=record)
