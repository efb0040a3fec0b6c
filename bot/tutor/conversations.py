"""One learner, several channels: which conversation a turn speaks in. No I/O.

A learner linked across channels (``bot.tutor.linking``) has one record (progress) and one conversation
per channel. The record's top-level fields (``channel``, ``via``, ``user_id``, ``phone``, ``bsuid``,
``reply_from``, ``last_inbound_at_ms``) are the conversation the learner wrote from last: replies go
there. The others wait in ``progress.conversations``, each with its own address and its own 24-hour
window. Each conversation also keeps its own dedup set and outbox in Redis (``bot.storage.keys.address``).

* ``switch_to``: a message from another linked channel makes that conversation the current one (the
  learner's reply goes where they just wrote).
* ``for_proactive``: a message Bottega starts goes where it is free (an open window, the current
  conversation first), else where the channel allows something outside it (a template, an opt-in token).
"""

from __future__ import annotations

from bot import channels
from bot.channels.parts import OutsideWindow
from bot.tutor.progress import Progress
from bot.tutor.progress_parts import ChannelConversation


def current(progress: Progress) -> ChannelConversation:
    """The conversation the learner wrote from last, as a ``ChannelConversation``."""
    return ChannelConversation(channel=progress.channel, learner_id=progress.via or progress.learner_id,
                               user_id=progress.user_id, phone=progress.phone, bsuid=progress.bsuid,
                               reply_from=progress.reply_from, last_inbound_at_ms=progress.last_inbound_at_ms)


def every(progress: Progress) -> tuple[ChannelConversation, ...]:
    """Every conversation of the learner, the current one first."""
    return (current(progress), *progress.conversations)


def channel_ids(progress: Progress) -> tuple[str, ...]:
    """Every id a channel knows this learner by (their own, and each linked channel's)."""
    ids = [progress.learner_id, *(c.learner_id for c in every(progress))]
    return tuple(dict.fromkeys(i for i in ids if i))


def linked(progress: Progress) -> bool:
    return bool(progress.conversations)


def make_current(progress: Progress, conversation: ChannelConversation) -> Progress:
    """``conversation`` becomes the current one; the current one waits with the others."""
    if conversation.channel == progress.channel:
        return progress
    others = tuple(c for c in progress.conversations if c.channel != conversation.channel)
    stashed = current(progress)
    via = "" if conversation.learner_id == progress.learner_id else conversation.learner_id
    return progress.with_changes(
        channel=conversation.channel, via=via, user_id=conversation.user_id, phone=conversation.phone,
        bsuid=conversation.bsuid, reply_from=conversation.reply_from,
        last_inbound_at_ms=conversation.last_inbound_at_ms, conversations=(*others, stashed))


def switch_to(progress: Progress, channel: str) -> Progress:
    """The learner wrote from ``channel``: its conversation becomes the current one (if it is linked)."""
    if channel == progress.channel:
        return progress
    for conversation in progress.conversations:
        if conversation.channel == channel:
            return make_current(progress, conversation)
    return progress


def window_open(conversation: ChannelConversation, now_ms: int, *, window_ms: int, margin_ms: int) -> bool:
    return bool(conversation.last_inbound_at_ms) and now_ms < conversation.last_inbound_at_ms + window_ms - margin_ms


def for_proactive(progress: Progress, now_ms: int, *, window_ms: int, margin_ms: int) -> Progress:
    """The conversation a message Bottega starts should go to: an open window first (free), the current
    conversation before the others; else the first whose channel allows a message outside the window
    (a template; an opt-in token the learner gave); else the current one (placement will say no)."""
    if not progress.conversations:
        return progress
    candidates = every(progress)
    for conversation in candidates:
        if window_open(conversation, now_ms, window_ms=window_ms, margin_ms=margin_ms):
            return make_current(progress, conversation)
    for conversation in candidates:
        outside = channels.parts_for(conversation.channel).outside_window
        if outside is OutsideWindow.TEMPLATE or (outside is OutsideWindow.OPT_IN_TOKEN
                                                 and progress.proactive.optin_token):
            return make_current(progress, conversation)
    return progress
