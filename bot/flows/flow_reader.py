"""One module's YAML nodes -> a validated ``Flow``, every problem recorded with its position.

Checks: shapes and unknown keys, translations and channel limits, duplicate ids, references to steps
that do not exist, steps nothing leads to, dead ends, quiz answer keys and feedback, branch
conditions from the registry only, and ``migrate`` targets.
"""

from __future__ import annotations

import yaml

from bot.flows import channel_limits
from bot.flows.conditions import CONDITIONS
from bot.flows.spec import (
    Branch,
    Choice,
    Condition,
    Flow,
    Quiz,
    QuizOption,
    Say,
    Step,
    StepKind,
    StepMedia,
    Translated,
)
from bot.flows.yaml_reader import NodeReader

# Every channel's limits, the tightest of each (bot.flows.channel_limits asks the channel registry).
LABEL_MAX_CHARS = channel_limits.LABEL.chars
MESSAGE_MAX_CHARS = channel_limits.MESSAGE.chars
MESSAGE_LIMIT = channel_limits.MESSAGE.reason
QUESTION_MAX_CHARS = channel_limits.QUESTION.chars
CAPTION_MAX_CHARS = channel_limits.CAPTION.chars
MAX_CHOICES = channel_limits.OPTIONS_MAX
FLOW_PLACEHOLDERS = frozenset({"name", "business", "score", "max_score", "module"})
MEDIA_KINDS = ("image", "video", "document")
STEP_KEYS = ("kind", "say", "media", "choices", "quiz", "next", "branch", "end")


class _References:
    """Where each step names another (``next`` of a step, choice or branch), and which steps were damaged.

    A damaged step (one with its own problems) had values dropped; the graph checks skip what such a
    drop could make look wrong, so one mistake is reported once, not as a cascade.
    """

    def __init__(self) -> None:
        self.named: list[tuple[str, str, yaml.Node]] = []  # (step id, target, the node naming it)
        self.damaged: set[str] = set()


def read_flow(reader: NodeReader, root: yaml.Node, business_ids: frozenset[str] = frozenset()) -> Flow | None:
    fields = reader.mapping(root, where="the flow", required=("flow", "version", "title", "short_title",
                                                                "start", "steps"), optional=("migrate",))
    if fields is None:
        return None
    flow_id = reader.identifier(fields["flow"], where="flow id") if "flow" in fields else None
    version = reader.integer(fields["version"], where="version", minimum=1) if "version" in fields else None
    title = text(reader, fields.get("title"), "title", 200)
    short_title = label(reader, fields.get("short_title"), "short_title")
    start = reader.identifier(fields["start"], where="start") if "start" in fields else None
    steps: dict[str, Step] = {}
    nodes: dict[str, yaml.Node] = {}
    references = _References()
    step_list = reader.sequence(fields["steps"], where="steps") if "steps" in fields else None
    for node in step_list or []:
        before = len(reader.problems)
        step = _step(reader, node, business_ids)
        if step is None:
            references.damaged.add("")  # a step was dropped altogether: reachability is unreliable
            continue
        if len(reader.problems) > before:
            references.damaged.add(step.id)
        _collect_references(step.id, node, references)
        if step.id in steps:
            reader.problem(node, f"step id '{step.id}' is used twice", "give each step its own id")
            continue
        steps[step.id] = step
        nodes[step.id] = node
    if start and steps and start not in steps:
        reader.problem(fields["start"], f"start names the step '{start}', which does not exist",
                       _known("start at", steps))
    _check_graph(reader, steps, nodes, start, references)
    migrate = _migrate(reader, fields["migrate"], steps) if "migrate" in fields else {}
    if (reader.problems or flow_id is None or version is None or title is None or short_title is None
            or start is None):
        return None
    return Flow(id=flow_id, version=version, title=title, short_title=short_title,
                start=start, steps=steps, migrate=migrate, source=reader.file)


def text(reader: NodeReader, node: yaml.Node | None, where: str, max_chars: int,
         reason: str = "a message") -> Translated | None:
    if node is None:
        return None
    return reader.translated(node, where=where, max_chars=max_chars, limit_reason=reason,
                             placeholders=FLOW_PLACEHOLDERS)


