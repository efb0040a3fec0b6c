"""A broadcast's message, as a turn of the learner's own. No I/O.

``bot.broadcasts`` admits each recipient by handing the dispatcher a clock event with the payload
``bc:<broadcast id>:<message id>`` (``timer_payload``); its message id ``timer:bc:...`` makes the turn —
and so the message — exactly once per learner, committed atomically with the learner's outbox. Here the
turn asks ``bot.proactive.placement`` (the same rules as a reminder: consent, quiet hours, the daily cap,
the window, the template for outside it) and, on a send, says the message of ``broadcasts.yaml`` through
``outreach``, marked ``broadcast:<id>`` so the sender paces it as bulk traffic and the broadcast's
report learns how it went. ``decide`` is the same decision for a dry run.
"""

from __future__ import annotations

from bot.flows.spec import BroadcastMessage, Course
from bot.model.replies import Option, broadcast_kind
from bot.proactive import placement
from bot.proactive.placement import Placement, Reach
from bot.proactive.policy import Policy
from bot.tutor import consent, outreach
from bot.tutor.progress import Progress
from bot.tutor.turn import Turn

TIMER_PREFIX = "bc:"


def timer_payload(broadcast_id: str, message_id: str) -> str:
    return f"{TIMER_PREFIX}{broadcast_id}:{message_id}"


def reach_of(progress: Progress) -> Reach:
    return Reach(channel=progress.channel, opted_out=not consent.may_message_first(progress),
                 last_inbound_ms=progress.last_inbound_at_ms, record=progress.proactive)


def decide(course: Course, policy: Policy, progress: Progress, message: BroadcastMessage, now_ms: int) -> Placement:
    """How ``message`` would reach this learner at ``now_ms`` (free-form, template, or not at all: why)."""
    template = course.template_for(message.template_use) if message.template_use else None
    return placement.place(reach_of(progress), moment_ms=now_ms, now_ms=now_ms, policy=policy, template=template)


def on_timer(turn: Turn, payload: str) -> None:
    broadcast_id, _, message_id = payload.removeprefix(TIMER_PREFIX).partition(":")
    message = turn.course.broadcast(message_id)
    if message is None or turn.progress.is_new:
        return  # a message gone from the course since the broadcast started: nothing to say
    decided = decide(turn.course, turn.source.policy, turn.progress, message, turn.now_ms)
    if not decided.sends:
        return
    lang = turn.progress.lang
    options = [Option(id=button.payload, title=button.label.get(lang)) for button in message.buttons]
    outreach.say(turn, decided, kind=broadcast_kind(broadcast_id), text=turn.fill(message.text.get(lang)),
                 options=options, fields={"name": turn.progress.name,
                                          "business": turn.course.business_label(turn.progress.business, lang)})
