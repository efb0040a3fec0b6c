"""A fake Graph API on loopback, for tests and the dev launcher (never for production).

``POST /{version}/{id}/messages`` answers like Meta, as the channel whose body it is answers (each
channel's ``dev.fake_answer`` in ``bot/channels``: a WhatsApp ``{"messaging_product":"whatsapp",
"messages":[{"id":"wamid.<unique>"}]}``, a Messenger ``{"recipient_id":..., "message_id":"m_<unique>"}``).
A call without ``Authorization: Bearer <token>`` gets 401 with code 190. When ``sender_ids`` is
configured, any other sender id gets Meta's "Unsupported post request" (100).

Each ACCEPTED call is recorded: ``{"path", "version", "sender_id", "body", "authorized",
"message_id", "at"}`` (``at`` = ``time.monotonic()`` of this process when it answered).

``GET /{version}/{waba_id}/message_templates`` serves the configured ``templates`` (Meta's objects:
``name``, ``language``, ``status``, ``category``, ``components``), ``template_page_size`` a page with
``paging.next``; ``POST`` there creates one (``created_template_status``, default PENDING), recorded as a call.

Control endpoints: ``GET /_fake/calls`` (the recorded calls; ``?since=N`` from the N-th on, so a
poller reads each call once), ``POST /_fake/reset`` (calls, counter
and config back to defaults), ``POST /_fake/config`` with any of ``CONFIG_DEFAULTS``:

* ``fail_every`` N: every N-th message call (counting all, failures included) fails with
  ``fail_status`` and a Meta error body with ``fail_code`` (``fail_code: null`` -> an HTML body, like
  a proxy); failed calls are not recorded.
* ``delay_seconds``: every message call sleeps this long before answering (timeouts, kill tests).
* ``permanent_code``: every message call fails with HTTP 400 and this code.
* ``pair_burst`` N (0 = off) and ``pair_per_seconds`` S: WhatsApp's pair rate limit, as a token
  bucket per (sender id, recipient): N messages at once, then one per S seconds; a message over it
  fails with HTTP 400 and error 131056. Read receipts and typing indicators do not count. Refused
  calls are listed by ``GET /_fake/rejected`` (``{"code", "recipient", "at"}``).
* ``throughput_per_second`` R (0 = off) and ``throughput_burst_seconds`` B: the sending number's
  throughput, as a token bucket per sender id holding R * B messages and refilling R per second (Meta's
  80 mps by default, up to 1,000); a message over it fails with HTTP 400 and error 130429, listed in
  ``/_fake/rejected`` too. Read receipts and typing indicators count for neither limit.
* ``record_calls`` false: calls are counted, not kept (a benchmark's 100,000 of them);
  ``GET /_fake/stats[?prefix=39]`` gives ``{"accepted", "recipients", "max_per_recipient", "histogram": {messages:
  recipients}, "rejected": {code: n}}``.

Run: ``python -m bot.dev.fake_graph --port 0 --print-url`` (serves until SIGTERM), or
``serve_in_thread(port=0)`` in-process. The handler sets ``disable_nagle_algorithm``: without it
headers and body leave in two packets and each call stalls ~40 ms on a delayed ACK.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from bot import channels

CONFIG_DEFAULTS: dict[str, Any] = {
    "fail_every": 0,
    "fail_status": 500,
    "fail_code": 2,
    "delay_seconds": 0.0,
    "permanent_code": None,
    "sender_ids": [],  # empty: any id is one we send from
    "pair_burst": 0,
    "pair_per_seconds": 6.0,
    "throughput_per_second": 0.0,  # 0 = off; else the sending number's limit (130429 past it)
    "throughput_burst_seconds": 1.0,  # the number's bucket holds this many seconds of messages
    "record_calls": True,  # False: count only (a benchmark's 100,000 calls), GET /_fake/stats still answers
    "templates": [],  # what GET /{waba}/message_templates serves: Meta's template objects
    "template_page_size": 25,  # templates per page (the rest behind paging.next)
    "created_template_status": "PENDING",  # what a POSTed template starts as
}
PAIR_RATE_LIMIT_CODE = 131056
THROUGHPUT_LIMIT_CODE = 130429
_MESSAGES_PATH = re.compile(r"^/(v\d+\.\d+)/([^/]+)/messages$")
_TEMPLATES_PATH = re.compile(r"^/(v\d+\.\d+)/([^/?]+)/message_templates(\?.*)?$")


class FakeGraphState:
    """Calls and config shared by the handler threads; every access holds ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []
        self.config: dict[str, Any] = {key: list(value) if isinstance(value, list) else value
                                       for key, value in CONFIG_DEFAULTS.items()}
        self.counter = 0
        self.rejected: list[dict[str, Any]] = []
        self.pairs: dict[tuple[str, str], tuple[float, float]] = {}  # (sender, recipient) -> (tokens, at)
        self.numbers: dict[str, tuple[float, float]] = {}  # sender -> (tokens, at): the throughput bucket
        self.per_recipient: dict[str, int] = {}  # recipient -> accepted messages (not receipts)
        self.accepted = 0

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.config = {key: list(value) if isinstance(value, list) else value
                           for key, value in CONFIG_DEFAULTS.items()}
            self.counter = 0
            self.rejected.clear()
            self.pairs.clear()
            self.numbers.clear()
            self.per_recipient.clear()
            self.accepted = 0

    def take_number_token(self, sender_id: str, recipient: str) -> bool:
        """False when the sending number is over its throughput (``throughput_per_second``)."""
        with self.lock:
            rate = float(self.config["throughput_per_second"])
            if rate <= 0:
                return True
            capacity = max(rate * float(self.config["throughput_burst_seconds"]), 1.0)
            now = time.monotonic()
            tokens, at = self.numbers.get(sender_id, (capacity, now))
            tokens = min(capacity, tokens + (now - at) * rate)
            if tokens < 1.0:
                self.numbers[sender_id] = (tokens, now)
                self.rejected.append({"code": THROUGHPUT_LIMIT_CODE, "recipient": recipient, "at": now})
                return False
            self.numbers[sender_id] = (tokens - 1.0, now)
            return True

    def stats(self, prefix: str = "") -> dict[str, Any]:
        """Counts, cheap at 100,000 calls: accepted messages, recipients, the most one got, refusals by code
        (recipients and the histogram: only those whose id starts with ``prefix``)."""
        with self.lock:
            rejected: dict[str, int] = {}
            for item in self.rejected:
                rejected[str(item["code"])] = rejected.get(str(item["code"]), 0) + 1
            histogram: dict[str, int] = {}
            counts = [count for recipient, count in self.per_recipient.items()
                      if recipient.lstrip("+").startswith(prefix)]
            for count in counts:
                histogram[str(count)] = histogram.get(str(count), 0) + 1
            return {"accepted": self.accepted, "recipients": len(counts),
                    "max_per_recipient": max(counts, default=0), "histogram": histogram,
                    "rejected": rejected}

    def take_pair_token(self, sender_id: str, recipient: str) -> bool:
        """False when this pair has used up its burst (caller holds no lock)."""
        with self.lock:
            burst, per = int(self.config["pair_burst"]), float(self.config["pair_per_seconds"])
            if burst <= 0:
                return True
            now = time.monotonic()
            tokens, at = self.pairs.get((sender_id, recipient), (float(burst), now))
            tokens = min(float(burst), tokens + (now - at) / per)
            if tokens < 1.0:
                self.pairs[(sender_id, recipient)] = (tokens, now)
                self.rejected.append({"code": PAIR_RATE_LIMIT_CODE, "recipient": recipient, "at": now})
                return False
            self.pairs[(sender_id, recipient)] = (tokens - 1.0, now)
            return True

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(changes) - set(CONFIG_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown fake config keys {unknown}; "
                             f"expected some of {sorted(CONFIG_DEFAULTS)}")
        with self.lock:
            self.config.update({key: list(value) if isinstance(value, list) else value
                                for key, value in changes.items()})
            return dict(self.config)

    def snapshot(self, since: int = 0) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(call) for call in self.calls[since:]]

    def rejections(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(item) for item in self.rejected]


