"""Per-message cost against flow size: the shipped module 1 versus a generated 2,000-step flow.

The big flow is a valid course in a temporary flows directory (``course.yaml`` listing it,
``system.yaml`` copied from ``flows/``): 2,000 lesson steps, each with one choice ``next`` to the
following step, a quiz step after every 400th lesson, and an end step. We time the one-off build
(``load_course`` and ``Engine(course)``) and, per message, ``Engine.step`` (no I/O) and
``Dispatcher.handle`` on the real Redis, for learners positioned at steps spread over each flow.
"""

from __future__ import annotations

import cProfile
import pstats
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bench import traffic
from bot.channels.whatsapp import WHATSAPP
from bot.dispatch import Dispatcher
from bot.flows.loader import load_course
from bot.flows.spec import Course
from bot.model.events import EventKind, InboundEvent
from bot.storage.releases import FixedRegistry
from bot.storage.store import Store
from bot.tutor.engine import Engine
from bot.tutor.progress import Progress

BIG_FLOW = "big"
BIG_LESSONS = 2000
QUIZ_EVERY = 400
SHIPPED_FLOW = "m1_contatto"
# (step, tap) pairs for the shipped flow: every step that takes input, with a valid choice or answer
SHIPPED_TAPS = (("intro", "go"), ("lesson_1", "done"), ("lesson_2", "later"), ("lesson_3", "done"),
                ("q1", "a"), ("q2", "b"), ("q3", "quick"), ("q4", "b"))
STEP_REPEATS = 400  # Engine.step calls per position, in STEP_BATCHES batches
STEP_BATCHES = 5
HANDLES_PER_KIND = 300  # Dispatcher.handle calls per flow and kind of tap


@dataclass
class FlowFigures:
    steps: int
    load_ms: float
    machines_ms: float
    step_us: dict[str, float] = field(default_factory=dict)  # kind of tap -> mean µs per Engine.step
    handle_us: dict[str, float] = field(default_factory=dict)  # kind -> median µs per Dispatcher.handle


