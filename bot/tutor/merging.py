"""Two records of one person become one when they link their channels; one splits again on ``scollega``. No I/O.

The merge rules (issue 12 §1), applied by ``merge(into, other, conversation)``:

* modules completed: the union;
* the module in progress: the more advanced one (more answers given in it; a tie: the record used last),
  with its step, its review queue and whether it is being revisited;
* module scores: the better one per module, with its marks; answers: kept from both (for analytics),
  the better-scored side's answer winning where both answered the same step;
* the check-up: the best finished attempt is the result; every finished attempt stays in the history; a
  running attempt keeps running;
* language and reminders: the most recent choice (``lang_chosen_at_ms``, ``reminders_chosen_at_ms``);
* consent and notices shown: both histories, in time order; the latest consent entry decides the opt-out;
* the certificate: an issued one wins; the business kind, the name, the variables: the survivor's first.

``into`` is the record that survives (the learner who asked for the code), ``other`` the one that joins (or
None: a channel that never wrote before the code). ``split`` is the reverse of linking one channel: both
conversations go on with the progress as it is at that moment.
"""

from __future__ import annotations

from bot.tutor import conversations
from bot.tutor.progress import Pending, Progress
from bot.tutor.progress_parts import ChannelConversation, CheckupAttempt, CheckupResult


def merge(into: Progress, other: Progress | None, conversation: ChannelConversation) -> Progress:
    """``into`` with ``other``'s progress and ``conversation`` (the joining channel) linked to it."""
    linked = (*(c for c in into.conversations if c.channel != conversation.channel), conversation)
    if other is None:
        return into.with_changes(conversations=linked)
    scores, marks, answers = _modules(into, other)
    ahead = into if _advancement(into) >= _advancement(other) else other
    lang_side = into if into.lang_chosen_at_ms >= other.lang_chosen_at_ms else other
    reminders_side = into if into.reminders_chosen_at_ms >= other.reminders_chosen_at_ms else other
    consent = tuple(sorted((*into.consent, *other.consent), key=lambda entry: entry.at_ms))
    opted_out = consent[-1].state == "opted_out" if consent else into.opted_out or other.opted_out
    certificate = into.certificate if into.certificate.code or not other.certificate.code else other.certificate
    if not certificate.code and not certificate.name:
        certificate = other.certificate
    proactive = into.proactive if into.proactive.optin_token or not other.proactive.optin_token else other.proactive
    return into.with_changes(
        modules_done=list(dict.fromkeys([*into.modules_done, *other.modules_done])),
        module_scores=scores, marks=marks, answers=answers,
        flow=ahead.flow, flow_version=ahead.flow_version, step=ahead.step, revisiting=ahead.revisiting,
        review=ahead.review, pending=Pending.NONE, menu_page=0,
        checkup=_checkup(into.checkup, other.checkup),
        lang=lang_side.lang, lang_chosen=into.lang_chosen or other.lang_chosen,
        lang_chosen_at_ms=lang_side.lang_chosen_at_ms,
        reminders=reminders_side.reminders, reminders_chosen_at_ms=reminders_side.reminders_chosen_at_ms,
        consent=consent, opted_out=opted_out,
        opted_out_at_ms=max(into.opted_out_at_ms, other.opted_out_at_ms) if opted_out else into.opted_out_at_ms,
        notices=tuple(sorted((*into.notices, *other.notices), key=lambda notice: notice.at_ms)),
        certificate=certificate, proactive=proactive,
        business=into.business or other.business, name=into.name or other.name,
        variables={**other.variables, **into.variables},
        created_at_ms=min(t for t in (into.created_at_ms, other.created_at_ms) if t) if (
            into.created_at_ms or other.created_at_ms) else 0,
        seen_ms=max(into.seen_ms, other.seen_ms), conversations=linked)


def split(progress: Progress, channel: str) -> tuple[Progress, Progress] | None:
    """Unlink ``channel``: (the record without it, a record of its own for it), both with today's progress.

    None when ``channel`` is not a linked conversation of this record (its own channel stays with it).
    """
    if channel == progress.channel and progress.via:
        progress = conversations.make_current(progress, progress.conversations[0])
    leaving = next((c for c in progress.conversations if c.channel == channel), None)
    if leaving is None:
        return None
    kept = progress.with_changes(conversations=tuple(c for c in progress.conversations if c.channel != channel),
                                 pending=Pending.NONE)
    own = progress.with_changes(learner_id=leaving.learner_id, channel=leaving.channel, via="",
                                user_id=leaving.user_id, phone=leaving.phone, bsuid=leaving.bsuid,
                                reply_from=leaving.reply_from, last_inbound_at_ms=leaving.last_inbound_at_ms,
                                conversations=(), pending=Pending.NONE, rev=0)
    return kept, own


def _advancement(progress: Progress) -> tuple[int, int]:
    """How far along the module in progress is (answers given in it), then how recent the record is."""
    if not progress.flow:
        return (-1, progress.updated_at_ms)
    return (len(progress.answers.get(progress.flow, {})) + (1 if progress.step else 0), progress.updated_at_ms)


def _modules(into: Progress, other: Progress) -> tuple[dict[str, list[int]], dict[str, dict[str, list[int]]],
                                                        dict[str, dict[str, str]]]:
    scores: dict[str, list[int]] = {}
    marks: dict[str, dict[str, list[int]]] = {}
    answers: dict[str, dict[str, str]] = {}
    flows = dict.fromkeys([*into.module_scores, *into.answers, *into.marks,
                           *other.module_scores, *other.answers, *other.marks])
    for flow in flows:
        mine, theirs = into.module_scores.get(flow, [0, 0]), other.module_scores.get(flow, [0, 0])
        if (theirs[0], len(other.answers.get(flow, {}))) > (mine[0], len(into.answers.get(flow, {}))):
            better, worse = other, into
        else:
            better, worse = into, other
        if flow in better.module_scores or flow in worse.module_scores:
            scores[flow] = list(better.module_scores.get(flow) or worse.module_scores[flow])
        if flow in better.marks or flow in worse.marks:
            marks[flow] = dict(better.marks.get(flow) or worse.marks[flow])
        merged = {**worse.answers.get(flow, {}), **better.answers.get(flow, {})}
        if merged:
            answers[flow] = merged
    return scores, marks, answers


def _checkup(mine: CheckupAttempt, theirs: CheckupAttempt) -> CheckupAttempt:
    history = sorted({(r.finished_ms, r.percent, r.level): r for r in (*mine.history, *theirs.history)}.values(),
                     key=lambda result: result.finished_ms)
    results = [r for r in (mine.result, theirs.result) if r is not None]
    best: CheckupResult | None = max(results, key=lambda r: (r.percent, r.finished_ms)) if results else None
    base = theirs if theirs.running and not mine.running else mine
    attempt = base.attempt if base.running else max(mine.attempt, theirs.attempt)
    return base.with_changes(result=best, history=tuple(history), attempt=attempt,
                             finished_ms=max(mine.finished_ms, theirs.finished_ms))
