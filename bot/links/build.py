"""The entry links of a start code, one per channel with a configured account. No network, no Redis.

The WhatsApp link's prefilled text is the course's ``entry_link_text`` (Italian or English) around the code;
Messenger and Instagram carry the code as ``ref``. A channel without its account set is listed as missing
(with the variable that sets it), never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot import channels
from bot.flows.spec import Course
from bot.model.start_codes import StartCode, StartCodeError


@dataclass(frozen=True, kw_only=True, slots=True)
class EntryLinkOut:
    channel: str
    url: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Missing:
    channel: str
    variable: str  # the environment variable that names the account


def check_target(start: StartCode, course: Course) -> None:
    """Refuse a module the course does not have, an Open Day not in ``events.yaml``, or a check-up it does not
    offer."""
    if start.kind == "m" and start.target not in course.flows:
        raise StartCodeError(f"module {start.target!r} is not in the course; modules: {', '.join(course.modules)}")
    if start.kind == "event" and course.open_day(start.target) is None:
        raise StartCodeError(f"Open Day {start.target!r} is not in flows/events.yaml (`bottega events list`)")
    if start.kind == "checkup" and course.checkup is None:
        raise StartCodeError("the course has no check-up (flows/checkup.yaml)")


def entry_links(start: StartCode, course: Course, accounts: dict[str, str], *, lang: str = "it",
                only: str = "") -> tuple[list[EntryLinkOut], list[Missing]]:
    """The links for ``start`` on every channel (or ``only`` that one); ``accounts``: channel -> its account."""
    found: list[EntryLinkOut] = []
    missing: list[Missing] = []
    text = course.text("entry_link_text", lang).format(code=start.code) if lang else start.code
    if start.code not in text:  # a text without {code} (or none at all): the code still travels
        text = f"{text} {start.code}".strip()
    for parts in channels.every():
        link = parts.entry_link
        if link is None or (only and parts.channel.name != only):
            continue
        account = accounts.get(parts.channel.name, "")
        if not account:
            missing.append(Missing(channel=parts.channel.name, variable=link.account_variable))
            continue
        try:
            url = link.build(account, start.code, text if link.carries_text else "")
        except ValueError as error:
            raise StartCodeError(f"{link.account_variable}: {error}") from None
        found.append(EntryLinkOut(channel=parts.channel.name, url=url))
    return found, missing
