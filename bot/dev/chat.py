"""``bottega chat``: a learner conversation in the terminal through the very same path as the webhook.

Each line typed becomes an ``InboundEvent`` handled by the real ``Dispatcher`` (Redis store, engine,
channel renderer, outbox). Instead of a worker sending the outbox to the Graph API, the chat takes
the rendered API bodies off the outbox and shows them as the phone would: text, then the buttons or
list rows as numbered choices, exactly as that channel limits them. Typing a number taps that choice
(a button payload, as on the phone); typing a label or any other text sends it as text.

Which course answers: ``live_engines`` serves the published live release through the same
``Registry`` as web and worker (every older module version a learner may be on, and a release
published mid-chat from the next message on); ``draft_engines`` serves the working folder, unpublished,
for trying edits first. Golden transcripts pass a ``course`` instead (they test the working folder).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

import redis

from bot import channels, composition
from bot.channels.body_checks import Shown
from bot.delivery import timers
from bot.dispatch import EngineSource
from bot.flows.loader import course_files, load_course
from bot.flows.spec import Course
from bot.model.events import Channel, EventKind, InboundEvent
from bot.privacy import erase_learner
from bot.privacy.chat import store_export
from bot.storage import releases
from bot.storage.encoding import text as as_text
from bot.storage.keys import LearnerPart, learner_key
from bot.storage.releases import FixedRegistry, Registry
from bot.tutor.engine import Engine
from bot.tutor.typed_text import option_number
from config.settings import Settings

# A draft chat moves its learner onto unpublished module versions: by default it is another learner
# (each channel's ``dev.draft_user``), so the one `bottega chat` resumes keeps the progress a real learner would have.


@dataclass(kw_only=True)
class Chat:
    client: redis.Redis
    settings: Settings
    channel: Channel
    user_id: str
    out: TextIO
    course: Course | None = None  # a fixed course (transcripts, tests); or
    engines: EngineSource | None = None  # where the engine comes from (``live_engines``, ``draft_engines``)
    source: str = ""  # what the banner says is answering, e.g. "the live course, release 3"
    shown_options: tuple[tuple[str, str], ...] = ()
    transcript: list[Shown] = field(default_factory=list)  # every message shown, in order
    clock_offset_ms: int = 0  # ``advance`` moves this conversation's clock forward (tests, transcripts)

    def __post_init__(self) -> None:
        engines = self.engines
        if engines is None:
            if self.course is None:
                raise TypeError("Chat needs a course or engines")
            engines = FixedRegistry(Engine(self.course, policy=composition.proactive_policy(self.settings)))
        self.dispatcher = composition.dispatcher(
            self.settings, self.client, engines, notify=self._show,
            exports=lambda lid, token: store_export(self.client, lid, token),
            erase=self._erase)

    def _erase(self, learner_id: str) -> None:
        erase_learner(self.client, learner_id)

    @property
    def reply_from(self) -> str:
        return channels.parts_for(self.channel).dev.reply_from(self.settings)

    def send_line(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        number = option_number(line)
        if 1 <= number <= len(self.shown_options):
            option_id, title = self.shown_options[number - 1]
            self.send(kind=EventKind.CHOICE, payload=option_id, text=title)
        else:
            self.send(kind=EventKind.TEXT, text=line)

    def send(self, *, kind: EventKind, text: str = "", payload: str = "") -> None:
        phone = channels.parts_for(self.channel).dev.phone_of(self.user_id)
        event = InboundEvent(channel=self.channel, kind=kind, user_id=self.user_id,
                             reply_from=self.reply_from, message_id=f"chat.{uuid.uuid4().hex}",
                             phone=phone, text=text, payload=payload)
        self.dispatcher.handle(event, now_ms=self.now_ms())
        self.fire_timers()

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass on this conversation's clock, firing the timers that fall due."""
        self.clock_offset_ms += int(seconds * 1000)
        self.fire_timers()

    def fire_timers(self) -> None:
        timers.sweep(self.client, self.dispatcher, self.now_ms())

    def _show(self, learner_id: str) -> None:
        key = learner_key(learner_id, LearnerPart.OUTBOX)
        self.client.delete(learner_key(learner_id, LearnerPart.RECEIPT))  # a blue tick: nothing to show
        while (raw := self.client.lpop(key)) is not None:
            item = json.loads(as_text(raw))
            shown = channels.parts_for(self.channel).describe(item["body"])
            if not shown.text and not shown.options:
                continue
            self.transcript.append(shown)
            self.out.write("\n" + _indent(shown.text) + "\n")
            if shown.options:
                self.shown_options = shown.options
                for number, (_, title) in enumerate(shown.options, start=1):
                    self.out.write(f"    [{number}] {title}\n")
        self.out.flush()


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else "" for line in text.splitlines())


def live_engines(client: redis.Redis, settings: Settings) -> tuple[Registry, str]:
    """The live release, as web and worker serve it, and a banner line saying so.

    Nothing published yet: the flows folder becomes the first release, as the web process would do
    on its first start (raises ``FlowError`` if the folder fails the check).
    """
    folder = settings.flows_dir
    files = course_files(folder)
    first = "" if releases.live_release(client) else releases.publish(client, files, folder=str(folder)).release
    registry = Registry.serving_live(client, public_base_url=settings.public_base_url,
                                     policy=composition.proactive_policy(settings))
    source = f"the live course, release {registry.release} (what learners get)"
    if first:
        source += f"; nothing was published yet, so {folder} was published as release {first}"
    elif releases.stored_release(client, registry.release) != files:
        source += (f"; {folder} has unpublished edits: 'bottega chat --draft' tries them, "
                   "'bottega flows diff' lists them")
    return registry, source


def draft_engines(client: redis.Redis, settings: Settings) -> tuple[FixedRegistry, str]:
    """The working folder, unpublished (raises ``FlowError``), with every published version a learner may be on."""
    folder = settings.flows_dir
    older = releases.published_flows(client)
    engine = Engine(load_course(folder), older=older.values(), public_base_url=settings.public_base_url,
                    policy=composition.proactive_policy(settings))
    live = releases.live_release(client)
    source = (f"DRAFT: the working folder {folder}, not published (learners get "
              + (f"release {live})" if live else "nothing yet)") + "; publish with 'bottega flows publish'")
    return FixedRegistry(engine), source


def run_chat(chat: Chat, read_line: Callable[[], str | None], *, lang: str | None) -> None:
    """Converse until end of input (Ctrl-D) or 'exit'; ``lang`` answers the language question first."""
    chat.out.write(f"Bottega chat — {chat.channel}, learner {chat.user_id}"
                   + (f" — {chat.source}" if chat.source else "") + ".\n"
                   "Type a number to tap a choice, any text to write, 'exit' to leave.\n")
    snapshot = chat.dispatcher.store.load(f"{chat.channel.prefix}:{chat.user_id}", "")
    if snapshot.progress is None:
        chat.send_line("ciao")
        if lang:
            chat.send(kind=EventKind.CHOICE, payload=f"sys:lang:{lang}")
    else:
        chat.send_line("riprendi" if snapshot.progress.lang == "it" else "resume")
    while True:
        line = read_line()
        if line is None or line.strip().lower() in ("exit", "quit"):
            break
        if sys.stdin.isatty() is False:
            chat.out.write(f"\n> {line.strip()}\n")
        chat.send_line(line)
