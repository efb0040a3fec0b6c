"""Shared fixtures: a real Redis for every test (REDIS_URL if set, else an embedded redis-server).

Each test starts on an empty database (FLUSHDB before the test), like rq's suite.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.dev import embedded_redis
from bot.dev.fake_graph import FakeGraphHandle, serve_in_thread
from config.settings import broker_url

TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = embedded_redis.start(tmp_path_factory.mktemp("redis"), persist=False)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    broker = redis.Redis.from_url(broker_url(redis_url))  # the send queue's database
    broker.flushdb()
    broker.close()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def broker_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(broker_url(redis_url))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def course():
    from bot.flows.loader import load_course
    from config.settings import PROJECT_ROOT

    return load_course(PROJECT_ROOT / "flows")


@pytest.fixture
def settings(redis_url: str, tmp_path: Path):
    from config.settings import Settings

    return Settings.from_env({"BOTTEGA_ENV": "test", "META_APP_SECRET": "test-app-secret",
                              "META_VERIFY_TOKEN": "test-verify-token", "WHATSAPP_TOKEN": "wa-token",
                              "WHATSAPP_PHONE_NUMBER_ID": "100000000000001",
                              "MESSENGER_PAGE_TOKEN": "page-token", "REDIS_URL": redis_url,
                              "BOTTEGA_VAR_DIR": str(tmp_path / "var")})


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeGraphHandle]:
    """The project's fake Graph API on loopback, one per test module."""
    handle = serve_in_thread()
    yield handle
    handle.stop()


@pytest.fixture
def fake(fake_server: FakeGraphHandle) -> FakeGraphHandle:
    """The fake Graph API with no recorded calls and the default behaviour."""
    fake_server.reset()
    return fake_server
