"""Published course releases on Redis: publish, diff, and the per-process registry that follows them.

A *release* is the whole ``flows/`` folder (file name -> YAML text) stored as one hash; ``live`` names
the release every process serves. Publishing validates first (a broken course is never stored), then
refuses a changed module whose ``version`` was not bumped, so (module id, version) always means one
content. Each process keeps every module version of every release it has seen — a learner continues
on the version they started, so every version a learner may still be on stays loadable.

Processes notice a new release at once: the dispatcher reads ``live`` in the same pipeline that loads
the learner (no extra round trip) and asks the registry for the matching engine; a release that fails
to load is logged and the last good engine keeps serving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import redis

from bot.engine import Engine
from bot.flows.loader import load_course_texts
from bot.flows.problems import FlowError, Problem
from bot.flows.spec import Course, Flow
from bot.keys import LearnerPart, global_key, learner_key_pattern
from bot.store import LIVE_RELEASE_KEY

log = logging.getLogger(__name__)

LIVE_KEY = LIVE_RELEASE_KEY  # string: the live release number (read by the store with each learner)
SEQUENCE_KEY = global_key("course:sequence")  # counter of release numbers


def release_key(release: str) -> str:
    return global_key(f"course:release:{release}")  # hash: file name -> YAML text


def flow_content(flow: Flow) -> Flow:
    """A flow without its positions and file name: two versions are 'the same' when these are equal."""
    return replace(flow, source="", steps={k: replace(s, line=0) for k, s in flow.steps.items()})


# -- publishing -------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Published:
    release: str
    changed: tuple[str, ...]  # modules whose version changed (new or bumped)
    unchanged: bool = False  # the folder is already live


def stored_release(client: redis.Redis, release: str) -> dict[str, str]:
    raw = client.hgetall(release_key(release))
    return {k.decode(): v.decode() for k, v in raw.items()}


def live_release(client: redis.Redis) -> str:
    value = client.get(LIVE_KEY)
    return value.decode() if value else ""


def publish(client: redis.Redis, files: Mapping[str, str], *, folder: str = "flows") -> Published:
    """Validate ``files`` and make them the live release for every process (raises FlowError)."""
    course = load_course_texts(files, folder=folder)
    live = live_release(client)
    if live:
        current = stored_release(client, live)
        if current == dict(files):
            return Published(release=live, changed=(), unchanged=True)
        _refuse_unbumped(course, _all_flows(client, live), folder)
    release = str(client.incr(SEQUENCE_KEY))
    pipe = client.pipeline(transaction=True)
    pipe.hset(release_key(release), mapping=dict(files))
    pipe.set(LIVE_KEY, release)
    pipe.execute()
    old = load_course_texts(stored_release(client, live)) if live else None
    changed = tuple(fid for fid, flow in course.flows.items()
                    if old is None or fid not in old.flows or old.flows[fid].version != flow.version)
    log.info("published course release %s (changed modules: %s)", release, ", ".join(changed) or "none")
    return Published(release=release, changed=changed)


def _all_flows(client: redis.Redis, up_to: str) -> dict[tuple[str, int], Flow]:
    flows: dict[tuple[str, int], Flow] = {}
    for number in range(1, int(up_to) + 1):
        files = stored_release(client, str(number))
        if files:
            for flow in load_course_texts(files).flows.values():
                flows[(flow.id, flow.version)] = flow
    return flows


def _refuse_unbumped(course: Course, known: dict[tuple[str, int], Flow], folder: str) -> None:
    problems = []
    for flow in course.flows.values():
        before = known.get((flow.id, flow.version))
        if before is not None and flow_content(before) != flow_content(flow):
            problems.append(Problem(
                file=flow.source or f"{folder}/{flow.id}.yaml", line=1, column=1,
                message=f"module '{flow.id}' changed but is still version {flow.version}, which learners "
                        "may be on", fix=f"set 'version: {max(v for f, v in known if f == flow.id) + 1}'"))
    if problems:
        raise FlowError(problems)


# -- diff -------------------------------------------------------------------------------------------
@dataclass
class StepReport:
    step: str
    learners: int
    change: str  # "removed" | "changed"
    covered_by: str = ""  # where learners go: the same step id in the new version, or migrate's target


@dataclass
class FlowDiff:
    flow: str
    live_version: int
    new_version: int
    steps: list[StepReport] = field(default_factory=list)
    learners_on_older_versions: int = 0


def diff(client: redis.Redis, files: Mapping[str, str], *, folder: str = "flows") -> list[FlowDiff]:
    """What publishing ``files`` would change for the learners on the live release."""
    course = load_course_texts(files, folder=folder)
    live = live_release(client)
    old = load_course_texts(stored_release(client, live)) if live else None
    where = _learners_by_step(client)
    report = []
    for flow_id, new in course.flows.items():
        before = old.flows.get(flow_id) if old else None
        if before is None or flow_content(before) == flow_content(new):
            continue
        entry = FlowDiff(flow=flow_id, live_version=before.version, new_version=new.version)
        for step_id, step in before.steps.items():
            count = where.get((flow_id, before.version, step_id), 0)
            if step_id not in new.steps:
                entry.steps.append(StepReport(step=step_id, learners=count, change="removed",
                                              covered_by=new.migrate.get(step_id, "")))
            elif replace(new.steps[step_id], line=0) != replace(step, line=0):
                entry.steps.append(StepReport(step=step_id, learners=count, change="changed", covered_by=step_id))
        entry.learners_on_older_versions = sum(n for (f, v, _), n in where.items()
                                               if f == flow_id and v < before.version)
        report.append(entry)
    return report


def describe_diff(report: list[FlowDiff]) -> str:
    if not report:
        return "No module changes against the live course."
    lines = []
    for entry in report:
        lines.append(f"{entry.flow}: live version {entry.live_version} -> {entry.new_version}"
                     + ("" if entry.new_version > entry.live_version else "  (bump 'version' before publishing!)"))
        for step in entry.steps:
            if step.change == "removed":
                where = f"migrate sends them to '{step.covered_by}'" if step.covered_by else \
                    "not covered: they finish on the old version (add 'migrate:' to move them)"
            else:
                where = "they see the new text from their next step"
            lines.append(f"  step '{step.step}' {step.change}: {step.learners} learner(s) waiting — {where}")
        if entry.learners_on_older_versions:
            lines.append(f"  {entry.learners_on_older_versions} learner(s) are still on older versions")
    return "\n".join(lines)


def _learners_by_step(client: redis.Redis) -> dict[tuple[str, int, str], int]:
    counts: dict[tuple[str, int, str], int] = {}
    for key in client.scan_iter(match=learner_key_pattern(LearnerPart.PROGRESS), count=500):
        flow, version, step = client.hmget(key, "flow", "flow_version", "step")
        if flow and step:
            where = (flow.decode(), int(version or 0), step.decode())
            counts[where] = counts.get(where, 0) + 1
    return counts


# -- the per-process registry ------------------------------------------------------------------------
class Registry:
    """The engine for the live release, rebuilt when ``live`` moves; old module versions kept."""

    def __init__(self, client: redis.Redis, engine: Engine, release: str, public_base_url: str = ""):
        self.client = client
        self.public_base_url = public_base_url
        self.engine = engine
        self.release = release
        self._lock = threading.Lock()
        self._seen: set[str] = {release} if release else set()

    @classmethod
    def open(cls, client: redis.Redis, files: Mapping[str, str], *, folder: str = "flows",
             public_base_url: str = "") -> Registry:
        """Serve the live release; publish ``files`` first if nothing was ever published."""
        load_course_texts(files, folder=folder)  # the deployed folder must pass the check, or we refuse
        if not live_release(client):
            publish(client, files, folder=folder)
        release = live_release(client)
        engine = Engine(load_course_texts(stored_release(client, release)),
                        older=_all_flows(client, release).values(), public_base_url=public_base_url)
        return cls(client, engine, release, public_base_url)

    def engine_for(self, release: str) -> Engine:
        if not release or release == self.release:
            return self.engine
        with self._lock:
            if release != self.release:
                self._reload(release)
        return self.engine

    def _reload(self, release: str) -> None:
        try:
            course = load_course_texts(stored_release(self.client, release))
            older = dict(self.engine.flows)
            for number in range(1, int(release) + 1):
                if str(number) not in self._seen:
                    files = stored_release(self.client, str(number))
                    for flow in load_course_texts(files).flows.values() if files else ():
                        older.setdefault((flow.id, flow.version), flow)
                    self._seen.add(str(number))
            self.engine = Engine(course, older=older.values(), machines=self.engine.machines,
                                 public_base_url=self.public_base_url)
            self.release = release
            log.info("now serving course release %s", release)
        except (FlowError, redis.RedisError, ValueError) as error:
            log.error("course release %s not loaded, still serving %s: %s", release, self.release,
                      type(error).__name__)
            self.release = release  # do not retry on every message; the next publish tries again


class FixedRegistry:
    """One engine, no releases: the terminal chat and tests that do not publish."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def engine_for(self, release: str) -> Engine:
        return self.engine
