"""A learner as the console shows them, and the changes an admin may make (reset a module).

Everything is read in one pipelined round trip. Phone numbers — the phone field and a WhatsApp learner id
made of one — are masked (``mask``) unless an owner asked to see them (audited by the page).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis

from bot.delivery.graph import advice
from bot.model.privacy import learner_ref
from bot.privacy.person import identify
from bot.storage.encoding import text
from bot.storage.keys import LearnerPart, certificate_learner_key, learner_key, learner_timer_index_key
from bot.storage.outbox_item import OutboxItem
from bot.storage.store import CommitResult, Store
from bot.tutor.progress import Pending, Progress

OUTBOX_SHOWN = 50
RESET_RETRIES = 5
_DIGITS = re.compile(r"\d{6,}")


def mask(value: str) -> str:
    """Every run of 6+ digits (a phone number) with all but its first 2 and last 2 digits hidden."""
    return _DIGITS.sub(lambda m: m.group()[:2] + "•" * (len(m.group()) - 4) + m.group()[-2:], value)


def when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC") if ms > 0 else "—"


@dataclass(frozen=True, kw_only=True, slots=True)
class Waiting:
    kind: str  # the Graph API body's type: text, interactive, template, document...
    summary: str
    created: str
    attempts: int
    last_error_code: int | None


@dataclass(frozen=True, kw_only=True)
class LearnerPage:
    learner_id: str
    ref: str
    link: str  # this page's URL key (bot.console.learner_links)
    shown_id: str  # masked unless revealed
    progress: Progress | None
    phone: str  # masked unless revealed
    aliases: tuple[str, ...]  # masked unless revealed
    timers: list[tuple[str, str]] = field(default_factory=list)  # (due, payload)
    outbox: list[Waiting] = field(default_factory=list)
    outbox_length: int = 0
    delivery: dict[str, str] = field(default_factory=dict)
    delivery_advice: str = ""
    seen_ids: int = 0
    in_timer_index: str = ""
    certificate_code: str = ""

    @property
    def modules(self) -> list[tuple[str, str, dict[str, str]]]:
        """(module, state, answers) for every module the learner touched."""
        if self.progress is None:
            return []
        p = self.progress
        touched = list(dict.fromkeys([*p.modules_done, *p.answers, *p.module_scores, *([p.flow] if p.flow else [])]))
        rows = []
        for module in touched:
            if module in p.modules_done:
                score = p.module_scores.get(module)
                state = f"completed ({score[0]}/{score[1]})" if score else "completed"
            elif module == p.flow:
                state = f"in progress: step {p.step} (version {p.flow_version})"
            else:
                state = "started"
            rows.append((module, state, p.answers.get(module, {})))
        return rows


def read(client: redis.Redis, learner_id: str, *, link: str, reveal: bool = False) -> LearnerPage:
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(learner_key(learner_id, LearnerPart.PROGRESS))
    pipe.zrange(learner_key(learner_id, LearnerPart.TIMERS), 0, -1, withscores=True)
    pipe.lrange(learner_key(learner_id, LearnerPart.OUTBOX), 0, OUTBOX_SHOWN - 1)
    pipe.llen(learner_key(learner_id, LearnerPart.OUTBOX))
    pipe.hgetall(learner_key(learner_id, LearnerPart.DELIVERY))
    pipe.zcard(learner_key(learner_id, LearnerPart.SEEN))
    pipe.zscore(learner_timer_index_key(learner_id), learner_id)
    pipe.get(certificate_learner_key(learner_id))
    raw, timers, outbox, length, delivery, seen, due, cert = pipe.execute()
    progress = Progress.from_hash(raw)
    shown = (lambda value: value) if reveal else mask
    facts = {text(k): text(v) for k, v in delivery.items()}
    facts = {name: when(int(value)) if name.endswith("_at_ms") and value.isdigit() else shown(value)
             for name, value in sorted(facts.items())}
    code = facts.get("last_error_code") or facts.get("last_status_error_code") or ""
    person = identify(client, learner_id, thorough=False)
    return LearnerPage(
        learner_id=learner_id, ref=learner_ref(learner_id), link=link, shown_id=shown(learner_id), progress=progress,
        phone=shown(progress.phone) if progress and progress.phone else "",
        aliases=tuple(shown(alias) for alias in person.aliases),
        timers=[(when(int(score)), text(member)) for member, score in timers],
        outbox=[_waiting(item) for item in outbox], outbox_length=int(length), delivery=facts,
        delivery_advice=advice(progress.channel, int(code)) if progress and code.lstrip("-").isdigit() else "",
        seen_ids=int(seen), in_timer_index=when(int(due)) if due is not None else "", certificate_code=text(cert))


def _waiting(raw: bytes) -> Waiting:
    item = OutboxItem.from_json(raw)
    if item is None:
        return Waiting(kind="unreadable", summary="", created="—", attempts=0, last_error_code=None)
    body = item.body
    kind = str(body.get("type") or ("message" if "message" in body else "?"))
    summary = json.dumps(body.get(kind) if kind in body else body.get("message", body), ensure_ascii=False)
    return Waiting(kind=kind, summary=mask(summary[:160]), created=when(item.created_ms), attempts=item.attempts,
                   last_error_code=item.last_error_code)


def reset_module(progress: Progress, module: str) -> Progress:
    """``progress`` with ``module`` as if never started: its answers, marks and score gone, not completed,
    and left if it is the module in progress (the learner lands on the menu at their next message)."""
    answers = {k: v for k, v in progress.answers.items() if k != module}
    scores = {k: v for k, v in progress.module_scores.items() if k != module}
    marks = {k: v for k, v in progress.marks.items() if k != module}
    done = [m for m in progress.modules_done if m != module]
    changes: dict[str, object] = {"answers": answers, "module_scores": scores, "marks": marks, "modules_done": done}
    if progress.flow == module:
        changes.update(flow="", flow_version=0, step="", pending=Pending.NONE, revisiting="")
    return progress.with_changes(**changes)


def reset(store: Store, learner_id: str, module: str, now_ms: int) -> bool:
    """Reset ``module`` for the learner through the store's atomic commit (retried when a turn races it)."""
    for _ in range(RESET_RETRIES):
        snapshot = store.load_one(learner_id, "")
        if snapshot.progress is None:
            return False
        changed = reset_module(snapshot.progress, module).with_changes(updated_at_ms=now_ms)
        committed = store.commit(changed, expected_rev=snapshot.progress.rev, message_id="", now_ms=now_ms,
                                 outbox_items=[])
        if committed.result is CommitResult.COMMITTED:
            return True
    return False
