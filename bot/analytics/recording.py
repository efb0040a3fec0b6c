"""What a turn taught us, as one compact analytics event (JSON). No I/O.

``Recorder.turn`` compares a learner's progress before and after a committed turn; ``Recorder.status`` reads a
delivery status webhook; ``send_event`` describes one outbox item the sender sent or gave up on. Keys are
short (the events sit in Redis lists and streams until folded):

``id`` unique per fact (the fold counts each once) · ``k`` kind: turn | status | send · ``l`` learner_ref ·
``ms`` when · ``ch`` channel · ``lg`` language · ``a`` 1 the learner wrote. A turn may add: ``new`` {src, camp}
first seen, or the entry link / ad they came in by once known (the store keeps the first) · ``mv``
[module, from step, to step] · ``st`` module started · ``done`` module completed · ``ans`` [[test, item,
option, score 0..1]] (a module's quiz is the test ``quiz:<module>``, the check-up ``checkup``) · ``cu``
{p, lv, ar, plan, to} a check-up result · ``oo`` "out" | "in" consent changed.
A status adds ``st`` status, ``code`` Meta's error code, ``cat``/``pt`` pricing category/type.
A send adds ``ok`` 1|0, ``code``, ``pro`` proactive kind, ``win`` "window" | "template", ``tpl`` template name.
Sandbox learners (the production simulator's, ``bot.model.sandbox``) are no learners: they give no event.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

from bot.flows.spec import CheckUp, Course
from bot.model.events import InboundEvent
from bot.model.privacy import learner_ref
from bot.model.sandbox import is_sandbox
from bot.storage.keys import analytics_stream_key
from bot.storage.outbox_item import OutboxItem
from bot.tutor.progress import Progress

CHECKUP_TEST = "checkup"
PLAN_AREAS = 3  # bot.tutor.checkup.PLAN_AREAS: the plan names the weakest areas


def quiz_test(module: str) -> str:
    return f"quiz:{module}"


def dumps(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class Recorder:
    """Builds the events; the dispatcher and the sender call it (``bot.composition`` wires it in)."""

    shards: int = 8  # ANALYTICS_STREAM_SHARDS
    stream_max: int = 1_000_000  # ANALYTICS_STREAM_MAXLEN, per stream (approximate trimming)

    def stream_for(self, lid: str) -> str:
        """The stream a learner's events go to: always the same one, so they are folded in order."""
        return analytics_stream_key(zlib.crc32(lid.encode("utf-8")) % max(self.shards, 1))

    def status_entry(self, event: InboundEvent) -> tuple[str, str, int] | None:
        """(stream, event JSON, stream max length) for a status worth keeping, else None."""
        entry = self.status(event)
        return (self.stream_for(event.learner_id), entry, self.stream_max) if entry else None

    def turn(self, before: Progress, after: Progress, event: InboundEvent, course: Course, now_ms: int) -> str:
        """The turn's event as JSON ("" when the learner's record did not change in a way analytics counts,
        or for a sandbox learner)."""
        if is_sandbox(after.learner_id):
            return ""
        data: dict[str, Any] = {"id": f"{learner_ref(after.learner_id)}:{after.rev + 1}", "k": "turn",
                                "l": learner_ref(after.learner_id), "ms": now_ms, "ch": after.channel, "lg": after.lang}
        if event.kind.from_learner:
            data["a"] = 1  # the learner wrote: active today
        touch = _first_touch(after)
        if before.is_new or (touch != _first_touch(before) and any(touch)):
            data["new"] = {"src": touch[0], "camp": touch[1]}  # first seen, or how they came in (once known)
        if after.flow and (after.flow, after.step) != (before.flow, before.step):
            data["mv"] = [after.flow, before.step if before.flow == after.flow else "", after.step]
            if before.flow != after.flow:
                data["st"] = after.flow
        done = [module for module in after.modules_done if module not in before.modules_done]
        if done:
            data["done"] = done[0]
            if done[0] == before.flow and "mv" not in data and before.step:
                data["mv"] = [before.flow, before.step, ""]  # the end step: finishing closes the funnel
        answers = _quiz_answers(before, after) + _checkup_answers(before, after, course.checkup)
        if answers:
            data["ans"] = answers
        result = after.checkup.result
        if result is not None and len(after.checkup.history) > len(before.checkup.history):
            weakest = sorted(result.areas, key=lambda area: (result.areas[area], area))[:PLAN_AREAS]
            data["cu"] = {"p": result.percent, "lv": result.level, "ar": dict(result.areas), "plan": weakest,
                          "to": int(result.timed_out)}
        if after.opted_out != before.opted_out:
            data["oo"] = "out" if after.opted_out else "in"
        if len(data) == 6 and not event.kind.from_learner:
            return ""  # a clock event or a status that changed nothing analytics counts
        return dumps(data)

    def status(self, event: InboundEvent) -> str:
        """A delivery status worth keeping (a failure, or the pricing of a delivered message) as JSON, or ""."""
        if is_sandbox(event.learner_id):
            return ""
        pricing = event.pricing
        if event.status == "failed":
            kind = f"fail:{event.message_id}:{event.error_code}"
        elif pricing and event.status in ("delivered", "read"):
            kind = f"price:{event.message_id}"  # Meta charges a delivered template once: the first of the two
        else:
            return ""
        category, _, pricing_type = str(pricing).partition(":")
        data: dict[str, Any] = {"id": kind, "k": "status", "l": learner_ref(event.learner_id),
                                "ms": event.timestamp_ms, "ch": event.channel.name, "st": event.status,
                                "code": event.error_code, "cat": category, "pt": pricing_type}
        return dumps(data)


