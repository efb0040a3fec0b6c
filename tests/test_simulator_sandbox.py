"""The simulator in production: behind the console's sign-in, its phones sandbox learners whose sends the
worker records in Redis instead of calling Meta (issue: "for signed-in admins in production against a
sandbox learner id").

A production app on a real server on loopback, the worker's drain run in-process against the fake Graph API
(which must receive nothing for a sandbox learner), real Redis, real HTTP.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import replace

import pytest
import requests

from bot import channels
from bot.channels.signature import sign
from bot.console.users import Role, Users
from bot.delivery import outbox
from bot.delivery.graph import GraphClient
from bot.model.sandbox import SANDBOX_MARK, is_sandbox, sandbox_user, session_of
from bot.simulator import learner_side
from bot.simulator.outbound import RecordedOutbound
from bot.simulator.phones import phone_view
from bot.simulator.session import SessionLog, learner_id
from bot.storage.keys import LearnerPart, learner_key, sandbox_failure_key, sandbox_sent_key, simulator_log_key
from bot.tutor.progress import Progress
from config.settings import PROJECT_ROOT
from tests import loopback
from webhooks import create_app

PASSWORD = "correct horse battery"
WHATSAPP = channels.parts_for("whatsapp")
SECRET = "test-app-secret"


def test_sandbox_ids_are_a_reserved_form_no_real_user_has():
    assert sandbox_user("12345678") == "000012345678" and SANDBOX_MARK == "0000"
    assert session_of("wa:000012345678") == "12345678" == session_of("ms:000012345678@whatsapp")
    for real in ("wa:393331112222", "wa:IT.1349", "ms:7000000000000001", "ig:6000123", "wa:00001234567",
                 "wa:0000123456789", "000012345678", "wa:0000abcdefgh"):
        assert not is_sandbox(real), real
    with pytest.raises(ValueError):
        sandbox_user("123")
    assert sandbox_sent_key("12345678") == "bottega:simulator:{12345678}:sent"
    assert sandbox_failure_key("12345678") == "bottega:simulator:{12345678}:fail"
    assert simulator_log_key("12345678") == "bottega:simulator:{12345678}:log"  # one hash slot per session


@pytest.fixture
def production(redis_client, settings, fake, tmp_path):
    """The production app (console on, editors and a viewer) on a real server; its Graph API is the fake."""
    flows = tmp_path / "flows"
    shutil.copytree(PROJECT_ROOT / "flows", flows, ignore=shutil.ignore_patterns("tests"))
    prod = replace(settings, env="production", console_secret_key="a-test-console-secret-of-enough-length-123",
                   graph_api_url=fake.url, flows_dir=flows, learner_burst_messages=50,
                   learner_message_interval_seconds=0.01, receipt_interval_seconds=0.01)
    app = create_app(prod, redis_client=redis_client, notify=lambda learner_id: None)
    users = Users(redis_client)
    users.add("ezio", Role.EDITOR, PASSWORD)
    users.add("vera", Role.VIEWER, PASSWORD)
    with loopback.served(app) as url:
        yield url, prod


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


class Browser(requests.Session):
    """A browser for a plain-http server on loopback: it sends the console's Secure cookie there too."""

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        for cookie in self.cookies:
            cookie.secure = False
        return super().prepare_request(request)


def signed_in(url: str, name: str) -> requests.Session:
    browser = Browser()
    token = csrf(browser.get(f"{url}/admin/login", timeout=10).text)
    answer = browser.post(f"{url}/admin/login", data={"name": name, "password": PASSWORD, "csrf_token": token},
                          allow_redirects=False, timeout=10)
    assert answer.status_code == 303, answer.text
    return browser


def drain(redis_client, settings, lid: str) -> None:
    """What the worker's deliver job does for ``lid``, in-process, with the worker's real Graph client."""
    with GraphClient(settings) as graph:
        for _ in range(20):
            if outbox.drain(redis_client, graph, lid, settings).again_in_seconds is None:
                return
            time.sleep(0.05)


def act(browser: requests.Session, url: str, session: str, action: str, data: dict[str, str]) -> requests.Response:
    token = csrf(browser.get(f"{url}/simulator/{session}", timeout=10).text)
    return browser.post(f"{url}/simulator/{session}/{action}", data={**data, "csrf_token": token}, timeout=10,
                        headers={"Accept": "application/json", "Origin": url})


