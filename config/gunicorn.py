"""gunicorn settings for the Procfile's ``web:`` process (and the benchmarks, which use this file).

gevent workers: each connection is a greenlet, so a client that sends its request slowly costs a
socket and a few kilobytes, not one of a handful of threads. With gthread (2 processes x 4 threads)
16 connections trickling header bytes took every slot and no webhook was answered; gthread 27 only
sets aside connections that send *nothing* for 5 s. ``bench/slow_clients.py`` measures both.

Every connection also gets deadlines, so one slow client holds its greenlet for a bounded time:
REQUEST_HEADERS_TIMEOUT_SECONDS from accept to the end of the headers, then
REQUEST_BODY_TIMEOUT_SECONDS for the body. Both are totals, not idle timeouts: a byte a second does
not stretch them. Past the headers deadline the socket reads as closed by the client, and gunicorn
drops the connection without an answer; past the body deadline the app's read of the body raises
werkzeug's RequestTimeout, which Flask answers with 408 (Meta retries any answer but 200).

Metrics: the box's prometheus_client folder is prepared here, in gunicorn's master, before the web
processes are forked (``config.metrics``).

Knobs (``config.settings``): WEB_CONCURRENCY processes, WEB_CONNECTIONS connections per process
(replaces WEB_THREADS, which is no longer read), WEB_KEEPALIVE_SECONDS, PORT, BIND_HOST, LOG_LEVEL.
"""

import multiprocessing
import os
import socket
import time
from typing import Any

from gunicorn.workers.ggevent import GeventWorker
from werkzeug.exceptions import RequestTimeout

from config import metrics
from config.settings import Settings

# Meta sends a webhook's headers in one packet and bodies of at most a few hundred KB (our cap is
# Meta's 3 MB); these leave a real client on a poor link ample room and an idle one none.
REQUEST_HEADERS_TIMEOUT_SECONDS = 5.0
REQUEST_BODY_TIMEOUT_SECONDS = 10.0


class _ReadDeadlineSocket:
    """A client socket whose reads stop at ``deadline`` (``time.monotonic()``): as if the peer had
    closed while gunicorn reads the headers, with RequestTimeout while the app reads the body.
    Writes and everything else go straight to the socket."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self._sock = sock
        self.phase = "headers"
        self.deadline = time.monotonic() + seconds
        self.expired = False

    def recv(self, size: int, *flags: int) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining > 0:
            self._sock.settimeout(remaining)  # gevent: bookkeeping in the hub, no system call
            try:
                data: bytes = self._sock.recv(size, *flags)
                return data
            except TimeoutError:
                pass
            finally:
                self._sock.settimeout(None)
        self.expired = True
        if self.phase == "body":  # inside the app: Flask turns this into a 408 answer
            raise RequestTimeout(f"request body not received within {REQUEST_BODY_TIMEOUT_SECONDS:.0f} s")
        return b""  # not an exception: gunicorn's parser would log a traceback and answer 500

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class DeadlineGeventWorker(GeventWorker):
    """gunicorn's gevent worker with the read deadlines above on every connection."""

    def handle(self, listener: socket.socket, client: socket.socket, addr: Any) -> None:
        sock = _ReadDeadlineSocket(client, REQUEST_HEADERS_TIMEOUT_SECONDS)
        super().handle(listener, sock, addr)  # the wrapper stands in for the socket
        if sock.expired:  # no client address: it is no use to us and may identify a person
            timeout = REQUEST_HEADERS_TIMEOUT_SECONDS if sock.phase == "headers" else REQUEST_BODY_TIMEOUT_SECONDS
            self.log.info("slow client: request %s not received within %.0f s; connection closed",
                          sock.phase, timeout)

    def handle_request(self, listener_name: str, req: Any, sock: _ReadDeadlineSocket, addr: Any) -> Any:
        # the headers are in (the app reads the body): the body gets its own deadline from now
        sock.phase = "body"
        sock.deadline = time.monotonic() + REQUEST_BODY_TIMEOUT_SECONDS
        try:
            return super().handle_request(listener_name, req, sock, addr)
        finally:  # a kept-alive connection: the next request may idle for keepalive s, then has its headers deadline
            if not sock.expired:  # (an expired one is closed, and handle() logs which deadline it missed)
                sock.phase = "headers"
                sock.deadline = time.monotonic() + self.cfg.keepalive + REQUEST_HEADERS_TIMEOUT_SECONDS


_settings = Settings.from_env(require_secrets=False)  # the app checks the secrets when it starts
# the box's metrics folder, before any web process imports prometheus_client (they inherit the setting)
metrics.prepare(_settings.metrics_path)


def child_exit(server: Any, worker: Any) -> None:
    """A web process exited: its live gauges go (its counters stay in the box's totals)."""
    metrics.process_gone(worker.pid, _settings.metrics_path)


bind = f"{_settings.bind_host}:{_settings.port}"
workers = _settings.web_processes(multiprocessing.cpu_count())
worker_class = DeadlineGeventWorker
# Connections per process: each is a greenlet (a request in the app holds one Redis connection from
# the pool while it runs). Open file limits must allow it; past it, new connections wait in the backlog.
worker_connections = _settings.web_connections
timeout = 30  # seconds without a heartbeat: only a process whose event loop is stuck (CPU, C code)
graceful_timeout = 10  # seconds a stopping process gives the connections it holds (slow ones are cut then)
# Keep-alive (WEB_KEEPALIVE_SECONDS, default 5 s): a new TCP connection per webhook cost the web process and
# the sender a connect and a close each time. A connection stays with the process that accepted it, which
# with gthread left one of two cores idle under a few persistent senders (bench/README.md); gevent processes
# each take connections as they come, and bench/e2e.py measures the split and the tail. 0 closes after each answer.
keepalive = _settings.web_keepalive_seconds
# The heartbeat touches a file every second from the event loop; on a disk-backed /tmp (ext4 here) that
# call can block for a while, and in a gevent worker a blocked call stalls every connection of the
# process: a file in memory cannot block.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = None  # access lines would carry nothing useful and cost time; the app logs per batch
errorlog = "-"
loglevel = (_settings.log_level or "info").lower()
# gunicorn 27 opens a control socket at one fixed path per user (~/.gunicorn/gunicorn.ctl), shared by
# every gunicorn on the machine (dev server, tests, benchmark); we do not use it, so we do not open it.
control_socket_disable = True
