"""GraphClient against the fake Graph API on loopback: answers, error classes, timeouts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bot.delivery.graph import (
    TRANSIENT_CODES,
    GraphApiError,
    GraphBadResponse,
    GraphClient,
    GraphError,
    GraphRequestError,
    GraphTransportError,
    LocalCode,
)
from bot.dev.fake_graph import FakeGraphHandle, serve_in_thread
from config.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
WA_TOKEN = "wa-token-must-not-leak"
PHONE_ID = "100000000000001"
PAGE_ID = "200000000000002"
SECRET_TEXT = "lesson text must not leak"
WA_BODY = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+393330000001",
           "type": "text", "text": {"body": SECRET_TEXT}}
MS_BODY = {"recipient": {"id": "7000001"}, "messaging_type": "RESPONSE", "message": {"text": "ciao"}}
PERMANENT_CODES = [131047, 131026, 131048, 131049, 131050, 130403, 190, 0, 100, 551, 1545041, 10,
                   200, 299, 132000, 132015, 131008, 368]



def make_settings(url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"env": "dev", "whatsapp_token": WA_TOKEN, "messenger_page_token": "ms-token",
                                 "graph_api_url": url}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def graph(fake: FakeGraphHandle) -> Iterator[GraphClient]:
    with GraphClient(make_settings(fake.url)) as client:
        yield client


def assert_no_secrets(exc: GraphError) -> None:
    text = str(exc)
    assert WA_TOKEN not in text and SECRET_TEXT not in text and "393330000001" not in text


def test_whatsapp_send_returns_wamid_and_the_fake_records_the_call(fake: FakeGraphHandle,
                                                                    graph: GraphClient) -> None:
    wamid = graph.send("whatsapp", PHONE_ID, WA_BODY)
    assert wamid.startswith("wamid.")
    [call] = fake.calls()
    assert call["path"] == f"/v25.0/{PHONE_ID}/messages"
    assert (call["version"], call["sender_id"], call["body"]) == ("v25.0", PHONE_ID, WA_BODY)
    assert call["authorized"] is True and call["message_id"] == wamid


def test_messenger_send_returns_message_id(fake: FakeGraphHandle, graph: GraphClient) -> None:
    mid = graph.send("messenger", PAGE_ID, MS_BODY)
    assert mid.startswith("m_")
    assert fake.calls()[0]["sender_id"] == PAGE_ID


def test_instagram_send_goes_to_me_messages_with_the_page_token(fake: FakeGraphHandle) -> None:
    ig_body = {"recipient": {"id": "5100000000000001"}, "messaging_type": "RESPONSE", "message": {"text": "ciao"}}
    with GraphClient(make_settings(fake.url, instagram_page_token="ig-token")) as client:
        assert client.send("instagram", "17841400000000001", ig_body)  # the Instagram account the learner wrote to
    [call] = fake.calls()
    assert (call["path"], call["body"]) == ("/v25.0/me/messages", ig_body)  # the Page token picks the Page
    with GraphClient(make_settings(fake.url)) as client, pytest.raises(GraphRequestError, match="INSTAGRAM_PAGE_TOKEN"):
        client.send("instagram", "17841400000000001", ig_body)


def test_mark_read_and_sender_actions_return_an_empty_id(graph: GraphClient) -> None:
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"}
    assert graph.send("whatsapp", PHONE_ID, read) == ""
    assert graph.send("messenger", PAGE_ID, {"recipient": {"id": "7"}, "sender_action": "typing_on"}) == ""


@pytest.mark.parametrize("code", sorted(TRANSIENT_CODES))
def test_transient_codes_are_transient_whatever_the_http_status(fake: FakeGraphHandle, graph: GraphClient,
                                                                code: int) -> None:
    fake.configure(fail_every=1, fail_status=400, fail_code=code)
    with pytest.raises(GraphApiError) as caught:
        graph.send("whatsapp", PHONE_ID, WA_BODY)
    assert (caught.value.code, caught.value.transient, caught.value.http_status) == (code, True, 400)
    assert f"error code {code}" in str(caught.value)
    assert_no_secrets(caught.value)
    assert fake.calls() == []  # a failed call is not recorded as accepted


@pytest.mark.parametrize("code", PERMANENT_CODES)
def test_other_codes_are_permanent_even_with_a_5xx(fake: FakeGraphHandle, graph: GraphClient,
                                                   code: int) -> None:
    fake.configure(fail_every=1, fail_status=503, fail_code=code)
    with pytest.raises(GraphApiError) as caught:
        graph.send("messenger", PAGE_ID, MS_BODY)
    assert (caught.value.code, caught.value.transient) == (code, False)
    assert caught.value.meta_message == "Injected failure."  # kept for code, not in the message
    assert "Injected failure" not in str(caught.value)


def test_permanent_code_config_fails_every_call_with_400(fake: FakeGraphHandle, graph: GraphClient) -> None:
    fake.configure(permanent_code=131047)
    with pytest.raises(GraphApiError) as caught:
        graph.send("whatsapp", PHONE_ID, WA_BODY)
    assert (caught.value.code, caught.value.transient, caught.value.http_status) == (131047, False, 400)
    assert "template" in str(caught.value)  # says what to do


@pytest.mark.parametrize(("status", "transient"), [(500, True), (502, True), (503, True), (429, True),
                                                   (404, False), (400, False)])
def test_status_without_a_meta_error_body(fake: FakeGraphHandle, graph: GraphClient, status: int,
                                          transient: bool) -> None:
    fake.configure(fail_every=1, fail_status=status, fail_code=None)
    with pytest.raises(GraphApiError) as caught:
        graph.send("whatsapp", PHONE_ID, WA_BODY)
    assert (caught.value.code, caught.value.transient) == (LocalCode.HTTP_STATUS_ONLY, transient)
    assert caught.value.http_status == status


def test_fail_every_third_call(fake: FakeGraphHandle, graph: GraphClient) -> None:
    fake.configure(fail_every=3)
    outcomes = []
    for _ in range(6):
        try:
            graph.send("whatsapp", PHONE_ID, WA_BODY)
            outcomes.append("ok")
        except GraphError as exc:
            outcomes.append(f"{exc.code}/{exc.transient}")
    assert outcomes == ["ok", "ok", "2/True", "ok", "ok", "2/True"]
    assert len(fake.calls()) == 4


def test_read_timeout_is_transient(fake: FakeGraphHandle) -> None:
    fake.configure(delay_seconds=0.6)
    with GraphClient(make_settings(fake.url, send_timeout_seconds=0.2)) as client:
        started = time.monotonic()
        with pytest.raises(GraphTransportError) as caught:
            client.send("whatsapp", PHONE_ID, WA_BODY)
        assert time.monotonic() - started < 0.5
    assert (caught.value.code, caught.value.transient) == (LocalCode.NO_RESPONSE, True)
    assert "timeout" in str(caught.value)
    assert_no_secrets(caught.value)


def test_connection_refused_is_transient(fake: FakeGraphHandle) -> None:
    closed = serve_in_thread()
    url = closed.url
    closed.stop()
    with GraphClient(make_settings(url, send_timeout_seconds=1.0)) as client, \
            pytest.raises(GraphTransportError) as caught:
        client.send("messenger", PAGE_ID, MS_BODY)
    assert caught.value.transient and caught.value.code == LocalCode.NO_RESPONSE


def test_unreadable_success_is_permanent(graph: GraphClient) -> None:
    # A Messenger-shaped body on the WhatsApp channel: the fake answers Messenger-style, no wamid.
    with pytest.raises(GraphBadResponse) as caught:
        graph.send("whatsapp", PHONE_ID, MS_BODY)
    assert (caught.value.code, caught.value.transient) == (LocalCode.BAD_RESPONSE, False)


def test_unknown_phone_number_id_is_meta_error_100(fake: FakeGraphHandle, graph: GraphClient) -> None:
    fake.configure(sender_ids=[PHONE_ID])
    assert graph.send("whatsapp", PHONE_ID, WA_BODY)
    with pytest.raises(GraphApiError) as caught:
        graph.send("whatsapp", "999", WA_BODY)
    assert (caught.value.code, caught.value.transient) == (100, False)


def test_requests_that_cannot_be_sent(fake: FakeGraphHandle, graph: GraphClient) -> None:
    with pytest.raises(GraphRequestError, match="no channel named"):
        graph.send("telegram", PHONE_ID, WA_BODY)
    with GraphClient(make_settings(fake.url, whatsapp_token="")) as client, \
            pytest.raises(GraphRequestError, match="WHATSAPP_TOKEN") as caught:
        client.send("whatsapp", PHONE_ID, WA_BODY)
    assert not caught.value.transient
    assert fake.calls() == []


def test_fake_rejects_calls_without_a_bearer_token(fake: FakeGraphHandle) -> None:
    answer = requests.post(f"{fake.url}/v25.0/{PHONE_ID}/messages", json=WA_BODY, timeout=5)
    assert answer.status_code == 401 and answer.json()["error"]["code"] == 190
    assert fake.calls() == []


def test_fake_control_endpoints(fake: FakeGraphHandle, graph: GraphClient) -> None:
    graph.send("whatsapp", PHONE_ID, WA_BODY)
    assert len(requests.get(f"{fake.url}/_fake/calls", timeout=5).json()) == 1
    graph.send("whatsapp", PHONE_ID, WA_BODY)
    later = requests.get(f"{fake.url}/_fake/calls?since=1", timeout=5).json()  # a poller reads each call once
    assert len(later) == 1 and later[0]["message_id"] == fake.calls()[1]["message_id"]
    config = requests.post(f"{fake.url}/_fake/config", json={"fail_every": 2}, timeout=5).json()
    assert config["fail_every"] == 2
    assert requests.post(f"{fake.url}/_fake/config", json={"nope": 1}, timeout=5).status_code == 400
    requests.post(f"{fake.url}/_fake/reset", timeout=5)
    assert fake.calls() == [] and fake.configure()["fail_every"] == 0


def test_retry_after_seconds() -> None:
    pair = GraphApiError("x", code=131056, transient=True)
    other = GraphApiError("x", code=130429, transient=True)
    assert [pair.retry_after_seconds(n) for n in range(4)] == [1, 4, 16, 64]
    assert [other.retry_after_seconds(n) for n in range(4)] == [1, 2, 4, 8]


def test_calls_do_not_stall_on_delayed_acks(fake: FakeGraphHandle, graph: GraphClient) -> None:
    """Nagle's algorithm meeting a delayed ACK would hold each small POST ~40 ms: the one kept connection sends
    with TCP_NODELAY (the socket option itself, not a timing: bench/ measures time)."""
    for _ in range(3):
        graph.send("whatsapp", PHONE_ID, WA_BODY)
    pool = graph._pool.connection_from_url(fake.url)
    assert pool.num_connections == 1  # kept alive: every call after the first rides the same connection
    connection = pool.pool.queue[-1]
    assert connection.sock is not None
    assert connection.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_fake_runs_as_a_module_until_sigterm() -> None:
    process = subprocess.Popen([sys.executable, "-m", "bot.dev.fake_graph", "--port", "0", "--print-url"],
                               cwd=ROOT, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert requests.get(f"{url}/_fake/calls", timeout=5).json() == []
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


@pytest.mark.parametrize(("channel", "sender", "body", "variable"), [
    ("whatsapp", PHONE_ID, WA_BODY, "WHATSAPP_TOKEN"), ("messenger", PAGE_ID, MS_BODY, "MESSENGER_PAGE_TOKEN"),
    ("instagram", "17841400000000001", MS_BODY, "INSTAGRAM_PAGE_TOKEN")])
def test_a_refused_token_names_that_channels_variable(fake: FakeGraphHandle, channel: str, sender: str,
                                                      body: dict, variable: str) -> None:
    for code in (190, 10):
        fake.configure(permanent_code=code)
        with GraphClient(make_settings(fake.url, instagram_page_token="ig-token")) as client, \
                pytest.raises(GraphApiError) as caught:
            client.send(channel, sender, body)
        others = {"WHATSAPP_TOKEN", "MESSENGER_PAGE_TOKEN", "INSTAGRAM_PAGE_TOKEN"} - {variable}
        assert variable in str(caught.value) and not any(other in str(caught.value) for other in others)
        assert_no_secrets(caught.value)
