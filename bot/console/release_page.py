"""The releases page: the live release, the releases before it, and where learners are, per module version and step.

Counting learners reads every progress hash (``releases.learners_by_step``: a scan, pipelined): seconds
with 100,000 learners. So the page never waits for it: a ``Census`` counts in a background thread, keeps
the count, recounts when a page finds it older than ``CENSUS_SECONDS``, and the page says how old it is
(``?count=now`` waits for a fresh count). Diff and publish are ``bot.storage.releases.preview`` and ``publish``,
the same code as ``bottega flows diff`` and ``bottega flows publish``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import redis

from bot.flows.spec import Course
from bot.storage import releases
from bot.storage.encoding import text

CENSUS_SECONDS = 60.0
log = logging.getLogger("bottega.console")


@dataclass(frozen=True, kw_only=True, slots=True)
class ModuleRow:
    module: str
    live_version: int
    by_version: list[tuple[int, int]]  # (version, learners on it now), newest first
    steps: list[tuple[str, int]]  # the live version's steps in order, with learners on each now

    @property
    def learners(self) -> int:
        return sum(count for _, count in self.by_version)


@dataclass(frozen=True, kw_only=True)
class ReleasesPage:
    live: str
    releases: list[str]  # every release number, newest first
    modules: list[ModuleRow] = field(default_factory=list)
    counted: bool = True  # False: the first count is still running
    counted_ago_seconds: int = 0


class Census:
    """``learners_by_step``, counted in a background thread and kept: a page shows the last count at once.

    A count older than ``seconds`` is refreshed in the background when a page asks for it (one count at
    a time per process); nothing is counted while nobody looks. ``wait`` counts now and waits for it.
    """

    def __init__(self, client: redis.Redis, seconds: float = CENSUS_SECONDS):
        self.client, self.seconds = client, seconds
        self._lock = threading.Lock()
        self._at = 0.0
        self._counts: dict[tuple[str, int, str], int] | None = None
        self._running: threading.Thread | None = None

    def counts(self, *, wait: bool = False) -> tuple[dict[tuple[str, int, str], int] | None, int]:
        """The latest count (None: none yet) and its age in seconds; starts a recount when stale."""
        with self._lock:
            stale = self._counts is None or time.monotonic() - self._at > self.seconds
            if stale and (self._running is None or not self._running.is_alive()):
                self._running = threading.Thread(target=self._count, name="console-census", daemon=True)
                self._running.start()
            running = self._running
        if wait and stale and running is not None:
            running.join()
        with self._lock:
            return self._counts, int(time.monotonic() - self._at) if self._counts is not None else 0

    def forget(self) -> None:
        with self._lock:
            self._at = 0.0

    def _count(self) -> None:
        try:
            counts = releases.learners_by_step(self.client)
        except redis.RedisError as error:
            log.warning("console learner count failed: %s", type(error).__name__)
            return
        with self._lock:
            self._counts, self._at = counts, time.monotonic()


def read(client: redis.Redis, course: Course, census: Census, *, wait: bool = False) -> ReleasesPage:
    live = releases.live_release(client)
    newest = int(text(client.get(releases.SEQUENCE_KEY)) or 0)
    found, age = census.counts(wait=wait)
    counts = found or {}
    rows = []
    for module in course.modules:
        flow = course.flows.get(module)
        if flow is None:
            continue
        versions: dict[int, int] = {}
        for (flow_id, version, _), count in counts.items():
            if flow_id == module:
                versions[version] = versions.get(version, 0) + count
        steps = [(step, counts.get((module, flow.version, step), 0)) for step in flow.steps]
        rows.append(ModuleRow(module=module, live_version=flow.version,
                              by_version=sorted(versions.items(), reverse=True), steps=steps))
    return ReleasesPage(live=live, releases=[str(n) for n in range(newest, 0, -1)], modules=rows,
                        counted=found is not None, counted_ago_seconds=age)
