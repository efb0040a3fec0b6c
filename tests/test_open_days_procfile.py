"""A Business Open Day through the real Procfile processes (gunicorn web + Dramatiq worker), the fake Graph API
and the shared test clock (BOTTEGA_ENV=test): announced with `bottega events announce`, eight RSVPs for five
seats, a cancellation that promotes the first one waiting, the calendar file served and parsed, and the
reminders 24 h and 1 h before, the link at the start and the follow-up after it, each at its simulated time,
exactly once, with the worker SIGKILLed and restarted on the way; the two still waiting at the start are told
the seats ran out, and get the recording. On both engines: one Redis server with Dramatiq's Redis broker, and
a Redis Cluster (3 primaries + 3 replicas) with RabbitMQ."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
import zoneinfo
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import icalendar
import pytest
import requests

from bot.channels import describe
from bot.channels.whatsapp import WHATSAPP
from bot.storage.keys import LearnerPart, learner_key
from bot.storage.open_day_ledger import OpenDayLedger
from bot.tutor.progress import Progress
from config.settings import PROJECT_ROOT
from tests.cluster import ENGINES, engine_cluster
from tests.service import Phone, Service

pytestmark = pytest.mark.procfile

ROME = zoneinfo.ZoneInfo("Europe/Rome")
EVENT = "od_test"
MINUTE = 60_000


def flows_with_an_open_day(folder: Path, start: datetime) -> Path:
    """The course with its Open Day moved to ``start``, five seats."""
    flows = folder / "flows"
    shutil.copytree(PROJECT_ROOT / "flows", flows)
    text = (flows / "events.yaml").read_text(encoding="utf-8")
    text = text.replace("id: od_2027_01", f"id: {EVENT}").replace("capacity: 40", "capacity: 5")
    text = re.sub(r'start: "[^"]+"', f'start: "{start:%Y-%m-%dT%H:%M}"', text)
    (flows / "events.yaml").write_text(text, encoding="utf-8")
    return flows


@pytest.fixture(params=ENGINES)
def timeline(request, tmp_path) -> Iterator[tuple[Service, list[datetime]]]:
    """On both engines: one Redis server with Dramatiq's Redis broker, a Redis Cluster with RabbitMQ."""
    # a new (or emptied) Redis: the shared test clock starts at the real time, and the test moves it on from tomorrow
    cluster = engine_cluster(request)
    today = datetime.fromtimestamp(time.time(), tz=ROME).replace(hour=0, minute=0, second=0, microsecond=0)
    day = [today + timedelta(days=n) for n in range(1, 5)]
    svc = Service(tmp_path, env="test", cluster=cluster,
                  flows_dir=flows_with_an_open_day(tmp_path, day[2].replace(hour=18, minute=30)))
    try:
        svc.start()
        yield svc, day
    finally:
        svc.close()


def local_ms(day: datetime, hour: int, minute: int = 0) -> int:
    return int(day.replace(hour=hour, minute=minute).timestamp() * 1000)


