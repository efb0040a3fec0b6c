"""Bottega writing first, inside a turn: the one way a proactive message is said. No I/O.

A feature that writes first (reminders today; Open Days and broadcasts next) asks
``bot.proactive.placement.place`` where and when, and on a send answer calls ``say``: it builds the message
the placement chose — a normal message (free-form or moved into the window), the WhatsApp template filled
from the learner's fields, or a message to the learner's Messenger marketing-messages token — marks it
``Reply.proactive`` (the outbox drops it unsent if the learner opts out before it goes; Messenger sends it
as ``UPDATE``), and records it on the learner (``proactive.sent``: when, what for, how, category, cost),
which is what the daily cap counts. The reply leaves with the turn's atomic commit, through the learner's
outbox: ordered behind their own conversation, paced, exactly once (a timer's turn is deduplicated).
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.model.replies import Media, Option, Reply, TemplateMessage
from bot.proactive.placement import How, Placement
from bot.proactive.record import Sent
from bot.tutor.turn import Turn


def say(turn: Turn, decided: Placement, *, kind: str, text: str, options: list[Option],
        fields: Mapping[str, str], media: Media | None = None) -> None:
    """Say a proactive message of ``kind`` the way ``decided`` chose, and record it.

    ``text``, ``options`` and ``media`` (a document: an Open Day's calendar file) are the free-form message;
    a template carries no media. ``fields`` fill a template's parameters (``bot.flows.templates.PARAM_FIELDS``:
    module, time, name, business, and an Open Day's event, when, where, link).
    """
    assert decided.sends, "only a send placement is said"
    lang = turn.progress.lang
    if decided.how is How.TEMPLATE:
        assert decided.template is not None
        template = decided.template
        params = tuple(fields.get(name) or (template.defaults[name].get(lang) if name in template.defaults else "-")
                       for name in template.params)
        body = template.body.get(lang)
        for number, value in enumerate(params, start=1):
            body = body.replace("{{" + str(number) + "}}", value)
        message = TemplateMessage(name=template.name, language=template.code(lang), params=params,
                                  payloads=tuple(button.payload for button in template.buttons),
                                  category=template.category)
        turn.replies.append(Reply(text=body, lang=lang, proactive=kind, template=message))
    else:
        token = turn.progress.proactive.optin_token if decided.how is How.OPT_IN_TOKEN else ""
        turn.replies.append(Reply(text=text, options=tuple(options), media=media, lang=lang,
                                  choose_label=turn.text("label_choose"), proactive=kind, notification_token=token))
    record(turn, decided, kind)


def record(turn: Turn, decided: Placement, kind: str) -> None:
    """Keep what went out first on the learner's record: the daily cap counts it, the console reads it."""
    policy, zone = turn.source.policy, turn.progress.proactive.time_zone
    entry = Sent(at_ms=turn.now_ms, kind=kind, how=decided.how.value, category=decided.category, cost=decided.cost,
                 currency=decided.currency, template=decided.template.name if decided.template else "")
    turn.progress = turn.progress.with_changes(
        proactive=turn.progress.proactive.with_sent(entry, policy.local_day(turn.now_ms, zone)))