def label(reader: NodeReader, node: yaml.Node | None, where: str) -> Translated | None:
    return text(reader, node, where, LABEL_MAX_CHARS, channel_limits.LABEL.reason)


def _step(reader: NodeReader, node: yaml.Node, business_ids: frozenset[str]) -> Step | None:
    fields = reader.mapping(node, where="a step", required=("id",), optional=STEP_KEYS)
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
    say = _say(reader, fields.get("say"), where, business_ids)
    media = _media(reader, fields["media"], where) if "media" in fields else None
    choices = _choices(reader, fields["choices"], where) if "choices" in fields else ()
    quiz = _quiz(reader, fields["quiz"], where) if "quiz" in fields else None
    next_step = reader.identifier(fields["next"], where=f"{where} next") if "next" in fields else ""
    branch = _branch(reader, fields["branch"], where) if "branch" in fields else ()
    end = bool(reader.boolean(fields["end"], where=f"{where} end")) if "end" in fields else False
    ways = [name for name in ("choices", "quiz", "branch", "end") if name in fields]
    if len(ways) > 1:
        reader.problem(node, f"{where} mixes {' and '.join(ways)}", "a step does only one of them")
    if next_step and ("choices" in fields or "branch" in fields):
        reader.problem(fields["next"], f"{where} has 'next' besides choices or branch",
                       "put 'next' on each choice or branch, or drop them")
    if "quiz" in fields and not next_step:
        reader.problem(node, f"{where} is a quiz without 'next'", "add 'next:' naming the step after it")
    if not say and "quiz" not in fields:
        reader.problem(node, f"{where} says nothing", "add 'say:' with the message")
    if step_id is None:
        return None
    return Step(id=step_id, kind=StepKind.QUIZ if quiz else kind, say=say, media=media, choices=choices,
                quiz=quiz, next=next_step or "", branch=branch, end=end, line=node.start_mark.line + 1)


def _say(reader: NodeReader, node: yaml.Node | None, where: str,
         business_ids: frozenset[str]) -> tuple[Say, ...]:
    if node is None:
        return ()
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    out = []
    for item in items:
        if isinstance(item, yaml.MappingNode) and any(k.value == "by_business" for k, _ in item.value):
            variants = _by_business(reader, item, where, business_ids)
            if variants:
                out.append(Say(variants))
            continue
        message = text(reader, item, f"{where} say", MESSAGE_MAX_CHARS, MESSAGE_LIMIT)
        if message:
            out.append(Say((("default", message),)))
    return tuple(out)


def _by_business(reader: NodeReader, node: yaml.Node, where: str,
                 business_ids: frozenset[str]) -> tuple[tuple[str, Translated], ...]:
    fields = reader.mapping(node, where=f"{where} say", required=("by_business",))
    inner = reader.mapping(fields["by_business"], where=f"{where} by_business",
                           optional=(*sorted(business_ids), "default")) if fields else None
    if fields is None or inner is None:
        return ()
    if "default" not in inner:
        reader.problem(fields["by_business"], f"{where} by_business has no 'default'",
                       "add 'default:' for every other business")
    variants = []
    for business, value in inner.items():
        message = text(reader, value, f"{where} by_business '{business}'", MESSAGE_MAX_CHARS, MESSAGE_LIMIT)
        if message:
            variants.append((business, message))
    return tuple(variants) if "default" in inner else ()


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
    caption = text(reader, fields.get("caption"), f"{where} caption", CAPTION_MAX_CHARS, channel_limits.CAPTION.reason)
    return StepMedia(kind=kind, url=url, caption=caption)


