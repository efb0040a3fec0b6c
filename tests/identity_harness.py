"""Phones of one person on several channels, on the real dispatcher and a real Redis (no Graph API).

Each message goes through ``Dispatcher.handle`` exactly as a webhook's event would; what Bottega says is
read back from the outboxes it notified, and shown on the phone it is addressed to.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

import redis

from bot import channels, composition
from bot.channels.body_checks import Shown
from bot.dispatch import Dispatcher
from bot.model.events import Channel, EventKind, InboundEvent
from bot.privacy import erase_learner
from bot.privacy.chat import store_export
from bot.storage.keys import LearnerPart, learner_key
from bot.storage.outbox_item import OutboxItem
from bot.storage.releases import FixedRegistry
from bot.tutor.engine import Engine
from bot.tutor.progress import Progress
from config.settings import Settings

BASE_URL = "https://bottega.test"
CODE = re.compile(r"\*([A-Z0-9]{4}-[A-Z0-9]{4})\*")


@dataclass
class World:
    client: redis.Redis
    settings: Settings
    course: object
    notified: list[str] = field(default_factory=list)
    phones: list[Phone] = field(default_factory=list)

    def __post_init__(self) -> None:
        engine = Engine(self.course, policy=composition.proactive_policy(self.settings),  # type: ignore[arg-type]
                        public_base_url=BASE_URL)
        self.dispatcher: Dispatcher = composition.dispatcher(
            self.settings, self.client, FixedRegistry(engine), notify=self.notified.append,
            exports=lambda lid, token: store_export(self.client, lid, token), erase=self.erase)
        self.erased: list[str] = []

    def erase(self, learner_id: str) -> None:
        self.deliver()  # the goodbye first, as the worker's job does
        erase_learner(self.client, learner_id)
        self.erased.append(learner_id)

    def phone(self, channel: Channel, user: str) -> Phone:
        phone = Phone(self, channel, user)
        self.phones.append(phone)
        return phone

    def now_ms(self) -> int:
        return self.dispatcher.clock()

    def deliver(self) -> None:
        """Pop every notified outbox and show each message on the phone it is addressed to."""
        while self.notified:
            address = self.notified.pop(0)
            key = learner_key(address, LearnerPart.OUTBOX)
            while (raw := self.client.lpop(key)) is not None:
                item = OutboxItem.from_json(raw)
                assert item is not None
                for phone in self.phones:
                    if phone.channel.name == item.channel and phone.parts.dev.addressed_to(item.body, phone.user):
                        phone.receive(channels.describe(item.channel, item.body))

    def progress(self, learner_id: str) -> Progress | None:
        return Progress.from_hash(self.client.hgetall(learner_key(learner_id, LearnerPart.PROGRESS)))


@dataclass
class Phone:
    world: World
    channel: Channel
    user: str
    shown: list[Shown] = field(default_factory=list)
    options: tuple[tuple[str, str], ...] = ()

    @property
    def parts(self):
        return channels.parts_for(self.channel)

    @property
    def learner_id(self) -> str:
        return f"{self.channel.prefix}:{self.user}"

    def receive(self, shown: Shown) -> None:
        self.shown.append(shown)
        if shown.options:
            self.options = shown.options

    def event(self, kind: EventKind, *, text: str = "", payload: str = "", message_id: str = "") -> InboundEvent:
        phone = self.parts.dev.phone_of(self.user)
        return InboundEvent(channel=self.channel, kind=kind, user_id=self.user,
                            reply_from=self.parts.dev.reply_from(self.world.settings),
                            message_id=message_id or f"m.{uuid.uuid4().hex}", timestamp_ms=self.world.now_ms(),
                            phone=phone, text=text, payload=payload)

    def send(self, text: str) -> None:
        self.world.dispatcher.handle(self.event(EventKind.TEXT, text=text))
        self.world.deliver()

    def tap(self, title_start: str) -> None:
        for option_id, title in self.options:
            if title.startswith(title_start):
                self.world.dispatcher.handle(self.event(EventKind.CHOICE, text=title, payload=option_id))
                self.world.deliver()
                return
        raise AssertionError(f"no option {title_start!r} in {self.options}")

    def texts(self) -> list[str]:
        return [shown.text for shown in self.shown]

    def last_code(self) -> str:
        for text in reversed(self.texts()):
            if match := CODE.search(text):
                return match.group(1)
        raise AssertionError("no link code was shown")


def finish_module_1(phone: Phone, course) -> None:
    """Onboard in Italian and tap through module 1 with the right answers."""
    flow = course.flows["m1_contatto"]
    phone.send("ciao")
    phone.tap("Italiano")
    phone.tap("Panificio")
    phone.tap(flow.short_title.get("it")[:10])
    step = flow.steps[flow.start]
    while not step.end:
        if step.quiz:
            phone.tap(step.quiz.correct_option.label.get("it"))
            step = flow.steps[step.next]
        else:
            phone.tap(step.choices[0].label.get("it"))
            step = flow.steps[step.choices[0].next]
