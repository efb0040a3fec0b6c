"""Issue 12 §2 on the real Procfile processes (gunicorn web + Dramatiq worker, fake Graph API): a handover
pauses the bot, an admin's reply from `bottega inbox` reaches the learner at the fake Graph API, and
`riprendi` resumes exactly where they were. On both engines: one Redis server with Dramatiq's Redis broker, and a
Redis Cluster (3 primaries + 3 replicas) with RabbitMQ, where `bottega inbox` connects as an admin's would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.channels import describe
from bot.channels.messenger import MESSENGER
from bot.channels.whatsapp import WHATSAPP
from bot.model.events import Channel
from bot.storage.keys import LearnerPart, learner_key
from bot.tutor.progress import Progress
from tests.cluster import ENGINES, engine_cluster
from tests.service import Phone, Service

pytestmark = pytest.mark.procfile


@pytest.fixture(params=ENGINES)
def service(request, tmp_path: Path) -> Iterator[Service]:
    """On both engines: one Redis server with Dramatiq's Redis broker, a Redis Cluster with RabbitMQ."""
    cluster = engine_cluster(request)
    running = Service(tmp_path, cluster=cluster, extra_env={"HANDOVER_ANSWER_HOURS": "4"})
    try:
        running.start()
        yield running
    finally:
        running.close()


def stored(service: Service, phone: Phone) -> Progress:
    client = service.redis_client()
    try:
        progress = Progress.from_hash(client.hgetall(learner_key(f"{phone.channel.prefix}:{phone.user}",
                                                                 LearnerPart.PROGRESS)))
    finally:
        client.close()
    assert progress is not None
    return progress


def texts(phone: Phone) -> list[str]:
    return [shown.text for shown in (describe(phone.channel, c["body"]) for c in phone.calls()) if shown.text]


def inbox(service: Service, *args: str) -> subprocess.CompletedProcess[str]:
    """`bottega inbox ...` as an admin types it, against the running service's Redis."""
    bottega = Path(sys.executable).parent / "bottega"
    return subprocess.run([str(bottega), "inbox", *args], env={**os.environ, **service.env}, capture_output=True,
                          text=True, timeout=60, check=False)


def until(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


@pytest.mark.parametrize(("channel", "user"), [(WHATSAPP, "393330000801"), (MESSENGER, "7400000000000801")])
def test_a_handover_pauses_the_bot_an_admin_reply_arrives_and_riprendi_resumes(service, channel: Channel, user):
    phone = Phone(service, channel, user)
    lid = f"{channel.prefix}:{user}"
    phone.send("ciao")
    phone.wait_turn()
    phone.tap("Italiano")
    phone.wait_turn()
    phone.tap("Panificio")
    phone.wait_turn()
    phone.tap("Contatto clienti")
    phone.wait_turn()
    step_options = phone.options
    where = stored(service, phone)
    assert where.flow == "m1_contatto"

    phone.send("operatore")
    phone.wait_turn()
    phone.tap("Sì, una persona")
    phone.wait_for("entro 4 ore")
    until(phone.outbox_empty, "the handover message sent")
    said = len(texts(phone))

    phone.send("Come metto gli orari di apertura su Google?")
    until(lambda: any(m.who == "learner" for m in stored(service, phone).handover.messages),
          "the learner's message kept for the inbox")
    assert phone.outbox_empty() and len(texts(phone)) == said, "the bot answers nothing during the handover"

    listed = inbox(service)
    assert listed.returncode == 0, listed.stderr
    assert lid in listed.stdout and "NOT ANSWERED" in listed.stdout
    shown = inbox(service, "show", lid)
    assert "Come metto gli orari" in shown.stdout and "m1_contatto" in shown.stdout

    replied = inbox(service, "reply", lid, "Ciao, sono Giulia: te lo spiego io!", "--as", "Giulia")
    assert replied.returncode == 0, replied.stderr
    phone.wait_for("sono Giulia")
    assert texts(phone)[said:] == ["Ciao, sono Giulia: te lo spiego io!"], "exactly once, in order"

    phone.send("riprendi")
    phone.wait_turn()
    back = stored(service, phone)
    assert not back.handover.open
    assert (back.flow, back.step, back.pending) == (where.flow, where.step, where.pending)
    assert phone.options == step_options, "the same step's choices, exactly where the learner stopped"
    assert lid not in inbox(service).stdout


def test_an_unknown_learner_is_refused_by_the_inbox_with_a_clear_message(service):
    refused = inbox(service, "reply", "wa:393339999999", "ciao")
    assert refused.returncode == 2 and "no learner" in refused.stderr