def bottega(service: Service, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=PROJECT_ROOT, env=service.env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def record(service: Service, phone: Phone) -> Progress:
    client = service.redis_client()
    try:
        progress = Progress.from_hash(client.hgetall(learner_key(f"wa:{phone.user}", LearnerPart.PROGRESS)))
    finally:
        client.close()
    assert progress is not None
    return progress


def seats(service: Service) -> tuple[tuple[str, ...], tuple[str, ...]]:
    client = service.redis_client()
    try:
        standing = OpenDayLedger(client).attendees(EVENT)
    finally:
        client.close()
    return standing.seated, standing.waiting


def tap_payload(phone: Phone, payload: str, title: str) -> None:
    phone._post(phone._payload(reply=(payload, title)))


def calendar_link(phone: Phone) -> str:
    [link] = [call["body"]["document"]["link"] for call in phone.calls() if call["body"].get("type") == "document"
              and call["body"]["document"]["link"].endswith(".ics")]
    return link


def test_an_open_day_for_five_seats_eight_rsvps_a_promotion_the_calendar_and_every_reminder_once(timeline):
    service, day = timeline
    start = local_ms(day[2], 18, 30)
    service.set_clock(local_ms(day[0], 10))
    phones = [Phone(service, WHATSAPP, f"39333000090{n}") for n in range(8)]
    for phone in phones:
        phone.send("ciao")
        phone.wait_turn()
        for title in ("Italiano", "Panificio"):
            phone.tap(title)
            phone.wait_turn()
    lids = [f"wa:{phone.user}" for phone in phones]

    # announced: counted first, then one invitation each, through each learner's clock
    dry = bottega(service, "events", "announce", EVENT, "--dry-run")
    assert "8 learner(s) would be invited" in dry and "as free_form: 8" in dry
    assert sum("Vieni?" in describe(WHATSAPP, c["body"]).text for c in service.graph.calls()) == 0
    assert "8 learner(s) invited" in bottega(service, "events", "announce", EVENT)
    service.run_timers_until(service.now_ms() + 1000)
    for phone in phones:
        phone.wait_turn()
        assert phone.count("Vieni? I posti sono limitati.") == 1
        assert [title for _, title in phone.options] == ["Ci sarò", "Non posso", "Ricordamelo"]

    # eight say yes to five seats: five seated, three on the waiting list in order
    for phone in phones:
        phone.tap("Ci sarò")
        phone.wait_turn()
    assert seats(service) == (tuple(lids[:5]), tuple(lids[5:]))
    for number, phone in enumerate(phones[5:], start=1):
        assert phone.count(f"sei il numero {number}") == 1
    assert all(phone.count("il posto è tuo") == 1 for phone in phones[:5])

    # the calendar file: served at its ticket's URL, parsed by the library, at 18:30 in Rome
    answer = requests.get(calendar_link(phones[0]), timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/calendar")
    [entry] = icalendar.Calendar.from_ical(answer.content).walk("VEVENT")
    assert entry.decoded("dtstart") == day[2].replace(hour=18, minute=30)
    assert str(entry.decoded("dtstart").tzinfo) == "Europe/Rome"

    # one cancels: the first one waiting is promoted and told, with their own calendar file
    cancelled_link = calendar_link(phones[1])
    tap_payload(phones[1], f"sys:od:no:{EVENT}", "Non posso più")
    phones[1].wait_for("Nessun problema")
    phones[5].wait_for("si è liberato un posto")
    assert seats(service) == ((lids[0], *lids[2:6]), tuple(lids[6:]))
    assert requests.get(cancelled_link, timeout=10).status_code == 404
    assert requests.get(calendar_link(phones[5]), timeout=10).status_code == 200
    attendees = bottega(service, "events", "attendees", EVENT)
    assert "5 of 5 seats taken, 2 waiting, 1 declined" in attendees

    # the next evening one of them writes, so their window is open for the 1 h reminder and the link
    service.run_timers_until(local_ms(day[1], 19))
    phones[2].send("menu")
    phones[2].wait_turn()
    service.stop("worker", sig=signal.SIGKILL)  # the clocks live in Redis: a killed worker loses none of them
    service.start("worker")
    service.run_timers_until(local_ms(day[3], 12))

    moments = {"open_day_r24": start - 24 * 60 * MINUTE, "open_day_r1": start - 60 * MINUTE,
               "open_day_start": start, "open_day_after": start + 120 * MINUTE}  # 90 minutes, then half an hour
    for phone in (phones[0], *phones[2:6]):
        sent = [entry for entry in record(service, phone).proactive.sent if entry.kind in moments]
        assert [entry.kind for entry in sent] == list(moments), phone.user
        for entry in sent:
            assert moments[entry.kind] <= entry.at_ms < moments[entry.kind] + 3 * MINUTE, (phone.user, entry)
        hows = [entry.how for entry in sent]
        assert hows == (["template", "free_form", "free_form", "template"] if phone is phones[2] else ["template"] * 4)
        texts = [describe(WHATSAPP, call["body"]).text for call in phone.calls()]
        assert sum(text.startswith("[template: bottega_open_day_reminder]") for text in texts) == (
            1 if phone is phones[2] else 2)
        assert sum(text.startswith("[template: bottega_open_day_starting]") or "comincia adesso" in text
                   for text in texts) == 1
        assert sum(text.startswith("[template: bottega_open_day_followup]") for text in texts) == 1
    # cancelled: nothing more; still waiting at the start: told the seats ran out (the template: their window is
    # closed), once across the killed worker, and the recording at the follow-up's moment
    assert [entry.kind for entry in record(service, phones[1]).proactive.sent] == ["open_day_ann"]
    for phone in phones[6:]:
        sent = [entry for entry in record(service, phone).proactive.sent]
        assert [entry.kind for entry in sent] == ["open_day_ann", "open_day_full", "open_day_rec"], phone.user
        assert start <= sent[1].at_ms < start + 3 * MINUTE and sent[2].at_ms >= moments["open_day_after"]
        texts = [describe(WHATSAPP, call["body"]).text for call in phone.calls()]
        assert sum(text.startswith("[template: bottega_open_day_full]") for text in texts) == 1
        assert sum(text.startswith("[template: bottega_open_day_missed]") for text in texts) == 1
    assert all(phone.limit_violations() == [] for phone in phones)
