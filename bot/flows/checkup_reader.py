"""``checkup.yaml`` -> a validated ``CheckUp`` (the timed final test), problems with positions.

Besides shapes and limits it checks that every module of the course is in at least one area (so the
action plan can point to any module), and that ``not_applicable`` answers sit only on practice
questions and give 0 points.
"""

from __future__ import annotations

import yaml

from bot.flows import channel_limits
from bot.flows.flow_reader import LABEL_MAX_CHARS, QUESTION_MAX_CHARS, label, text
from bot.flows.spec import Area, CheckOption, CheckQuestion, CheckUp, Level, Translated
from bot.flows.yaml_reader import NodeReader

ACTION_MAX_CHARS = 300  # one action-plan line: read on a phone, between two customers
KINDS = ("knowledge", "practice")
MAX_POINTS = 2


def read_checkup(reader: NodeReader, root: yaml.Node, modules: tuple[str, ...]) -> CheckUp | None:
    keys = ("checkup", "version", "title", "short_title", "intro", "time_limit_seconds", "warnings_seconds",
            "pass_percent", "retake_after_seconds", "levels", "areas", "questions")
    fields = reader.mapping(root, where="the check-up", required=keys)
    if fields is None or any(key not in fields for key in keys):
        return None
    checkup_id = reader.identifier(fields["checkup"], where="checkup id")
    version = reader.integer(fields["version"], where="version", minimum=1)
    limit = reader.integer(fields["time_limit_seconds"], where="time_limit_seconds", minimum=1)
    warnings = []
    for node in reader.sequence(fields["warnings_seconds"], where="warnings_seconds") or []:
        value = reader.integer(node, where="a warning time", minimum=1)
        if value is not None and limit is not None and value >= limit:
            reader.problem(node, f"a warning at {value}s remaining is not within the {limit}s limit",
                           "use fewer seconds than time_limit_seconds")
        elif value is not None:
            warnings.append(value)
    pass_percent = reader.integer(fields["pass_percent"], where="pass_percent")
    retake = reader.integer(fields["retake_after_seconds"], where="retake_after_seconds")
    levels = _levels(reader, fields["levels"])
    areas = _areas(reader, fields["areas"], modules)
    questions = _questions(reader, fields["questions"], {area.id for area in areas})
    for area in areas:
        if not any(q.area == area.id for q in questions):
            reader.problem(fields["areas"], f"area '{area.id}' has no questions", "add questions or remove it")
    title = text(reader, fields["title"], "title", 200)
    short_title = label(reader, fields["short_title"], "short_title")
    intro = text(reader, fields["intro"], "intro", QUESTION_MAX_CHARS * 4)
    if (reader.problems or not levels or not areas or not questions or checkup_id is None or version is None
            or limit is None or pass_percent is None or retake is None or title is None or short_title is None
            or intro is None):
        return None
    return CheckUp(id=checkup_id, version=version, title=title, short_title=short_title,
                   intro=intro, time_limit_seconds=limit, warnings_seconds=tuple(sorted(warnings, reverse=True)),
                   pass_percent=pass_percent, retake_after_seconds=retake, levels=levels,
                   areas=areas, questions=questions, source=reader.file)


def _levels(reader: NodeReader, node: yaml.Node) -> tuple[Level, ...]:
    levels: list[Level] = []
    items = reader.sequence(node, where="levels") or []
    for index, item in enumerate(items):
        fields = reader.mapping(item, where="a level", required=("id", "label"), optional=("below_percent",))
        if not fields or len(fields) < 2:
            continue
        bound = reader.integer(fields["below_percent"], where="below_percent") if "below_percent" in fields else None
        last = index == len(items) - 1
        if last != (bound is None):
            reader.problem(item, "only the last level has no below_percent",
                           "give every level but the last a below_percent, in increasing order")
        if bound is not None and levels and levels[-1].below_percent is not None and bound <= levels[-1].below_percent:
            reader.problem(item, "levels must go from the lowest to the highest", "order them by below_percent")
        level_id = reader.identifier(fields["id"], where="level id")
        level_label = label(reader, fields["label"], "level label")
        if level_id and level_label:
            levels.append(Level(id=level_id, label=level_label, below_percent=bound))
    return tuple(levels)


def _areas(reader: NodeReader, node: yaml.Node, modules: tuple[str, ...]) -> tuple[Area, ...]:
    areas: list[Area] = []
    for item in reader.sequence(node, where="areas") or []:
        fields = reader.mapping(item, where="an area", required=("id", "title"),
                                optional=("modules", "module", "action", "next_step"))
        if not fields or "id" not in fields or "title" not in fields:
            continue
        area_id = reader.identifier(fields["id"], where="area id")
        area_modules = _area_modules(reader, item, fields, area_id, modules)
        title = text(reader, fields["title"], f"area '{area_id}' title", LABEL_MAX_CHARS * 3)
        action = _action(reader, item, fields, area_id)
        if area_id in {a.id for a in areas}:
            reader.problem(item, f"area '{area_id}' is defined twice", "keep one")
        elif area_id and area_modules and title and action:
            areas.append(Area(id=area_id, title=title, modules=area_modules, action=action))
    return tuple(areas)


def _action(reader: NodeReader, item: yaml.Node, fields: dict[str, yaml.Node],
            area_id: str | None) -> Translated | None:
    """``action:`` — the one first thing to do this week for a weak area (``next_step:``, its older spelling)."""
    if ("action" in fields) == ("next_step" in fields):
        reader.problem(item, f"area '{area_id}' needs exactly one 'action:'",
                       "write action: {it: \"Questa settimana ...\", en: \"This week, ...\"} (one concrete step)")
        return None
    key = "action" if "action" in fields else "next_step"
    return text(reader, fields[key], f"area '{area_id}' {key}", ACTION_MAX_CHARS, "an action-plan line")