def test_signed_in_editors_walk_a_sandbox_learner_and_nothing_reaches_the_graph_api(production, redis_client,
                                                                                      fake):
    url, settings = production
    anonymous = requests.get(f"{url}/simulator", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 303 and "/admin/login" in anonymous.headers["Location"]
    assert "/admin/login" in requests.get(f"{url}/simulator/12345678", allow_redirects=False,
                                          timeout=10).headers["Location"]
    refused = requests.post(f"{url}/simulator/12345678/send", data={"channel": "whatsapp", "text": "ciao"},
                            allow_redirects=False, timeout=10)
    assert refused.status_code == 303 and not SessionLog(redis_client, "12345678").entries()
    assert signed_in(url, "vera").get(f"{url}/simulator/12345678", timeout=10).status_code == 403  # viewers

    browser = signed_in(url, "ezio")
    assert 'href="/simulator"' in browser.get(f"{url}/admin/", timeout=10).text  # the console's menu
    start = browser.get(f"{url}/simulator", allow_redirects=False, timeout=10)
    session = start.headers["Location"].rsplit("/", 1)[-1]
    lid = learner_id(WHATSAPP, session, sandbox=True)
    assert lid == f"wa:0000{session}" and is_sandbox(lid)

    # turn 1: the learner writes; the worker "sends" the replies
    answer = act(browser, url, session, "send", {"channel": "whatsapp", "text": "ciao"})
    assert answer.status_code == 200, answer.text
    assert Progress.from_hash(redis_client.hgetall(learner_key(lid, LearnerPart.PROGRESS))) is not None
    assert not redis_client.exists(learner_key(learner_id(WHATSAPP, session), LearnerPart.PROGRESS))  # dev form
    drain(redis_client, settings, lid)
    recorded = RecordedOutbound(redis_client, session)
    first = recorded.calls()
    assert first and all(call["body"].get("to") == f"+0000{session}" or call["body"].get("status") == "read"
                         for call in first)
    assert all(call["message_id"].startswith("wamid.") for call in first if "to" in call["body"])
    delivery = redis_client.hgetall(learner_key(lid, LearnerPart.DELIVERY))
    assert int(delivery[b"sent_count"]) == len([call for call in first if "to" in call["body"]])  # receipts apart
    view = phone_view(WHATSAPP, session, SessionLog(redis_client, session).entries(), first, sandbox=True)
    assert view.user == f"0000{session}" and [line.side for line in view.lines][:2] == ["learner", "bot"]
    assert view.lines[0].read  # the recorded receipt marked the learner's message read
    screen = browser.get(f"{url}/simulator/{session}/panels", timeout=10).json()["screen-whatsapp"]
    assert view.latest_choices and all(f'data-option-id="{choice.id}"' in screen for choice in view.latest_choices)

    # turn 2: the learner taps the first choice Bottega offered, as the phone shows it
    choice = view.latest_choices[0]
    answer = act(browser, url, session, "tap", {"channel": "whatsapp", "option_id": choice.id,
                                                "title": choice.title, "tap": choice.tap})
    assert answer.status_code == 200, answer.text
    drain(redis_client, settings, lid)
    second = recorded.calls()
    assert len(second) > len(first)
    assert [entry.action for entry in SessionLog(redis_client, session).entries()] == ["send", "tap"]

    # fail with a code: the next sends fail as Meta would refuse them, and still nothing goes out
    answer = act(browser, url, session, "graph", {"code": "131047"})
    assert answer.status_code == 200 and recorded.failing_code() == 131047
    panels = browser.get(f"{url}/simulator/{session}/panels", timeout=10).json()
    assert "131047" in panels["graph-state"]
    assert act(browser, url, session, "send", {"channel": "whatsapp", "text": "menu"}).status_code == 200
    drain(redis_client, settings, lid)
    delivery = redis_client.hgetall(learner_key(lid, LearnerPart.DELIVERY))
    assert delivery[b"last_error_code"] == b"131047" and delivery[b"last_error_kind"] == b"permanent"
    assert len(recorded.calls()) == len(second)  # a refused send is not listed (as the fake Graph API does)
    assert act(browser, url, session, "graph", {"code": ""}).status_code == 200 and recorded.failing_code() is None

    with fake.server.state.lock:
        assert fake.server.state.counter == 0 and fake.server.state.calls == []  # the Graph API heard nothing
    assert redis_client.llen(learner_key(lid, LearnerPart.EVENTS)) == 0  # no analytics for a sandbox learner
    assert redis_client.ttl(sandbox_sent_key(session)) > 0  # the records expire

    # a real learner of the same service still goes to the Graph API, and counts in analytics
    write_in(url, "393331119999")
    drain(redis_client, settings, "wa:393331119999")
    with fake.server.state.lock:
        assert fake.server.state.counter > 0
        assert all(call["body"].get("to") != f"+0000{session}" for call in fake.server.state.calls)
    assert redis_client.llen(learner_key("wa:393331119999", LearnerPart.EVENTS)) > 0


def test_the_production_simulator_never_speaks_as_a_learner_who_is_not_a_sandbox_one(production, redis_client):
    url, settings = production
    real = "393331118888"
    payload = WHATSAPP.dev.text_payload("ciao", real, settings.whatsapp_phone_number_id)
    with pytest.raises(learner_side.NotSandbox):
        learner_side.post_signed(WHATSAPP, payload, settings=settings, webhook_url=f"{url}/webhook", sandbox=True)
    assert not redis_client.exists(learner_key(f"wa:{real}", LearnerPart.PROGRESS))  # never reached /webhook


def write_in(url: str, phone: str) -> None:
    payload = WHATSAPP.dev.text_payload("ciao", phone, "100000000000001")
    raw = json.dumps(payload).encode()
    answer = requests.post(f"{url}/webhook", data=raw, timeout=10, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": sign(SECRET, raw)})
    assert answer.status_code == 200, answer.text