def _choices(reader: NodeReader, node: yaml.Node, where: str) -> tuple[Choice, ...]:
    items = reader.sequence(node, where=f"{where} choices") or []
    if len(items) > MAX_CHOICES:
        reader.problem(node, f"{where} offers {len(items)} choices; {channel_limits.OPTIONS_REASON}",
                       "split the step into two")
    choices: list[Choice] = []
    for item in items:
        fields = reader.mapping(item, where=f"{where} choice", required=("id", "label", "next"),
                                optional=("set",))
        if not fields or not {"id", "label", "next"} <= set(fields):
            continue
        choice_id = reader.identifier(fields["id"], where=f"{where} choice id")
        choice_label = label(reader, fields["label"], f"{where} choice '{choice_id}' label")
        target = reader.identifier(fields["next"], where=f"{where} choice '{choice_id}' next")
        sets = _pairs(reader, fields["set"], f"{where} choice '{choice_id}' set") if "set" in fields else ()
        if choice_id in {c.id for c in choices}:
            reader.problem(fields["id"], f"{where} has the choice id '{choice_id}' twice", "rename one")
        elif choice_id and choice_label and target:
            choices.append(Choice(id=choice_id, label=choice_label, next=target, sets=sets))
    return tuple(choices)


def _pairs(reader: NodeReader, node: yaml.Node, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(node, yaml.MappingNode) or not node.value:
        reader.problem(node, f"{where} must map names to values", "write it like {business_online: yes}")
        return ()
    pairs = []
    for key_node, value_node in node.value:
        name = reader.identifier(key_node, where=f"{where} name")
        value = reader.scalar(value_node, where=f"{where} value")
        if name and value is not None:
            pairs.append((name, value))
    return tuple(pairs)


def _quiz(reader: NodeReader, node: yaml.Node, where: str) -> Quiz | None:
    fields = reader.mapping(node, where=f"{where} quiz", required=("question", "options"), optional=("points",))
    if not fields or "question" not in fields or "options" not in fields:
        return None
    question = text(reader, fields["question"], f"{where} question", QUESTION_MAX_CHARS,
                    channel_limits.QUESTION.reason)
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
    if items and correct != 1:
        reader.problem(fields["options"], f"{where} has {correct} correct options",
                       "mark exactly one option with 'correct: true'")
    if question is None or points is None or correct != 1:
        return None
    return Quiz(question=question, options=tuple(options), points=points)


def _quiz_option(reader: NodeReader, node: yaml.Node, where: str) -> QuizOption | None:
    fields = reader.mapping(node, where=f"{where} option", required=("id", "label"),
                            optional=("correct", "feedback"))
    if not fields:
        return None
    option_id = reader.identifier(fields["id"], where=f"{where} option id") if "id" in fields else None
    option_label = label(reader, fields.get("label"), f"{where} option '{option_id}' label")
    if "feedback" not in fields:
        reader.problem(node, f"{where} option '{option_id}' has no feedback",
                       "add 'feedback:' explaining why this answer is right or wrong")
    feedback = text(reader, fields.get("feedback"), f"{where} option '{option_id}' feedback",
                    MESSAGE_MAX_CHARS, MESSAGE_LIMIT)
    correct = reader.boolean(fields["correct"], where=f"{where} correct") if "correct" in fields else False
    if not (option_id and option_label and feedback):
        return None
    return QuizOption(id=option_id, label=option_label, feedback=feedback, correct=bool(correct))


def _branch(reader: NodeReader, node: yaml.Node, where: str) -> tuple[Branch, ...]:
    items = reader.sequence(node, where=f"{where} branch") or []
    branches = []
    for index, item in enumerate(items):
        fields = reader.mapping(item, where=f"{where} branch", required=("next",), optional=("when",))
        if not fields or "next" not in fields:
            continue
        target = reader.identifier(fields["next"], where=f"{where} branch next")
        conditions = _conditions(reader, fields["when"], where) if "when" in fields else ()
        if "when" not in fields and index != len(items) - 1:
            reader.problem(item, f"{where} has a branch without 'when' before the last one",
                           "only the last branch may be the default (no 'when')")
        if target:
            branches.append(Branch(conditions=conditions, next=target))
    if items and isinstance(items[-1], yaml.MappingNode) and any(k.value == "when" for k, _ in items[-1].value):
        reader.problem(node, f"{where} has no default branch", "end the list with a branch that has only 'next:'")
    return tuple(branches)


def _conditions(reader: NodeReader, node: yaml.Node, where: str) -> tuple[Condition, ...]:
    fields = reader.mapping(node, where=f"{where} when", optional=tuple(CONDITIONS))
    conditions = []
    for name, value in (fields or {}).items():
        rule = CONDITIONS[name]
        argument: object = None
        if rule.argument == "int":
            argument = reader.integer(value, where=f"{where} {name}")
        elif rule.argument == "text":
            argument = reader.identifier(value, where=f"{where} {name}")
        elif rule.argument == "step_option":
            parts = reader.mapping(value, where=f"{where} {name}", required=("step", "option"))
            if parts and len(parts) == 2:
                argument = (reader.identifier(parts["step"], where="step"),
                            reader.identifier(parts["option"], where="option"))
        else:
            argument = _pairs(reader, value, f"{where} {name}") or None
        if argument is None:
            reader.problem(value, f"{where} condition '{name}' has a wrong argument", f"write {rule.example}")
            continue
        conditions.append(Condition(name=name, argument=argument))
    return tuple(conditions)


def _migrate(reader: NodeReader, node: yaml.Node, steps: dict[str, Step]) -> dict[str, str]:
    mapping = {}
    for old, new in _pairs(reader, node, "migrate"):
        if new not in steps:
            reader.problem(node, f"migrate sends '{old}' to '{new}', which does not exist",
                           _known("send it to", steps))
        elif old in steps:
            reader.problem(node, f"migrate maps '{old}', but this version still has that step",
                           "remove the line: learners on it simply continue")
        else:
            mapping[old] = new
    return mapping


def _collect_references(step_id: str, node: yaml.Node, references: _References) -> None:
    """Every ``next:`` value node under this step (its own, its choices', its branches')."""
    if not isinstance(node, yaml.MappingNode):
        return
    for key, value in node.value:
        if key.value == "next" and isinstance(value, yaml.ScalarNode):
            references.named.append((step_id, value.value, value))
        elif key.value in ("choices", "branch") and isinstance(value, yaml.SequenceNode):
            for item in value.value:
                _collect_references(step_id, item, references)


def _check_graph(reader: NodeReader, steps: dict[str, Step], nodes: dict[str, yaml.Node],
                 start: str | None, references: _References) -> None:
    """References must exist, every step must be reachable from start, and none may be a dead end."""
    for step_id, target, target_node in references.named:
        if target not in steps and step_id in steps:
            reader.problem(target_node, f"step '{step_id}' leads to '{target}', which does not exist",
                           _known("point it at", steps))
    for step in steps.values():
        node = nodes.get(step.id)
        if step.id in references.damaged:
            continue
        if not step.end and not step.choices and not step.quiz and not step.next and not step.branch:
            reader.problem(node, f"step '{step.id}' is a dead end: no choices, quiz, next, branch or end",
                           "add 'next:', choices, or 'end: true' (learners can always write 'menu')")
    if not start or start not in steps or references.damaged:
        return  # fix the damaged steps first: a dropped choice would make others look unreachable
    reached, todo = {start}, [start]
    while todo:
        for target in targets(steps[todo.pop()]):
            if target in steps and target not in reached:
                reached.add(target)
                todo.append(target)
    for step in steps.values():
        if step.id not in reached:
            reader.problem(nodes.get(step.id), f"nothing leads to step '{step.id}'",
                           "add a choice, 'next' or branch that points to it, or remove it")
    if not any(step.end for step in steps.values() if step.id in reached):
        reader.problem(nodes.get(start), "the flow never ends: no reachable step has 'end: true'",
                       "end the module with a summary step that has 'end: true'")


def targets(step: Step) -> list[str]:
    return [c.next for c in step.choices] + [b.next for b in step.branch] + ([step.next] if step.next else [])


def _known(verb: str, steps: dict[str, Step]) -> str:
    return f"{verb} one of: {', '.join(sorted(steps)) or 'no steps defined yet'}"
