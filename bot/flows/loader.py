"""YAML in ``flows/`` -> a validated ``Course``. Every problem is reported with file, line and fix.

Files: ``course.yaml`` (manifest), ``system.yaml`` (system texts), one ``<flow id>.yaml`` per module
listed in the manifest. YAML is read with the safe loader only; a flow can name nothing but data.
The service never runs a course that fails here: ``load_course`` raises ``FlowError`` listing every
problem, and the caller keeps what it had.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.flows.problems import FlowError, Problem
from bot.flows.spec import (
    SYSTEM_TEXT_KEYS,
    Choice,
    Course,
    Flow,
    Quiz,
    QuizOption,
    Step,
    StepKind,
    StepMedia,
    Translated,
)
from bot.flows.yaml_reader import NodeReader

LABEL_MAX_CHARS = 20  # WhatsApp reply button / Messenger quick reply title (PLATFORM.md §6-7)
MESSAGE_MAX_CHARS = 4096  # WhatsApp text; longer lessons are split by the renderer, never cut
QUESTION_MAX_CHARS = 1024  # a quiz question travels as the body of a WhatsApp button message
CAPTION_MAX_CHARS = 1024  # WhatsApp media caption
MAX_CHOICES = 10  # a WhatsApp list shows 10 rows; more would fall back to numbered text
FLOW_PLACEHOLDERS = frozenset({"name", "score", "max_score", "module"})
SYSTEM_PLACEHOLDERS = frozenset({"name", "score", "max_score", "module", "support_email",
                                 "done", "total", "where"})
MEDIA_KINDS = ("image", "video", "document")


def load_course(flows_dir: Path) -> Course:
    flows_dir = Path(flows_dir)
    problems: list[Problem] = []
    manifest = _read(flows_dir / "course.yaml", problems)
    system = _read(flows_dir / "system.yaml", problems)
    title, email, module_ids = _course_manifest(manifest) if manifest else (None, "", ())
    texts = _system_texts(system) if system else {}
    flows: dict[str, Flow] = {}
    for module_id in module_ids:
        path = flows_dir / f"{module_id}.yaml"
        if not path.exists():
            problems.append(Problem(file=str(flows_dir / "course.yaml"), line=1, column=1,
                                    message=f"module '{module_id}' has no file {path.name}",
                                    fix=f"create {path.name} or remove the module from course.yaml"))
            continue
        flow = load_flow(path, problems)
        if flow is not None and flow.id != module_id:
            problems.append(Problem(file=str(path), line=1, column=1,
                                    message=f"the file declares flow '{flow.id}' but course.yaml lists "
                                            f"'{module_id}'", fix="make the two ids the same"))
        elif flow is not None:
            flows[flow.id] = flow
    for reader in (manifest, system):
        if reader:
            problems.extend(reader.problems)
    if problems:
        raise FlowError(problems)
    assert title is not None
    return Course(title=title, support_email=email, modules=tuple(module_ids), flows=flows, texts=texts)


def load_flow(path: Path, problems: list[Problem]) -> Flow | None:
    reader = _read(path, problems)
    if reader is None:
        return None
    flow = _flow(reader, reader.root)
    problems.extend(reader.problems)
    return flow if not reader.problems else None


class _FileReader(NodeReader):
    root: yaml.Node


def _read(path: Path, problems: list[Problem]) -> _FileReader | None:
    reader = _FileReader(str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        problems.append(Problem(file=str(path), line=1, column=1, message=f"cannot read the file: "
                                f"{error.strerror}", fix="check the path and permissions"))
        return None
    root = reader.compose(text)
    if root is None:
        if not reader.problems:
            reader.problem(None, "the file is empty", "write the flow, see flows/README.md")
        problems.extend(reader.problems)
        return None
    reader.root = root
    return reader


def _course_manifest(reader: _FileReader) -> tuple[Translated | None, str, tuple[str, ...]]:
    top = reader.mapping(reader.root, where="course.yaml", required=("course",))
    if not top or "course" not in top:
        return None, "", ()
    course = reader.mapping(top["course"], where="course", required=("title", "support_email", "modules"))
    if not course:
        return None, "", ()
    title = _text(reader, course.get("title"), "course title", 200)
    email = reader.scalar(course["support_email"], where="support_email") if "support_email" in course else ""
    modules: list[str] = []
    for item in reader.sequence(course["modules"], where="modules") or [] if "modules" in course else []:
        module_id = reader.identifier(item, where="module id")
        if module_id in modules:
            reader.problem(item, f"module '{module_id}' is listed twice", "list each module once")
        elif module_id:
            modules.append(module_id)
    return title, email or "", tuple(modules)


def _system_texts(reader: _FileReader) -> dict[str, Translated]:
    top = reader.mapping(reader.root, where="system.yaml", required=("texts",))
    if not top or "texts" not in top:
        return {}
    fields = reader.mapping(top["texts"], where="texts", required=SYSTEM_TEXT_KEYS)
    texts: dict[str, Translated] = {}
    for key, node in (fields or {}).items():
        is_label = key.startswith("label_")
        value = reader.translated(
            node, where=f"text '{key}'",
            max_chars=LABEL_MAX_CHARS if is_label else MESSAGE_MAX_CHARS,
            limit_reason="a button title" if is_label else "a WhatsApp text",
            placeholders=SYSTEM_PLACEHOLDERS)
        if value:
            texts[key] = value
    return texts


def _text(reader: NodeReader, node: yaml.Node | None, where: str, max_chars: int,
          reason: str = "a message") -> Translated | None:
    if node is None:
        return None
    return reader.translated(node, where=where, max_chars=max_chars, limit_reason=reason,
                             placeholders=FLOW_PLACEHOLDERS)


def _label(reader: NodeReader, node: yaml.Node | None, where: str) -> Translated | None:
    return _text(reader, node, where, LABEL_MAX_CHARS, "a WhatsApp button and a Messenger quick reply")


def _flow(reader: _FileReader, root: yaml.Node) -> Flow | None:
    fields = reader.mapping(root, where="the flow", required=("flow", "version", "title", "short_title",
                                                                "start", "steps"))
    if fields is None:
        return None
    flow_id = reader.identifier(fields["flow"], where="flow id") if "flow" in fields else None
    version = reader.integer(fields["version"], where="version", minimum=1) if "version" in fields else None
    title = _text(reader, fields.get("title"), "title", 200)
    short_title = _label(reader, fields.get("short_title"), "short_title")
    start = reader.identifier(fields["start"], where="start") if "start" in fields else None
    steps: dict[str, Step] = {}
    for node in reader.sequence(fields["steps"], where="steps") or [] if "steps" in fields else []:
        step = _step(reader, node)
        if step is None:
            continue
        if step.id in steps:
            reader.problem(node, f"step id '{step.id}' is used twice", "give each step its own id")
            continue
        steps[step.id] = step
    if start and steps and start not in steps:
        reader.problem(fields["start"], f"start names the step '{start}', which does not exist",
                       _known("start at", steps))
    _check_graph(reader, steps, start, fields.get("steps"))
    if reader.problems or None in (flow_id, version, title, short_title, start):
        return None
    return Flow(id=flow_id, version=version, title=title, short_title=short_title,  # type: ignore[arg-type]
                start=start, steps=steps, source=reader.file)  # type: ignore[arg-type]


def _step(reader: NodeReader, node: yaml.Node) -> Step | None:
    fields = reader.mapping(node, where="a step", required=("id",),
                            optional=("kind", "say", "media", "choices", "quiz", "next", "end"))
    if fields is None or "id" not in fields:
        return None
    step_id = reader.identifier(fields["id"], where="step id")
    where = f"step '{step_id}'"
    kind = StepKind.LESSON
    if "kind" in fields:
        raw = reader.scalar(fields["kind"], where=f"{where} kind")
        if raw in {k.value for k in StepKind}:
            kind = StepKind(raw)
        elif raw is not None:
            reader.problem(fields["kind"], f"{where} has the unknown kind '{raw}'",
                           f"use one of: {', '.join(k.value for k in StepKind)}")
    say = _say(reader, fields.get("say"), where)
    media = _media(reader, fields["media"], where) if "media" in fields else None
    choices = _choices(reader, fields["choices"], where) if "choices" in fields else ()
    quiz = _quiz(reader, fields["quiz"], where) if "quiz" in fields else None
    next_step = reader.identifier(fields["next"], where=f"{where} next") if "next" in fields else ""
    end = bool(reader.boolean(fields["end"], where=f"{where} end")) if "end" in fields else False
    ways = sum(bool(x) for x in (choices, quiz is not None or "quiz" in fields, end))
    if ways > 1:
        reader.problem(node, f"{where} mixes choices, quiz and end", "a step does one of them")
    if choices and next_step:
        reader.problem(fields["next"], f"{where} has both choices and next",
                       "put 'next' on each choice, or drop the choices")
    if "quiz" in fields and not next_step and not end:
        reader.problem(node, f"{where} is a quiz without 'next'", "add 'next:' naming the step after it")
    if not say and "quiz" not in fields:
        reader.problem(node, f"{where} says nothing", "add 'say:' with the message")
    if step_id is None:
        return None
    return Step(id=step_id, kind=StepKind.QUIZ if quiz else kind, say=say, media=media, choices=choices,
                quiz=quiz, next=next_step or "", end=end, line=node.start_mark.line + 1)


def _say(reader: NodeReader, node: yaml.Node | None, where: str) -> tuple[Translated, ...]:
    if node is None:
        return ()
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    texts = [_text(reader, item, f"{where} say", MESSAGE_MAX_CHARS, "a WhatsApp text") for item in items]
    return tuple(t for t in texts if t)


def _media(reader: NodeReader, node: yaml.Node, where: str) -> StepMedia | None:
    fields = reader.mapping(node, where=f"{where} media", required=("type", "url"), optional=("caption",))
    if not fields or "type" not in fields or "url" not in fields:
        return None
    kind = reader.scalar(fields["type"], where=f"{where} media type")
    url = reader.scalar(fields["url"], where=f"{where} media url")
    if kind not in MEDIA_KINDS:
        reader.problem(fields["type"], f"{where} media type '{kind}' is not supported",
                       f"use one of: {', '.join(MEDIA_KINDS)}")
        return None
    if not url or not url.startswith("https://"):
        reader.problem(fields["url"], f"{where} media url must start with https://",
                       "link a public https:// address (Meta fetches it)")
        return None
    caption = _text(reader, fields.get("caption"), f"{where} caption", CAPTION_MAX_CHARS, "a media caption")
    return StepMedia(kind=kind, url=url, caption=caption)


def _choices(reader: NodeReader, node: yaml.Node, where: str) -> tuple[Choice, ...]:
    items = reader.sequence(node, where=f"{where} choices") or []
    if len(items) > MAX_CHOICES:
        reader.problem(node, f"{where} offers {len(items)} choices; WhatsApp lists show at most {MAX_CHOICES}",
                       "split the step into two")
    choices: list[Choice] = []
    for item in items:
        fields = reader.mapping(item, where=f"{where} choice", required=("id", "label", "next"))
        if not fields or len(fields) < 3:
            continue
        choice_id = reader.identifier(fields["id"], where=f"{where} choice id")
        label = _label(reader, fields["label"], f"{where} choice '{choice_id}' label")
        target = reader.identifier(fields["next"], where=f"{where} choice '{choice_id}' next")
        if choice_id in {c.id for c in choices}:
            reader.problem(fields["id"], f"{where} has the choice id '{choice_id}' twice", "rename one")
        elif choice_id and label and target:
            choices.append(Choice(id=choice_id, label=label, next=target))
    return tuple(choices)


def _quiz(reader: NodeReader, node: yaml.Node, where: str) -> Quiz | None:
    fields = reader.mapping(node, where=f"{where} quiz", required=("question", "options"), optional=("points",))
    if not fields or "question" not in fields or "options" not in fields:
        return None
    question = _text(reader, fields["question"], f"{where} question", QUESTION_MAX_CHARS,
                     "a WhatsApp button message body")
    points = reader.integer(fields["points"], where=f"{where} points", minimum=0) if "points" in fields else 1
    options: list[QuizOption] = []
    items = reader.sequence(fields["options"], where=f"{where} options") or []
    for item in items:
        option = _quiz_option(reader, item, where)
        if option and option.id in {o.id for o in options}:
            reader.problem(item, f"{where} has the option id '{option.id}' twice", "rename one")
        elif option:
            options.append(option)
    if items and not 2 <= len(items) <= MAX_CHOICES:
        reader.problem(fields["options"], f"{where} has {len(items)} options", f"offer 2 to {MAX_CHOICES}")
    correct = sum(o.correct for o in options)
    if options and correct != 1:
        reader.problem(fields["options"], f"{where} has {correct} correct options",
                       "mark exactly one option with 'correct: true'")
    if question is None or points is None or correct != 1:
        return None
    return Quiz(question=question, options=tuple(options), points=points)


def _quiz_option(reader: NodeReader, node: yaml.Node, where: str) -> QuizOption | None:
    fields = reader.mapping(node, where=f"{where} option", required=("id", "label", "feedback"),
                            optional=("correct",))
    if not fields:
        return None
    option_id = reader.identifier(fields["id"], where=f"{where} option id") if "id" in fields else None
    label = _label(reader, fields.get("label"), f"{where} option '{option_id}' label")
    feedback = _text(reader, fields.get("feedback"), f"{where} option '{option_id}' feedback",
                     MESSAGE_MAX_CHARS, "a WhatsApp text")
    correct = reader.boolean(fields["correct"], where=f"{where} correct") if "correct" in fields else False
    if not (option_id and label and feedback):
        return None
    return QuizOption(id=option_id, label=label, feedback=feedback, correct=bool(correct))


def _check_graph(reader: NodeReader, steps: dict[str, Step], start: str | None,
                 steps_node: yaml.Node | None) -> None:
    """References must exist, every step must be reachable from start, and none may be a dead end."""
    step_nodes = {}
    if isinstance(steps_node, yaml.SequenceNode):
        step_nodes = {s.line: n for n in steps_node.value for s in steps.values()
                      if s.line == n.start_mark.line + 1}
    for step in steps.values():
        node = step_nodes.get(step.line)
        for target in _targets(step):
            if target not in steps:
                reader.problem(node, f"step '{step.id}' leads to '{target}', which does not exist",
                               _known("point it at", steps))
        if not step.end and not step.choices and not step.quiz and not step.next:
            reader.problem(node, f"step '{step.id}' is a dead end: no choices, quiz, next or end",
                           "add 'next:', choices, or 'end: true'")
    if not start or start not in steps:
        return
    reached, todo = {start}, [start]
    while todo:
        for target in _targets(steps[todo.pop()]):
            if target in steps and target not in reached:
                reached.add(target)
                todo.append(target)
    for step in steps.values():
        if step.id not in reached:
            reader.problem(step_nodes.get(step.line), f"nothing leads to step '{step.id}'",
                           "add a choice or 'next' that points to it, or remove it")


def _targets(step: Step) -> list[str]:
    return [c.next for c in step.choices] + ([step.next] if step.next else [])


def _known(verb: str, steps: dict[str, Step]) -> str:
    return f"{verb} one of: {', '.join(sorted(steps)) or 'no steps defined yet'}"
