"""The set-up the Procfile broadcast tests share (``test_broadcasts_procfile``,
``test_console_broadcasts_procfile``): the service running on a shared clock inside the sending hours,
WhatsApp learners who have chatted and one of them who wrote ``stop``, and what the fake Graph API got.
"""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from bot.channels.whatsapp import WHATSAPP
from tests.service import Phone, Service

ROME = zoneinfo.ZoneInfo("Europe/Rome")  # DEFAULT_TIME_ZONE


@contextmanager
def running_tomorrow_at_ten(service: Service) -> Iterator[Service]:
    """``service`` started with its shared clock at 10:00 Rome time tomorrow, outside QUIET_HOURS (21:00-08:00),
    and closed on leaving."""
    with service:
        day = (datetime.now(ROME) + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
        service.set_clock(int(day.timestamp() * 1000))
        yield service


def learners_with_one_stopped(service: Service, users_prefix: str, count: int) -> list[Phone]:
    """``count`` WhatsApp learners (``users_prefix`` + 4 digits) who each said hello and got their answer; the
    last one then wrote ``stop`` and confirmed it (the opt-out's commit may trail its reply by a moment)."""
    phones = [Phone(service, WHATSAPP, f"{users_prefix}{n:04d}") for n in range(count)]
    for phone in phones:
        phone.send("ciao")
    for phone in phones:
        phone.wait_turn(timeout=120)
    stopper = phones[-1]
    stopper.send("stop")
    stopper.wait_turn()
    stopper.send("1")  # yes, stop
    return phones


def messages_per_user(service: Service, text: str) -> dict[str, int]:
    """How many messages containing ``text`` the fake Graph API was asked to send to each user."""
    counts: dict[str, int] = {}
    for call in service.graph.calls():
        if text in json.dumps(call["body"], ensure_ascii=False):
            user = str(call["body"].get("to")).lstrip("+")
            counts[user] = counts.get(user, 0) + 1
    return counts