def send_event(lid: str, item: OutboxItem, *, ok: bool, code: int, now_ms: int) -> str:
    """One outbox item sent (``ok``) or dropped for good, with Meta's error code."""
    template = item.body.get("template") if isinstance(item.body, dict) else None
    name = template.get("name", "") if isinstance(template, dict) else ""
    data: dict[str, Any] = {"id": f"send:{item.id}", "k": "send", "l": learner_ref(lid), "ms": now_ms,
                            "ch": item.channel, "ok": int(ok), "code": code, "pro": item.proactive,
                            "win": ("template" if name else "window") if item.proactive else "",
                            "tpl": str(name)}
    return dumps(data)


def _quiz_answers(before: Progress, after: Progress) -> list[list[Any]]:
    out: list[list[Any]] = []
    for module, marks in after.marks.items():
        earlier = before.marks.get(module, {})
        for step, mark in marks.items():
            if earlier.get(step) == mark or len(mark) < 2:
                continue
            points, out_of = mark[0], mark[1]
            option = after.answers.get(module, {}).get(step, "")
            out.append([quiz_test(module), step, option, round(points / out_of, 4) if out_of else 0.0])
    return out


def _checkup_answers(before: Progress, after: Progress, checkup: CheckUp | None) -> list[list[Any]]:
    if checkup is None:
        return []
    same_attempt = before.checkup.attempt == after.checkup.attempt
    earlier = before.checkup.answers if same_attempt else {}
    questions = {question.id: question for question in checkup.questions}
    out: list[list[Any]] = []
    for question_id, option_id in after.checkup.answers.items():
        question = questions.get(question_id)
        if question is None or earlier.get(question_id) == option_id:
            continue
        option = next((o for o in question.options if o.id == option_id), None)
        if option is None or option.not_applicable or not question.max_points:
            continue  # "Non mi serve" leaves the question out of the learner's score: out of the analysis too
        out.append([CHECKUP_TEST, question_id, option_id, round(option.points / question.max_points, 4)])
    return out


def _first_touch(progress: Progress) -> tuple[str, str]:
    """(source, campaign) of the learner's first entry link, QR code or ad (``progress.entry.first``, written by
    the entry-links feature when it is there): the link's channel of arrival (``via``) or its ``ref``."""
    first = getattr(getattr(progress, "entry", None), "first", None)
    if first is None:
        return "", ""
    return _text(getattr(first, "via", "")) or _text(getattr(first, "ref", "")), _text(getattr(first, "campaign", ""))


def _text(value: object) -> str:
    return value[:64] if isinstance(value, str) else ""
