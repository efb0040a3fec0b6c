"""Linking a learner's channels: the words, the one-time code, and what the learner is told. No I/O.

``collega``/``link`` on one channel gives a code (``new_code``: 8 characters from a 31-symbol alphabet
without look-alikes, ~40 random bits, from ``secrets``) and a deep link that carries it; the dispatcher
stores it for 10 minutes (``bot.storage.links``) before the reply leaves. Sent from another channel
(typed, with or without ``collega`` in front, or as a deep link's prefilled text / ``ref``), the code
links that channel to the learner who asked for it: the dispatcher redeems it and merges the two records
(``bot.tutor.merging``, atomically: ``bot.storage.links``), then the engine tells both chats
(``LinkNews``). ``scollega``/``unlink`` (confirmed) splits the linked channels apart again.
"""

from __future__ import annotations

import re
import secrets
from enum import Enum

from bot import channels
from bot.model.replies import Option
from bot.tutor import conversations
from bot.tutor.progress import Pending
from bot.tutor.turn import Turn
from bot.tutor.typed_text import normalise

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud and typed on a phone
CODE_LENGTH = 8  # 31^8 ~ 2^39.6: with 5 tries per id per 10 minutes, guessing a live code is hopeless
CODE_TTL_MS = 10 * 60_000
LINK_WORDS = ("collega", "link")
REF_PREFIX = "link."  # a deep link's ref / payload: "link.K7M4Q9XR"
_CODE = re.compile(f"[{ALPHABET}]{{{CODE_LENGTH}}}")


class LinkNews(str, Enum):
    """What came of a code sent from another channel (the dispatcher tells the engine)."""

    LINKED = "linked"  # the two channels now share one progress
    INVALID = "invalid"  # wrong, expired or used already
    TOO_MANY = "too_many"  # too many wrong codes from this id: wait
    SAME = "same"  # the code was asked for on this very learner (or channel is linked already)
    BUSY = "busy"  # one of the two is already linked to a channel of that kind, or a merge is running


def new_code() -> str:
    """A fresh code, always with a digit: typed bare (even split by a space) it cannot pass for a word
    (``code_in``). Drawing again when there is none keeps 39.5 of the 39.6 bits."""
    while True:
        code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        if any(ch.isdigit() for ch in code):
            return code


def shown(code: str) -> str:
    """``K7M4Q9XR`` -> ``K7M4-Q9XR``."""
    return f"{code[:4]}-{code[4:]}"


def code_in(text: str, payload: str = "") -> str:
    """The link code a message carries ("collega K7M4-Q9XR", "k7m4q9xr", a ``link.`` payload), or ""."""
    if payload.startswith(REF_PREFIX):
        text = payload.removeprefix(REF_PREFIX)
        prefixed = True
    else:
        prefixed = False
    words = text.strip().split()
    if len(words) > 1 and normalise(words[0]) in LINK_WORDS:
        words, prefixed = words[1:], True
    joined = "".join(words)
    candidate = joined.replace("-", "").upper()
    if not _CODE.fullmatch(candidate):
        return ""
    # bare, it must look like a code (its dash, or a digit): "perfetta" typed in a lesson is a word
    return candidate if prefixed or "-" in joined or any(ch.isdigit() for ch in candidate) else ""


def offer(turn: Turn, *, typed: bool) -> None:
    """``collega``: a fresh code for this learner, and how to use it."""
    code = new_code()
    turn.link_code = code
    url = f"{turn.source.public_base_url.rstrip('/')}/link/{code}" if turn.source.public_base_url else ""
    turn.say(turn.text("link_offer", code=shown(code), minutes=CODE_TTL_MS // 60_000, url=url))
    turn.prompt()


def unlink(turn: Turn, *, typed: bool) -> None:
    """``scollega``: split the linked channels apart again, after a yes."""
    if not conversations.linked(turn.progress):
        turn.say(turn.text("unlink_nothing"), ephemeral=True)
        turn.prompt()
        return
    turn.progress = turn.progress.with_changes(pending=Pending.CONFIRM_UNLINK)
    turn.prompt()


def unlink_options(turn: Turn) -> list[Option]:
    return [Option(id="sys:yes", title=turn.text("label_yes")), Option(id="sys:no", title=turn.text("label_no"))]


def confirm_unlink(turn: Turn, yes: bool) -> None:
    if not yes or not conversations.linked(turn.progress):
        turn.say(turn.text("unlink_cancelled"))
        turn.prompt()
        return
    names = ", ".join(_title(c.channel) for c in conversations.every(turn.progress))
    for conversation in turn.progress.conversations:
        turn.say_in(conversation.channel, turn.text("unlinked", channels=names))
    turn.unlink = True
    turn.say(turn.text("unlinked", channels=names))
    turn.prompt()


def news(turn: Turn, what: LinkNews, *, joined: str = "") -> None:
    """Tell the learner what came of the code they sent; on success, the other chat hears it too."""
    if what is LinkNews.LINKED:
        names = ", ".join(_title(c.channel) for c in conversations.every(turn.progress))
        for conversation in turn.progress.conversations:
            turn.say_in(conversation.channel, turn.text("linked", channels=names))
        turn.say(turn.text("linked", channels=names))
        turn.prompt()
    else:
        turn.say(turn.text(f"link_{what.value}"), ephemeral=True)
        if not turn.progress.is_new:
            turn.prompt()


def is_link_word(text: str) -> bool:
    return normalise(text) in LINK_WORDS


def _title(channel: str) -> str:
    return channels.parts_for(channel).title