def _area_modules(reader: NodeReader, item: yaml.Node, fields: dict[str, yaml.Node], area_id: str | None,
                  modules: tuple[str, ...]) -> tuple[str, ...]:
    """``modules: [main, other]`` (the main one first), or the older ``module: main``."""
    if ("modules" in fields) == ("module" in fields):
        reader.problem(item, f"area '{area_id}' needs exactly one of 'modules:' and 'module:'",
                       "write modules: [the main module, any other module it teaches]")
        return ()
    if "module" in fields:
        nodes = [fields["module"]]
    else:
        nodes = reader.sequence(fields["modules"], where=f"area '{area_id}' modules") or []
        if not nodes and isinstance(fields["modules"], yaml.SequenceNode):
            reader.problem(fields["modules"], f"area '{area_id}' lists no module", "name at least one module")
    found: list[str] = []
    for module_node in nodes:
        module = reader.identifier(module_node, where="area module")
        if module and module not in modules:
            reader.problem(module_node, f"area '{area_id}' points to the module '{module}', "
                           "which is not in course.yaml", f"use one of: {', '.join(modules)}")
        elif module in found:
            reader.problem(module_node, f"area '{area_id}' lists the module '{module}' twice", "list it once")
        elif module:
            found.append(module)
    return tuple(found) if len(found) == len(nodes) else ()


def _questions(reader: NodeReader, node: yaml.Node, area_ids: set[str]) -> tuple[CheckQuestion, ...]:
    questions: list[CheckQuestion] = []
    for item in reader.sequence(node, where="questions") or []:
        fields = reader.mapping(item, where="a question", required=("id", "area", "kind", "question", "options"))
        if not fields or len(fields) < 5:
            continue
        question_id = reader.identifier(fields["id"], where="question id")
        where = f"question '{question_id}'"
        area = reader.identifier(fields["area"], where=f"{where} area")
        if area and area not in area_ids:
            reader.problem(fields["area"], f"{where} is in the unknown area '{area}'",
                           f"use one of: {', '.join(sorted(area_ids))}")
        kind = reader.scalar(fields["kind"], where=f"{where} kind")
        if kind not in KINDS:
            reader.problem(fields["kind"], f"{where} has the kind '{kind}'", "use knowledge or practice")
        question = text(reader, fields["question"], f"{where} text", QUESTION_MAX_CHARS,
                        channel_limits.QUESTION.reason)
        options = _options(reader, fields["options"], where, kind)
        if kind == "knowledge" and options and sum(o.points == MAX_POINTS for o in options) != 1:
            reader.problem(fields["options"], f"{where} is a knowledge question without exactly one right answer",
                           f"give the right option points: {MAX_POINTS} and the others 0")
        if question_id in {q.id for q in questions}:
            reader.problem(item, f"question id '{question_id}' is used twice", "rename one")
        elif question_id and area and area in area_ids and kind in KINDS and kind and question and options:
            questions.append(CheckQuestion(id=question_id, area=area, kind=kind,
                                           question=question, options=options, line=item.start_mark.line + 1))
    return tuple(questions)


def _options(reader: NodeReader, node: yaml.Node, where: str, kind: str | None) -> tuple[CheckOption, ...]:
    items = reader.sequence(node, where=f"{where} options") or []
    if not 2 <= len(items) <= 3:
        reader.problem(node, f"{where} has {len(items)} options", "offer 2 or 3 (WhatsApp shows 3 buttons)")
    options: list[CheckOption] = []
    for item in items:
        fields = reader.mapping(item, where=f"{where} option", required=("id", "label", "points"),
                                optional=("not_applicable",))
        if not fields or len(fields) < 3:
            continue
        option_id = reader.identifier(fields["id"], where=f"{where} option id")
        option_label = label(reader, fields["label"], f"{where} option '{option_id}' label")
        points = reader.integer(fields["points"], where=f"{where} option '{option_id}' points")
        if points is not None and points > MAX_POINTS:
            reader.problem(fields["points"], f"{where} option '{option_id}' gives {points} points",
                           f"use 0 to {MAX_POINTS}")
        not_applicable = _not_applicable(reader, fields, where, option_id, kind, points)
        if option_id and option_label and points is not None:
            options.append(CheckOption(id=option_id, label=option_label, points=min(points, MAX_POINTS),
                                       not_applicable=not_applicable))
    return tuple(options)


def _not_applicable(reader: NodeReader, fields: dict[str, yaml.Node], where: str, option_id: str | None,
                    kind: str | None, points: int | None) -> bool:
    """``not_applicable: true`` marks an answer like "Non mi serve": scoring leaves the question out."""
    if "not_applicable" not in fields:
        return False
    node = fields["not_applicable"]
    value = (reader.scalar(node, where=f"{where} option '{option_id}' not_applicable") or "").lower()
    if value not in ("true", "false"):
        reader.problem(node, f"{where} option '{option_id}' has not_applicable: {value}", "write true or false")
        return False
    if value == "true" and kind != "practice":
        reader.problem(node, f"{where} is a knowledge question with a not_applicable option",
                       "use not_applicable only on practice questions (what the shop does today)")
    elif value == "true" and points:
        reader.problem(fields["points"], f"{where} option '{option_id}' is not_applicable but gives {points} points",
                       "write points: 0 (the answer leaves the question out of the score)")
    return value == "true"
