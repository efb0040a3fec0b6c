"""Start codes: what an entry link (wa.me text, m.me / ig.me ``ref``, a QR code) asks Bottega to start. No I/O.

A start code names a target and, optionally, the campaign it was printed for::

    bt-m-m1_contatto--vetrina      module m1_contatto, campaign "vetrina" (the shop's counter)
    bt-checkup--slide              the digital check-up, campaign "slide"
    bt-event-od_2026_12            an Open Day's RSVP (event od_2026_12), no campaign
    bt-menu                        the course menu

Only characters an ``m.me``/``ig.me`` ``ref`` carries are used (letters, digits, ``-``, ``_``), so the same
code goes in every link and survives being typed. ``--`` separates the campaign; a target id may not
contain it. The kinds are a closed table (``KINDS``); what each starts is the engine's business
(``bot.tutor.entry``), so a new kind is one line here and one there.

On WhatsApp the code travels inside the prefilled text ("Ciao Bottega! Codice bt-m-m1_contatto--vetrina"),
so ``find_in_text`` looks for it anywhere in a message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "bt-"
CAMPAIGN_SEPARATOR = "--"
KINDS = ("m", "checkup", "event", "menu")  # kinds whose target needs no id: checkup, menu
_NEEDS_ID = frozenset({"m", "event"})
_ID = re.compile(r"[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*")  # no "--", no leading or trailing "-"
_CAMPAIGN = re.compile(r"[a-z0-9_]+(?:-[a-z0-9_]+)*")
CAMPAIGN_MAX = 40
CODE_MAX = 200  # an m.me ref may be longer; a typed code should not
_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_-])bt-[A-Za-z0-9_-]{1,200}", re.IGNORECASE)


class StartCodeError(ValueError):
    """A start code (or its parts) that does not follow the grammar; the message says what was expected."""


@dataclass(frozen=True, kw_only=True, slots=True)
class StartCode:
    kind: str  # one of KINDS
    target: str = ""  # the module or event id ("" for checkup and menu)
    campaign: str = ""  # the source tag printed on the link ("" = none)

    @property
    def code(self) -> str:
        text = f"{PREFIX}{self.kind}" + (f"-{self.target}" if self.target else "")
        return text + (f"{CAMPAIGN_SEPARATOR}{self.campaign}" if self.campaign else "")

    @property
    def target_name(self) -> str:
        """``m:m1_contatto``, ``checkup``, ``event:od_2026_12``: how the CLI and the records name it."""
        return f"{self.kind}:{self.target}" if self.target else self.kind


def make(target: str, campaign: str = "") -> StartCode:
    """The start code for a target as the CLI takes it (``m1_contatto``, ``m:m1_contatto``, ``checkup``,
    ``event:ID``, ``menu``) and an optional campaign tag; raises ``StartCodeError`` saying what is wrong."""
    kind, _, target_id = target.partition(":")
    if kind not in KINDS:  # a bare module id
        kind, target_id = "m", target
    campaign = campaign.strip().lower()
    if kind in _NEEDS_ID and not _ID.fullmatch(target_id):
        raise StartCodeError(f"target {target!r}: expected {kind}:ID with letters, digits, '_' and single '-'")
    if kind not in _NEEDS_ID and target_id:
        raise StartCodeError(f"target {target!r}: {kind} takes no id")
    if campaign and (not _CAMPAIGN.fullmatch(campaign) or len(campaign) > CAMPAIGN_MAX):
        raise StartCodeError(f"campaign {campaign!r}: expected up to {CAMPAIGN_MAX} lowercase letters, digits, "
                             "'_' and single '-' (e.g. vetrina, openday-dicembre)")
    start = StartCode(kind=kind, target=target_id, campaign=campaign)
    if len(start.code) > CODE_MAX:
        raise StartCodeError(f"start code longer than {CODE_MAX} characters: shorten the id or the campaign")
    return start


def parse(code: str) -> StartCode | None:
    """The start code ``code`` is (case of the prefix ignored), or None when it is not one."""
    if code[:len(PREFIX)].lower() != PREFIX or len(code) > CODE_MAX:
        return None
    body, _, campaign = code[len(PREFIX):].partition(CAMPAIGN_SEPARATOR)
    kind, _, target = body.partition("-")
    kind = kind.lower()
    if kind not in KINDS or (kind in _NEEDS_ID) != bool(target):
        return None
    if target and not _ID.fullmatch(target):
        return None
    campaign = campaign.lower()
    if campaign and (not _CAMPAIGN.fullmatch(campaign) or len(campaign) > CAMPAIGN_MAX):
        campaign = ""  # a mangled tag does not lose the target
    return StartCode(kind=kind, target=target, campaign=campaign)


def find_in_text(text: str) -> StartCode | None:
    """The first start code written anywhere in ``text`` (a WhatsApp prefilled message), or None."""
    for match in _IN_TEXT.finditer(text):
        start = parse(match.group(0).rstrip("-"))
        if start is not None:
            return start
    return None
