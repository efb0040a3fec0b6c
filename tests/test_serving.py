"""The Procfile's web process keeps answering while slow clients hold connections, and cuts them off.

An adversarial run (issue 7) held every request slot of the old 2 x 4 gthread set-up with 16
connections trickling header bytes, and one inflated Content-Length kept a slot for over 40 s; Meta's
deliveries and /healthz timed out meanwhile. These tests run the real Procfile processes on loopback.
The timeouts are behaviour checks, not speed assertions (bench/slow_clients.py has the figures).
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bot.channels.signature import sign
from bot.channels.whatsapp import WHATSAPP
from tests.service import SECRET, Phone, Service

pytestmark = pytest.mark.procfile

TRICKLING_CONNECTIONS = 16  # twice the old set-up's 8 slots
TRICKLE_INTERVAL_SECONDS = 0.5
ANSWER_TIMEOUT_SECONDS = 5.0  # generous: an unloaded answer takes milliseconds; the old set-up hung 20 s+
# the server must close the slow connections on its own: the deadlines are 5 s (headers) and 10 s
# (body); this leaves room for a busy machine and still fails a server that never cuts them off
CUT_OFF_WITHIN_SECONDS = 30.0


@pytest.fixture
def service(tmp_path) -> Iterator[Service]:
    with Service(tmp_path) as svc:
        yield svc


class SlowClients:
    """Connections that send a request too slowly, from one thread; records when the server closes each."""

    def __init__(self, port: int, *, trickling: int, inflated: int):
        self.opened_at = time.monotonic()
        self.sockets: list[socket.socket] = []
        for _ in range(trickling):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"POST /webhook HTTP/1.1\r\n")  # then one more header byte per interval
            self.sockets.append(sock)
        for _ in range(inflated):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100000\r\n\r\n{\"object\":")  # announces 100 KB, sends 10 bytes
            self.sockets.append(sock)
        self.trickling = set(self.sockets[:trickling])
        self.closed_after: dict[socket.socket, float] = {}
        self.answers: dict[socket.socket, bytes] = {}  # what the server sent before closing, if anything
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.closed_after) < len(self.sockets):
            open_ = [sock for sock in self.sockets if sock not in self.closed_after]
            readable, _, _ = select.select(open_, [], [], TRICKLE_INTERVAL_SECONDS)
            for sock in readable:  # an answer or the server's close: read to the end
                try:
                    if data := sock.recv(65536):
                        self.answers[sock] = self.answers.get(sock, b"") + data
                        continue
                except OSError:
                    pass
                self._closed(sock)
            for sock in self.trickling - set(self.closed_after):
                try:
                    sock.sendall(b"X")
                except OSError:
                    self._closed(sock)

    def _closed(self, sock: socket.socket) -> None:
        self.closed_after.setdefault(sock, time.monotonic() - self.opened_at)

    def wait_all_closed(self, timeout: float) -> None:
        self._thread.join(timeout)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self.sockets:
            sock.close()


def test_webhook_and_health_answer_while_slow_clients_hold_connections_and_the_server_cuts_them_off(service):
    slow = SlowClients(service.port, trickling=TRICKLING_CONNECTIONS, inflated=1)
    try:
        time.sleep(1.0)  # the slow connections are accepted and have started their requests
        phone = Phone(service, WHATSAPP, "393330000201")
        raw = json.dumps(phone._payload(text="ciao")).encode()
        answer = requests.post(f"{service.url}/webhook", data=raw, timeout=ANSWER_TIMEOUT_SECONDS, headers={
            "Content-Type": "application/json", "X-Hub-Signature-256": _sign(raw)})
        assert answer.status_code == 200, answer.text
        assert requests.get(f"{service.url}/healthz", timeout=ANSWER_TIMEOUT_SECONDS).status_code == 200
        phone.wait_turn()  # and the reply went out through the worker

        slow.wait_all_closed(CUT_OFF_WITHIN_SECONDS)
        assert len(slow.closed_after) == len(slow.sockets), (
            f"the server still holds {len(slow.sockets) - len(slow.closed_after)} slow connections "
            f"after {CUT_OFF_WITHIN_SECONDS:.0f} s")
        inflated = slow.sockets[-1]
        assert slow.answers.get(inflated, b"").startswith(b"HTTP/1.1 408 "), slow.answers.get(inflated)
        assert not any(slow.answers.get(sock) for sock in slow.trickling)  # dropped without an answer
    finally:
        slow.close()
    log = (service.workdir / "web.log").read_text()
    assert "request headers not received within" in log
    assert "request body not received within" in log
    assert "Traceback" not in log


def test_concurrent_learners_are_all_answered_under_gevent(service):
    """Requests interleave inside one process: the Redis pool (hiredis), the Dramatiq enqueue and the
    release registry's lock all run monkey-patched; every learner gets their own reply."""
    phones = [Phone(service, WHATSAPP, f"3933300003{n:02d}") for n in range(24)]
    with ThreadPoolExecutor(max_workers=len(phones)) as pool:
        answers = list(pool.map(lambda phone: _post_ciao(service, phone), phones))
    assert answers == [200] * len(phones)
    for phone in phones:
        shown = phone.wait_turn(timeout=30)
        assert [label for _, label in phone.options] == ["Italiano", "English"], shown
    log = (service.workdir / "web.log").read_text()
    assert "Traceback" not in log
    assert "MonkeyPatchWarning" not in log


def _post_ciao(service: Service, phone: Phone) -> int:
    raw = json.dumps(phone._payload(text="ciao")).encode()
    with requests.Session() as session:  # one per thread: requests' Session is not thread-safe
        return session.post(f"{service.url}/webhook", data=raw, timeout=10, headers={
            "Content-Type": "application/json", "X-Hub-Signature-256": _sign(raw)}).status_code


def _sign(raw: bytes) -> str:
    return sign(SECRET, raw)


def test_a_kept_alive_connection_serves_several_webhooks_and_is_still_cut_off_when_it_trickles(service):
    """Keep-alive (WEB_KEEPALIVE_SECONDS): one connection, several webhooks; each request on it gets the
    headers deadline afresh, so a connection that goes on trickling after its answers is still closed."""
    phones = [Phone(service, WHATSAPP, f"3933300004{n:02d}") for n in range(3)]
    with socket.create_connection(("127.0.0.1", service.port), timeout=ANSWER_TIMEOUT_SECONDS) as sock:
        reader = sock.makefile("rb")
        for phone in phones:
            raw = json.dumps(phone._payload(text="ciao")).encode()
            sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: bottega\r\nContent-Type: application/json\r\n"
                         + f"X-Hub-Signature-256: {_sign(raw)}\r\nContent-Length: {len(raw)}\r\n\r\n".encode() + raw)
            status = reader.readline()
            assert status.startswith(b"HTTP/1.1 200 "), status
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                assert name.lower() != "connection" or value.strip().lower() != "close"  # kept alive
                length = int(value) if name.lower() == "content-length" else length
            reader.read(length)
        sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: bott")  # then nothing more: a trickler on a kept connection
        sock.settimeout(CUT_OFF_WITHIN_SECONDS)
        assert reader.read() == b""  # the server closed it, without an answer
    for phone in phones:
        assert [label for _, label in phone.wait_turn(timeout=30) and phone.options] == ["Italiano", "English"]
    assert "Traceback" not in (service.workdir / "web.log").read_text()