def _recipient(body: dict[str, Any]) -> str:
    """Whom a message body is for: WhatsApp's ``to``/``recipient``, Messenger's ``recipient.id``."""
    target = body.get("to") or body.get("recipient") or ""
    if isinstance(target, dict):
        return str(target.get("id") or target.get("notification_messages_token") or "")
    return str(target)


def _meta_error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "OAuthException", "code": code,
                      "fbtrace_id": f"Fake{uuid.uuid4().hex[:10]}"}}


class FakeGraphHandler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # see the module docstring
    protocol_version = "HTTP/1.1"  # keep-alive, like Meta, so requests.Session reuses connections
    server: FakeGraphServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request lines name sender ids; the fake stays quiet

    def _answer(self, status: int, payload: Any, *, content_type: str = "application/json") -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout or killed): nothing to tell

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return None

    def do_GET(self) -> None:
        if self.path == "/_fake/calls" or self.path.startswith("/_fake/calls?"):
            since = dict(parse_qsl(self.path.partition("?")[2])).get("since", "0")
            self._answer(200, self.server.state.snapshot(int(since) if since.isdigit() else 0))
        elif self.path.startswith("/_fake/stats"):
            query = dict(parse_qsl(self.path.partition("?")[2]))
            self._answer(200, self.server.state.stats(query.get("prefix", "")))
        elif self.path == "/_fake/rejected":
            self._answer(200, self.server.state.rejections())
        elif (match := _TEMPLATES_PATH.match(self.path)) is not None:
            self._list_templates(match.group(1), match.group(2), match.group(3) or "")
        else:
            self._answer(404, _meta_error(100, "Unknown path components"))

    def do_POST(self) -> None:
        body = self._read_json()
        state = self.server.state
        if self.path == "/_fake/reset":
            state.reset()
            self._answer(200, {"ok": True})
            return
        if self.path == "/_fake/config":
            try:
                config = state.configure(body if isinstance(body, dict) else {})
            except ValueError as exc:
                self._answer(400, {"error": str(exc)})
                return
            self._answer(200, config)
            return
        templates = _TEMPLATES_PATH.match(self.path)
        if templates is not None:
            self._create_template(templates.group(2), body)
            return
        match = _MESSAGES_PATH.match(self.path)
        if match is None:
            self._answer(404, _meta_error(100, "Unknown path components"))
            return
        self._messages(match.group(1), match.group(2), body)

    # -- WhatsApp message templates (GET and POST /{waba id}/message_templates) ----------------------------
    def _authorized(self) -> bool:
        if self.headers.get("Authorization", "").startswith("Bearer "):
            return True
        self._answer(401, _meta_error(190, "Invalid OAuth access token."))
        return False

    def _list_templates(self, version: str, waba_id: str, query: str) -> None:
        """Meta's list, ``limit`` per page (default ``template_page_size``), ``after`` a cursor: the offset."""
        if not self._authorized():
            return
        params = dict(parse_qsl(query.lstrip("?")))
        with self.server.state.lock:
            templates = [dict(t) for t in self.server.state.config["templates"]]
            size = int(params.get("limit") or self.server.state.config["template_page_size"])
        start = int(params.get("after") or 0)
        page: dict[str, Any] = {"data": templates[start:start + size]}
        if start + size < len(templates):
            after = str(start + size)
            page["paging"] = {"cursors": {"before": str(start), "after": after},
                              "next": f"{self.server.url}/{version}/{waba_id}/message_templates?limit={size}"
                                      f"&after={after}"}
        self._answer(200, page)

    def _create_template(self, waba_id: str, body: Any) -> None:
        if not self._authorized():
            return
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str) and body.get(k)
                                                 for k in ("name", "language", "category")):
            self._answer(400, _meta_error(100, "Invalid parameter: name, language and category are required."))
            return
        state = self.server.state
        with state.lock:
            if any(t.get("name") == body["name"] and t.get("language") == body["language"]
                   for t in state.config["templates"]):
                self._answer(400, _meta_error(100, "Content in this language already exists."))
                return
            created = {"id": str(len(state.config["templates"]) + 700000000000000), "name": body["name"],
                       "language": body["language"], "category": str(body["category"]).upper(),
                       "status": state.config["created_template_status"],
                       "components": body.get("components") or []}
            state.config["templates"].append(created)
            state.calls.append({"path": self.path, "version": "", "sender_id": waba_id, "body": body,
                                "authorized": True, "message_id": created["id"], "at": time.monotonic()})
        self._answer(200, {"id": created["id"], "status": created["status"], "category": created["category"]})

    def _messages(self, version: str, sender_id: str, body: Any) -> None:
        state = self.server.state
        with state.lock:
            state.counter += 1
            number = state.counter
            config = dict(state.config)
        if config["delay_seconds"]:
            time.sleep(float(config["delay_seconds"]))
        if not self.headers.get("Authorization", "").startswith("Bearer "):
            self._answer(401, _meta_error(190, "Invalid OAuth access token."))
            return
        if not isinstance(body, dict):
            self._answer(400, _meta_error(100, "The request body is not JSON."))
            return
        if config["permanent_code"] is not None:
            self._answer(400, _meta_error(int(config["permanent_code"]), "Injected permanent error."))
            return
        if config["fail_every"] and number % int(config["fail_every"]) == 0:
            if config["fail_code"] is None:
                self._answer(int(config["fail_status"]), b"<html>Bad gateway</html>",
                             content_type="text/html")
            else:
                self._answer(int(config["fail_status"]),
                             _meta_error(int(config["fail_code"]), "Injected failure."))
            return
        parts = next((parts for parts in channels.every() if parts.dev.owns_body(body)), None)
        if parts is None:
            self._answer(400, _meta_error(100, "The body is no channel's message."))
            return
        if config["sender_ids"] and sender_id not in config["sender_ids"]:
            self._answer(400, _meta_error(100, "Unsupported post request."))
            return
        recipient = _recipient(body)
        message = body.get("status") != "read" and body.get("sender_action") is None
        if message and not state.take_number_token(sender_id, recipient):
            self._answer(400, _meta_error(THROUGHPUT_LIMIT_CODE, "(#130429) Rate limit hit"))
            return
        if parts.dev.pair_limited and message and not state.take_pair_token(sender_id, recipient):
            self._answer(400, _meta_error(PAIR_RATE_LIMIT_CODE, "(#131056) (Business Account, Consumer Account) "
                                                                "pair rate limit hit"))
            return
        answer, message_id = parts.dev.fake_answer(body)
        with state.lock:
            if message:
                state.accepted += 1
                state.per_recipient[recipient] = state.per_recipient.get(recipient, 0) + 1
            if state.config["record_calls"]:
                state.calls.append({"path": self.path, "version": version, "sender_id": sender_id,
                                    "body": body, "authorized": True, "message_id": message_id,
                                    "at": time.monotonic()})
        self._answer(200, answer)


