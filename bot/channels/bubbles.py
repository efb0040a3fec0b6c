"""What one sent body looks like on the phone, in more detail than ``Shown``: for the browser simulator. No I/O.

``Shown`` (``body_checks``) is the text and the options, enough for the terminal and the golden transcripts.
A ``Bubble`` also says *how* the options are offered — reply buttons under the bubble, a list behind a
button that opens a sheet, quick replies above the composer, a button template — and what else a phone
shows: media and documents (the certificate), template messages, the read receipt that turns a learner's
ticks blue, a sender action. Each channel reads its own bodies into bubbles (``display.bubble``) and
says how a tap on each choice comes back (``Choice.tap``, read by that channel's ``dev.tap_choice``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class BubbleKind(str, Enum):
    TEXT = "text"  # text, with its choices if any
    MEDIA = "media"  # an image, video or audio (``media_kind``), with its caption
    DOCUMENT = "document"  # a file to open: the certificate
    TEMPLATE = "template"  # an approved template message (WhatsApp), outside the 24-hour window
    RECEIPT = "receipt"  # marks the learner's message ``read_message_id`` read (nothing new on screen)
    ACTION = "action"  # a sender action (typing, seen) that names no message
    UNKNOWN = "unknown"  # a body this channel does not know how to show


class ChoiceStyle(str, Enum):
    NONE = ""
    BUTTONS = "buttons"  # reply buttons under the bubble (WhatsApp interactive button, template quick replies)
    LIST = "list"  # a button under the bubble that opens a sheet of rows (WhatsApp interactive list)
    QUICK_REPLIES = "quick_replies"  # chips above the composer, tappable only under the latest message
    BUTTON_TEMPLATE = "button_template"  # a card with up to three buttons (Messenger button template)


@dataclass(frozen=True, kw_only=True, slots=True)
class Choice:
    """One thing to tap. ``tap`` is the channel's own word for how the tap comes back (its ``dev.tap_choice``
    reads it); ``""`` when tapping sends nothing back, e.g. a link button (``url``)."""

    id: str
    title: str
    description: str = ""
    tap: str = ""
    url: str = ""
    section: str = ""  # a list row's section title


@dataclass(frozen=True, kw_only=True, slots=True)
class Bubble:
    kind: BubbleKind
    text: str = ""
    header: str = ""
    footer: str = ""
    style: ChoiceStyle = ChoiceStyle.NONE
    choices: tuple[Choice, ...] = ()
    list_label: str = ""  # LIST: the label of the button that opens the sheet
    media_kind: str = ""  # MEDIA, DOCUMENT: image | video | audio | document | file
    url: str = ""  # MEDIA, DOCUMENT: where it is
    filename: str = ""  # DOCUMENT: the name the phone shows
    template: str = ""  # TEMPLATE: its name (and language, after a slash)
    read_message_id: str = ""  # RECEIPT: the learner's message it marks read
    action: str = ""  # ACTION: typing_on, mark_seen...

    @property
    def visible(self) -> bool:
        """Whether it is a message on screen (receipts and sender actions are not)."""
        return self.kind not in (BubbleKind.RECEIPT, BubbleKind.ACTION)
