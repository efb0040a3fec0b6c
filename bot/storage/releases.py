"""Published course releases on Redis: publish, diff, and the per-process registry that follows them.

A *release* is the whole ``flows/`` folder (file name -> YAML text) stored as one hash; ``live`` names
the release every process serves. Publishing validates first (a broken course is never stored), then
refuses a changed module whose ``version`` was not bumped, so (module id, version) always means one
content. Each process keeps every module version of every release it has seen — a learner continues
on the version they started, so every version a learner may still be on stays loadable.
A release is labelled with what it changes for learners (``describe_changes``: modules added,
removed, reordered or bumped, texts changed); ``preview`` shows that label and the learners waiting
on each changed step before anything is published (``bottega flows diff``).

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

from bot.flows.loader import key_position, load_course_texts
from bot.flows.problems import FlowError, Problem, Severity
from bot.flows.spec import CheckUp, Course, Flow
from bot.proactive.policy import Policy
from bot.storage.encoding import hash_fields, text
from bot.storage.keys import SHARDS, LearnerPart, global_key, learner_key_pattern, live_release_key
from bot.storage.store import LIVE_RELEASE_KEY
from bot.tutor.engine import Engine

log = logging.getLogger(__name__)

LIVE_KEY = LIVE_RELEASE_KEY  # string: the live release number (read by the store with each learner)
SEQUENCE_KEY = global_key("course:sequence")  # counter of release numbers
LEARNER_SCAN_BATCH = 1000  # progress hashes read per pipeline when counting learners per step


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
    summary: str = ""  # what learners will notice, for the line `flows publish` and `make run` print


def stored_release(client: redis.Redis, release: str) -> dict[str, str]:
    raw = client.hgetall(release_key(release))
    return {text(k): text(v) for k, v in raw.items()}


def live_release(client: redis.Redis) -> str:
    return text(client.get(LIVE_KEY))


def set_live(client: redis.Redis, release: str) -> None:
    """Make ``release`` live: every shard of the live pointer (each learner's load reads theirs), then the
    legacy key (``live_release``). Keys of many slots, so not one transaction: a process may see the new
    release for some learners a moment before others, which serves both (every version stays loadable)."""
    pipe = client.pipeline(transaction=False)
    for shard in range(SHARDS):
        pipe.set(live_release_key(shard), release)
    pipe.execute()
    client.set(LIVE_KEY, release)


def sync_live_shards(client: redis.Redis) -> None:
    """Data from before the shards: copy the live release into them when they lack it (at process start)."""
    live = live_release(client)
    if live and text(client.get(live_release_key(0))) != live:
        set_live(client, live)


def publish(client: redis.Redis, files: Mapping[str, str], *, folder: str = "flows") -> Published:
    """Validate ``files`` and make them the live release for every process (raises FlowError)."""
    course = load_course_texts(files, folder=folder)
    live = live_release(client)
    old: Course | None = None
    if live:
        current = stored_release(client, live)
        if current == dict(files):
            return Published(release=live, changed=(), unchanged=True, summary="unchanged")
        problems = unbumped_modules(course, published_flows(client, live), files, folder)
        if problems:
            raise FlowError(problems)
        old = _load_release(current)
    release = str(client.incr(SEQUENCE_KEY))
    client.hset(release_key(release), mapping=hash_fields(files))  # stored first: "live" never names a void
    set_live(client, release)
    changed = tuple(fid for fid, flow in course.flows.items()
                    if old is None or fid not in old.flows or old.flows[fid].version != flow.version)
    summary = describe_changes(old, course) if old or not live else f"replaces release {live}, which did not load"
    log.info("published course release %s (changed modules: %s)", release, ", ".join(changed) or "none")
    return Published(release=release, changed=changed, summary=summary)


def _load_release(files: Mapping[str, str]) -> Course | None:
    """A stored release's course; None if it does not load (only a release stored by hand can be broken)."""
    try:
        return load_course_texts(files) if files else None
    except FlowError:
        return None


def published_flows(client: redis.Redis, up_to: str = "") -> dict[tuple[str, int], Flow]:
    """Every module version published up to release ``up_to`` (default: the live one)."""
    flows: dict[tuple[str, int], Flow] = {}
    for number in range(1, int(up_to or live_release(client) or 0) + 1):
        course = _load_release(stored_release(client, str(number)))
        for flow in course.flows.values() if course else ():
            flows[(flow.id, flow.version)] = flow
    return flows


def unbumped_modules(course: Course, known: Mapping[tuple[str, int], Flow], files: Mapping[str, str],
                     folder: str, severity: Severity = Severity.ERROR) -> list[Problem]:
    """Modules whose content differs from a published one with the same version (publishing refuses them)."""
    problems = []
    for flow in course.flows.values():
        before = known.get((flow.id, flow.version))
        if before is None or flow_content(before) == flow_content(flow):
            continue
        line, column = key_position(files.get(f"{flow.id}.yaml", ""), "version")
        problems.append(Problem(
            file=flow.source or f"{folder}/{flow.id}.yaml", line=line, column=column, severity=severity,
            message=f"module '{flow.id}' changed but is still version {flow.version}, which learners may be on"
                    + (" (publishing refuses it)" if severity is Severity.WARNING else ""),
            fix=f"set 'version: {max(v for f, v in known if f == flow.id) + 1}'"))
    return problems


def describe_changes(old: Course | None, new: Course) -> str:
    """What a release changes for learners, in one line: modules added, removed, reordered, bumped; texts."""
    if old is None:
        return f"first release: {len(new.modules)} modules"
    parts = []
    added = [m for m in new.modules if m not in old.modules]
    removed = [m for m in old.modules if m not in new.modules]
    if added:
        parts.append("modules added: " + ", ".join(added))
    if removed:
        parts.append("modules removed: " + ", ".join(removed))
    if [m for m in old.modules if m in new.modules] != [m for m in new.modules if m in old.modules]:
        parts.append("modules reordered")
    bumped = [f"{m} {old.flows[m].version}→{new.flows[m].version}" for m in new.modules
              if m in old.flows and old.flows[m].version != new.flows[m].version]
    if bumped:
        parts.append("bumped: " + ", ".join(bumped))
    unbumped = [m for m in new.modules if m in old.flows and old.flows[m].version == new.flows[m].version
                and flow_content(old.flows[m]) != flow_content(new.flows[m])]
    if unbumped:  # only a preview meets these: publishing refuses them
        parts.append("changed without a new version: " + ", ".join(unbumped))
    texts = sorted(key for key in {*old.texts, *new.texts} if old.texts.get(key) != new.texts.get(key))
    if texts:
        shown = ", ".join(texts[:4]) + (f" and {len(texts) - 4} more" if len(texts) > 4 else "")
        parts.append(f"system texts changed: {shown}")
    if (old.title, old.support_email, old.business_types) != (new.title, new.support_email, new.business_types):
        parts.append("course title, support e-mail or business types changed")
    if _checkup_content(old) != _checkup_content(new):
        versions = (old.checkup.version if old.checkup else 0, new.checkup.version if new.checkup else 0)
        parts.append("check-up changed" + (f" (version {versions[0]}→{versions[1]})" if versions[0] != versions[1]
                                           else ""))
    return "; ".join(parts) or "no change learners can see (comments or formatting only)"


def _checkup_content(course: Course) -> CheckUp | None:
    return replace(course.checkup, source="") if course.checkup else None


def live_warnings(client: redis.Redis, course: Course, files: Mapping[str, str], *,
                  folder: str = "flows") -> tuple[str, list[Problem]]:
    """Compare a folder that passed the check with the live release: (which release, the warnings)."""
    live = live_release(client)
    if not live:
        return "", []
    return live, unbumped_modules(course, published_flows(client, live), files, folder, Severity.WARNING)


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


def diff(client: redis.Redis, files: Mapping[str, str], *, folder: str = "flows",
         learners: Mapping[tuple[str, int, str], int] | None = None) -> list[FlowDiff]:
    """What publishing ``files`` would change for the learners on the live release, module by module.

    ``learners``: a recent ``learners_by_step`` count to use (the console keeps one); default: count now."""
    course = load_course_texts(files, folder=folder)
    live = live_release(client)
    old = _load_release(stored_release(client, live)) if live else None
    where = learners if learners is not None else _learners_by_step(client)
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


@dataclass(frozen=True, kw_only=True)
class Preview:
    text: str
    publishable: bool  # publishing would change something and would not be refused


def preview(client: redis.Redis, files: Mapping[str, str], *, folder: str = "flows",
            learners: Mapping[tuple[str, int, str], int] | None = None) -> Preview:
    """``bottega flows diff``: the release line publishing would print, then the learners it affects."""
    course = load_course_texts(files, folder=folder)
    live = live_release(client)
    if not live:
        return Preview(text=f"No release is live yet: publishing makes {folder} the first release "
                            f"({len(course.modules)} modules).", publishable=True)
    current = stored_release(client, live)
    if current == dict(files):
        return Preview(text=f"Nothing to publish: {folder} is live release {live}.", publishable=False)
    lines = [f"Publishing {folder} over live release {live}: {describe_changes(_load_release(current), course)}"]
    refused = unbumped_modules(course, published_flows(client, live), files, folder)
    lines += [str(problem) for problem in refused]
    lines.append(describe_diff(diff(client, files, folder=folder, learners=learners)))
    if refused:
        lines.append("Publishing would be refused: raise the versions above.")
    return Preview(text="\n".join(lines), publishable=not refused)


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
    """(module, version, step) -> learners there now: a scan of every progress hash, read in pipelined batches."""
    counts: dict[tuple[str, int, str], int] = {}
    batch: list[bytes] = []

    def count(keys: list[bytes]) -> None:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, "flow", "flow_version", "step")
        for flow, version, step in pipe.execute():
            if flow and step:
                where = (text(flow), int(version or 0), text(step))
                counts[where] = counts.get(where, 0) + 1

    for key in client.scan_iter(match=learner_key_pattern(LearnerPart.PROGRESS), count=1000):
        batch.append(key)
        if len(batch) >= LEARNER_SCAN_BATCH:
            count(batch)
            batch = []
    if batch:
        count(batch)
    return counts


