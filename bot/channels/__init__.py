"""The channels Bottega speaks on, and the registry that maps each to its parts. No I/O.

Each channel is one folder here (``whatsapp/``, ``messenger/``, ``instagram/``): its parser, renderer, limits, the send
call's path and answer, and what the dev tools need to play a learner on it (``bot.channels.parts``).
What Messenger and Instagram Direct share (the Messenger Platform's webhook envelope and Send API shapes)
is written once in ``messaging_platform/``; what every parser shares, in ``raw`` and ``webhook_body``.
Everything else asks this registry — ``parts_for(channel)``, ``for_webhook_object(name)``,
``for_prefix(tag)``, ``every()`` — and never compares a channel to a constant. A new channel is a new
folder plus one line in ``_REGISTERED``.
"""

from __future__ import annotations

from typing import Any

from bot.channels import instagram, messenger, whatsapp
from bot.channels.body_checks import Shown
from bot.channels.parts import ChannelParts
from bot.model.errors import ChannelError
from bot.model.events import Channel

_REGISTERED: tuple[ChannelParts, ...] = (
    whatsapp.PARTS,
    messenger.PARTS,
    instagram.PARTS,
)
_BY_NAME = {parts.channel.name: parts for parts in _REGISTERED}
_BY_PREFIX = {parts.channel.prefix: parts for parts in _REGISTERED}
_BY_OBJECT = {parts.webhook_object: parts for parts in _REGISTERED}


class UnknownChannel(ChannelError, ValueError):
    """A channel name (or learner-id tag) no folder registered."""


def every() -> tuple[ChannelParts, ...]:
    """Every registered channel's parts, in registration order."""
    return _REGISTERED


def parts_for(channel: Channel | str) -> ChannelParts:
    """The parts of ``channel`` (a ``Channel`` or its name); ``UnknownChannel`` if none is registered."""
    name = channel.name if isinstance(channel, Channel) else channel
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownChannel(f"no channel named {name!r}; expected one of {sorted(_BY_NAME)}") from None


def named(name: str) -> Channel:
    return parts_for(name).channel


def for_prefix(prefix: str) -> ChannelParts:
    """The channel whose learner ids start ``<prefix>:``."""
    try:
        return _BY_PREFIX[prefix]
    except KeyError:
        raise UnknownChannel(f"no channel tags learner ids {prefix!r}; expected one of {sorted(_BY_PREFIX)}") \
            from None


def for_learner(learner_id: str) -> ChannelParts:
    return for_prefix(learner_id.partition(":")[0])


def for_webhook_object(webhook_object: str) -> ChannelParts | None:
    """The channel whose webhooks carry ``"object": webhook_object``, or None (not ours)."""
    return _BY_OBJECT.get(webhook_object)


def describe(channel: Channel | str, body: dict[str, Any]) -> Shown:
    """What one body sent on ``channel`` shows on the phone (the terminal chat, tests)."""
    return parts_for(channel).describe(body)


def check_limits(channel: Channel | str, body: dict[str, Any]) -> list[str]:
    """Every platform limit one body sent on ``channel`` breaks; ``[]`` if none."""
    return parts_for(channel).check_limits(body)
