"""The walk every Meta webhook body shares: ``entry[]`` in payload order into events and skip notes. No I/O.

Each channel's parser reads one entry its own way (``read_entry``); this module holds what they all do
around it: refuse a body without an ``entry`` list with a note, read every entry (an entry that is not
an object reads as ``{}``), and prefix every note with the channel's name ("whatsapp: ...").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.channels.raw import mapping
from bot.model.events import Channel, InboundEvent


class UnreadableItem(Exception):
    """An item (a message, a status) that cannot be read; the text is the (data-free) note."""


@dataclass
class Batch:
    """What one webhook body gave so far: its events, and the notes about the parts it skipped."""

    channel: Channel
    events: list[InboundEvent] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def skip(self, note: str) -> None:
        self.skipped.append(f"{self.channel.name}: {note}")


def read_entries(payload: dict[str, Any], channel: Channel,
                 read_entry: Callable[[dict[str, Any], Batch], None]) -> tuple[list[InboundEvent], list[str]]:
    """Events and skip notes for one webhook body, each ``entry[]`` read by ``read_entry`` in order."""
    batch = Batch(channel)
    entries = payload.get("entry")
    if not isinstance(entries, list):
        batch.skip("payload without an entry list skipped")
        return batch.events, batch.skipped
    for entry in entries:
        read_entry(mapping(entry), batch)
    return batch.events, batch.skipped
