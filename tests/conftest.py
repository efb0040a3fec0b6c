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
def plain_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Redis server for the session (REDIS_URL if set, else an embedded one); the Redis Cluster suites keep
    their send queue on it (``BROKER_REDIS_URL``) when they name the cluster as ``redis_url``."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = embedded_redis.start(tmp_path_factory.mktemp("redis"), persist=False)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(plain_redis_url: str) -> str:
    return plain_redis_url


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
def broker_client(plain_redis_url: str) -> Iterator[redis.Redis]:
    """The send queue's database (on the session's plain Redis, also where the Redis Cluster suites keep it)."""
    client = redis.Redis.from_url(broker_url(plain_redis_url))
    try:
        yield client
    finally:
        client.close()


class Notified(list):
    """The learner ids the web app asked to wake the sender for, in order: ``create_app(..., notify=notified)``."""

    def __call__(self, learner_id: str) -> None:
        self.append(learner_id)


@pytest.fixture
def notified() -> Notified:
    return Notified()


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


# -- browser tests (tests/browser.py): Debian's Chromium through Playwright ----------------------------------


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session; fails (never skips) when it cannot start."""
    from playwright.sync_api import sync_playwright

    from tests.browser import launch

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def screenshots(request: pytest.FixtureRequest):
    """This test's screenshot folder under the test output folder (``test-output/browser/<test>/``)."""
    from tests.browser import Screenshots, output_folder

    return Screenshots(output_folder(request.node.name))


@pytest.fixture
def page(browser, screenshots):
    """A fresh page (its own cookies); whatever its console reports is kept on ``page.problems``; a last
    screenshot is taken when the test ends, pass or fail."""
    from tests.browser import VIEWPORT, PageProblems

    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    problems = PageProblems()
    problems.watch(tab)
    tab.problems = problems
    try:
        yield tab
    finally:
        try:
            screenshots.take(tab, "last")
        finally:
            context.close()


@pytest.fixture(scope="module")
def dev_service(tmp_path_factory: pytest.TempPathFactory):
    """The Procfile's web and worker in dev mode (as `make run` runs them: the simulator, the test clock) on
    a copy of the flows folder, so golden conversations saved from the simulator land in the copy."""
    import shutil

    from config.settings import PROJECT_ROOT
    from tests.service import Service

    workdir = tmp_path_factory.mktemp("dev-service")
    flows = workdir / "flows"
    shutil.copytree(PROJECT_ROOT / "flows", flows)
    service = Service(workdir, flows_dir=flows, env="dev")
    service.start()
    try:
        yield service
    finally:
        service.close()


# -- Redis Cluster + RabbitMQ (tests/cluster.py): both exist on every machine; a missing one fails ---------


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A local Redis Cluster (3 primaries + 3 replicas) for the session; its data is flushed by each user."""
    from tests.cluster import LocalCluster

    cluster = LocalCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()
