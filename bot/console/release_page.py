"""The releases page: the live release, the releases before it, and where learners are, per module version and step.

Counting learners reads every progress hash (``releases.learners_by_step``: a scan, pipelined); with
100,000 learners that is most of the page's time, so the count is kept ``CENSUS_SECONDS`` in this process
and the page says how old it is. Diff and publish are ``bot.storage.releases.preview`` and ``publish``,
the same code as ``bottega flows diff`` and ``bottega flows publish``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import redis

from bot.flows.spec import Course
from bot.storage import releases
from bot.storage.encoding import text

CENSUS_SECONDS = 30.0


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
    counted_ago_seconds: int = 0


class Census:
    """``learners_by_step`` kept a little while (one per console)."""

    def __init__(self, client: redis.Redis, seconds: float = CENSUS_SECONDS):
        self.client, self.seconds = client, seconds
        self._lock = threading.Lock()
        self._at = 0.0
        self._counts: dict[tuple[str, int, str], int] = {}

    def counts(self, *, fresh: bool = False) -> tuple[dict[tuple[str, int, str], int], int]:
        with self._lock:
            now = time.monotonic()
            if fresh or not self._at or now - self._at > self.seconds:
                self._counts, self._at = releases.learners_by_step(self.client), now
            return self._counts, int(now - self._at)

    def forget(self) -> None:
        with self._lock:
            self._at = 0.0


def read(client: redis.Redis, course: Course, census: Census) -> ReleasesPage:
    live = releases.live_release(client)
    newest = int(text(client.get(releases.SEQUENCE_KEY)) or 0)
    counts, age = census.counts()
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
                        counted_ago_seconds=age)