class FakeGraphServer(ThreadingHTTPServer):
    daemon_threads = True  # a handler sleeping on delay_seconds must not block shutdown
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (a killed worker, a closed session) is normal here: no traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), FakeGraphHandler)
        self.state = FakeGraphState()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@dataclass
class FakeGraphHandle:
    """A fake running in a thread of this process. ``url`` is the GRAPH_API_URL (no version)."""

    server: FakeGraphServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return self.server.url

    def calls(self) -> list[dict[str, Any]]:
        return self.server.state.snapshot()

    def reset(self) -> None:
        self.server.state.reset()

    def rejected(self) -> list[dict[str, Any]]:
        return self.server.state.rejections()

    def stats(self) -> dict[str, Any]:
        return self.server.state.stats()

    def configure(self, **changes: Any) -> dict[str, Any]:
        return self.server.state.configure(changes)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_in_thread(port: int = 0) -> FakeGraphHandle:
    """Start the fake on 127.0.0.1:``port`` (0: any free port) in a daemon thread."""
    server = FakeGraphServer(port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="fake-graph", daemon=True)
    thread.start()
    return FakeGraphHandle(server=server, thread=thread)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Graph API on loopback (tests, dev).")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 picks a free one")
    parser.add_argument("--print-url", action="store_true", help="print the base URL on stdout")
    args = parser.parse_args(argv)
    server = FakeGraphServer(args.port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    if args.print_url:
        print(server.url, flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