def learners_by_step(client: redis.Redis) -> dict[tuple[str, int, str], int]:
    """(module, version, step) -> how many learners are on it now (the admin console's release page)."""
    return _learners_by_step(client)


# -- the per-process registry ------------------------------------------------------------------------
class Registry:
    """The engine for the live release, rebuilt when ``live`` moves; old module versions kept."""

    def __init__(self, client: redis.Redis, engine: Engine, release: str, public_base_url: str = "",
                 policy: Policy | None = None):
        self.client = client
        self.public_base_url = public_base_url
        self.policy = policy or engine.policy  # the rules of writing first, from the settings
        self.engine = engine
        self.release = release
        self._lock = threading.Lock()
        self._seen: set[str] = {release} if release else set()

    @classmethod
    def open(cls, client: redis.Redis, files: Mapping[str, str], *, folder: str = "flows",
             public_base_url: str = "", policy: Policy | None = None) -> Registry:
        """Serve the live release; publish ``files`` first if nothing was ever published.

        With no live release the folder must pass the check (``FlowError`` names file, line and fix,
        and the process refuses to start). With one, a broken folder (a draft saved mid-edit, a bad
        deploy) is logged and the live release keeps being served: the service keeps what it had.

        A live release this code can no longer read (a deploy whose code requires a system text the
        release predates) is replaced by the folder shipped with the code, published as any release
        is (refused, and the process with it, if it would strand learners), and the reason is logged.
        """
        if not live_release(client):
            publish(client, files, folder=folder)
        else:
            sync_live_shards(client)
            try:
                load_course_texts(files, folder=folder)
            except FlowError as error:
                log.error("the flows folder does not pass the check; serving the live release %s:\n%s",
                          live_release(client), error)
        try:
            return cls.serving_live(client, public_base_url=public_base_url, policy=policy)
        except FlowError as unreadable:
            log.error("live release %s does not load with this version of Bottega; publishing %s instead:\n%s",
                      live_release(client), folder, unreadable)
            published = publish(client, files, folder=folder)
            log.warning("published release %s — %s", published.release, published.summary)
            return cls.serving_live(client, public_base_url=public_base_url, policy=policy)

    @classmethod
    def serving_live(cls, client: redis.Redis, *, public_base_url: str = "", policy: Policy | None = None) -> Registry:
        """Serve the live release whatever any folder holds (``bottega chat``: what learners get now)."""
        release = live_release(client)
        if not release:
            raise LookupError("no course release is live yet; publish one with 'bottega flows publish'")
        engine = Engine(load_course_texts(stored_release(client, release)),
                        older=published_flows(client, release).values(), public_base_url=public_base_url,
                        policy=policy)
        return cls(client, engine, release, public_base_url, policy)

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
                                 public_base_url=self.public_base_url, policy=self.policy)
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