def write_big_flow(flows_dir: Path, source_flows: Path) -> None:
    flows_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(source_flows / "system.yaml", flows_dir / "system.yaml")
    (flows_dir / "course.yaml").write_text(
        'course:\n  title: {it: "Corso grande", en: "Big course"}\n  support_email: "aiuto@bottega.example"\n'
        f"  modules:\n    - {BIG_FLOW}\n", encoding="utf-8")
    lines = [f"flow: {BIG_FLOW}", "version: 1", 'title: {it: "Modulo grande", en: "Big module"}',
             'short_title: {it: "Grande", en: "Big"}', "start: s0001", "steps:"]
    for n in range(1, BIG_LESSONS + 1):
        after = f"s{n + 1:04d}" if n < BIG_LESSONS else "fine"
        if n % QUIZ_EVERY == 0:
            quiz = f"q{n // QUIZ_EVERY}"
            lines += _quiz(quiz, after)
            after = quiz
        lines += [f"  - id: s{n:04d}", "    say:", f'      it: "Lezione {n}: un testo breve, come nel modulo 1."',
                  f'      en: "Lesson {n}: a short text, as in module 1."', "    choices:", "      - id: next",
                  '        label: {it: "Avanti", en: "Next"}', f"        next: {after}"]
    lines += ["  - id: fine", "    kind: summary", "    say:", '      it: "Fatto: {score} su {max_score}."',
              '      en: "Done: {score} of {max_score}."', "    end: true"]
    (flows_dir / f"{BIG_FLOW}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _quiz(quiz_id: str, after: str) -> list[str]:
    options = []
    for option, correct in (("a", True), ("b", False)):
        options += [f"        - id: {option}", f'          label: {{it: "Risposta {option}", en: "Answer {option}"}}',
                    f'          feedback: {{it: "Spiegazione {option}.", en: "Why {option}."}}']
        if correct:
            options.append("          correct: true")
    return [f"  - id: {quiz_id}", "    kind: quiz", "    quiz:",
            f'      question: {{it: "Domanda {quiz_id}?", en: "Question {quiz_id}?"}}', "      options:",
            *options, f"    next: {after}"]


def big_taps(course: Course) -> tuple[tuple[str, str], ...]:
    flow = course.flows[BIG_FLOW]
    lessons = [(f"s{n:04d}", "next") for n in range(1, BIG_LESSONS + 1, 20)]
    quizzes = [(step.id, "a") for step in flow.steps.values() if step.quiz]
    return tuple(lessons + quizzes)


def _positioned(flow_id: str, course: Course, step: str, learner: int, now_ms: int) -> Progress:
    phone = traffic.phone(learner)
    flow = course.flows[flow_id]
    business = course.business_types[0].id if course.business_types else ""
    return Progress(learner_id=f"wa:{phone}", channel=WHATSAPP, user_id=phone, phone=phone,
                    name="Learner", lang="it", lang_chosen=True, business=business, flow=flow_id,
                    flow_version=flow.version,
                    step=step, answers={flow_id: {}}, module_scores={flow_id: [0, flow.max_score]},
                    reply_from=traffic.PHONE_NUMBER_ID, created_at_ms=now_ms, updated_at_ms=now_ms,
                    last_inbound_at_ms=now_ms, rev=1)


def _tap(progress: Progress, flow_id: str, step: str, trigger: str) -> InboundEvent:
    return InboundEvent(channel=WHATSAPP, kind=EventKind.CHOICE, user_id=progress.user_id,
                        reply_from=traffic.PHONE_NUMBER_ID, message_id=traffic.wamid(), phone=progress.phone,
                        profile_name="Learner", text=trigger, payload=f"c:{flow_id}:{step}:{trigger}")


def _kind(course: Course, flow_id: str, step: str) -> str:
    return "quiz answer" if course.flows[flow_id].steps[step].quiz else "lesson tap"


def time_engine_steps(engine: Engine, flow_id: str, taps: tuple[tuple[str, str], ...]) -> dict[str, float]:
    """µs per ``Engine.step`` for each kind of tap, averaged over learners positioned at every tap's
    step; per position the fastest of STEP_BATCHES batches counts (others' load only adds time)."""
    now_ms = int(time.time() * 1000)
    spent: dict[str, list[float]] = {}
    per_batch = STEP_REPEATS // STEP_BATCHES
    for learner, (step, trigger) in enumerate(taps):
        progress = _positioned(flow_id, engine.course, step, learner, now_ms)
        event = _tap(progress, flow_id, step, trigger)
        engine.step(progress, event)
        batches = []
        for _ in range(STEP_BATCHES):
            started = time.perf_counter_ns()
            for _ in range(per_batch):
                engine.step(progress, event)
            batches.append((time.perf_counter_ns() - started) / per_batch / 1000)
        spent.setdefault(_kind(engine.course, flow_id, step), []).append(min(batches))
    return {kind: statistics.fmean(values) for kind, values in spent.items()}


def time_handles(client: redis.Redis, store: Store, engine: Engine, flow_id: str,
                 taps: tuple[tuple[str, str], ...]) -> dict[str, float]:
    """Median µs per ``Dispatcher.handle`` on Redis (notify is a no-op here; the enqueue is measured apart)."""
    dispatcher = Dispatcher(store=store, engines=FixedRegistry(engine), notify=lambda lid: None)
    now_ms = int(time.time() * 1000)
    spent: dict[str, list[float]] = {}
    kinds = {kind: [tap for tap in taps if _kind(engine.course, flow_id, tap[0]) == kind]
             for kind in ("lesson tap", "quiz answer")}
    learner = 0
    for kind, chosen in kinds.items():
        for index in range(HANDLES_PER_KIND):
            step, trigger = chosen[index % len(chosen)]
            progress = _positioned(flow_id, engine.course, step, 100_000 + learner, now_ms)
            learner += 1
            store.commit(progress.with_changes(rev=0), expected_rev=0, message_id="", now_ms=now_ms,
                         outbox_items=[])
            event = _tap(progress, flow_id, step, trigger)
            started = time.perf_counter_ns()
            dispatcher.handle(event)
            spent.setdefault(kind, []).append((time.perf_counter_ns() - started) / 1000)
    client.flushdb()
    return {kind: statistics.median(values) for kind, values in spent.items()}


def measure(flows_dir: Path, redis_url: str, workdir: Path) -> tuple[dict[str, FlowFigures], str]:
    """Figures for the shipped flow and the big one, plus a profile of the big flow's Engine.step."""
    big_dir = workdir / "big-flows"
    write_big_flow(big_dir, flows_dir)
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    store = Store(client, dedup_ttl_seconds=8 * 24 * 3600, dedup_max_ids=2000)
    figures: dict[str, FlowFigures] = {}
    engines: dict[str, Engine] = {}
    for name, directory, flow_id in (("shipped", flows_dir, SHIPPED_FLOW), ("2,000 steps", big_dir, BIG_FLOW)):
        started = time.perf_counter()
        course = load_course(directory)
        loaded = time.perf_counter()
        engine = Engine(course)
        built = time.perf_counter()
        engines[name] = engine
        taps = SHIPPED_TAPS if flow_id == SHIPPED_FLOW else big_taps(course)
        figures[name] = FlowFigures(steps=len(course.flows[flow_id].steps), load_ms=(loaded - started) * 1000,
                                    machines_ms=(built - loaded) * 1000,
                                    step_us=time_engine_steps(engine, flow_id, taps),
                                    handle_us=time_handles(client, store, engine, flow_id, taps))
    return figures, profile_big_steps(engines["2,000 steps"])


def profile_big_steps(engine: Engine) -> str:
    """The functions that take the time of ``Engine.step`` on the big flow (cProfile, top 6)."""
    taps = big_taps(engine.course)
    now_ms = int(time.time() * 1000)
    calls = [(p, _tap(p, BIG_FLOW, step, trigger)) for learner, (step, trigger) in enumerate(taps)
             for p in [_positioned(BIG_FLOW, engine.course, step, learner, now_ms)]]
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(20):
        for progress, event in calls:
            engine.step(progress, event)
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:6]  # by own time
    total = sum(entry[2] for entry in stats.stats.values()) or 1.0
    lines = []
    for (filename, line, function), (_, calls_n, own, cumulative, _) in rows:
        where = f"{Path(filename).parent.name}/{Path(filename).name}:{line}" if line else filename
        lines.append(f"{own / total:6.1%} own  {cumulative / total:6.1%} cum  {calls_n:>8} calls  "
                     f"{function} ({where})")
    return "\n".join(lines)
