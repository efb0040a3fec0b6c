"""``bottega flows new ID``: a new module that passes ``flows check`` and ``flows test`` as written.

Writes ``<flows>/<ID>.yaml`` from the commented template next to this file
(``scaffold_module.yaml.tmpl``), its golden conversation ``<flows>/tests/<ID>_it.yaml``
(``scaffold_transcript.yaml.tmpl``), and lists the module in ``course.yaml`` — last, or right after
``--after MODULE`` — editing that file's text in place so its comments and layout stay as the admin
wrote them. Everything is checked in memory before the first file is written: a refused scaffold
leaves the folder as it was.

The golden conversation taps what a new learner really sees: ``taps_to`` plays the onboarding and
the menu on the real engine (no I/O), so the titles and the way to the module's row come from the
course itself, whatever the menu looks like.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

import yaml

from bot import channels
from bot.flows.loader import MANIFEST, check_course, check_course_texts, course_files
from bot.flows.problems import FlowError, Problem
from bot.flows.spec import Course
from bot.flows.yaml_reader import SAFE_LOADER
from bot.model.errors import ToolError
from bot.model.events import EventKind, InboundEvent
from bot.model.replies import Option
from bot.tutor.engine import Engine
from bot.tutor.progress import Progress

TEMPLATES = Path(__file__).resolve().parent
MODULE_TEMPLATE = TEMPLATES / "scaffold_module.yaml.tmpl"
TRANSCRIPT_TEMPLATE = TEMPLATES / "scaffold_transcript.yaml.tmpl"
SHORT_TITLE_MAX_CHARS = 20  # the menu row (a WhatsApp button / list row, a Messenger quick reply)


class ScaffoldError(ToolError):
    """The module cannot be scaffolded here; the message says what is wrong and what to do."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Scaffolded:
    module: Path
    transcript: Path
    manifest: Path
    after: str  # the module it follows in course.yaml ("" when it is the first)
    reachable: bool  # a new learner's menu offers it, so the golden conversation can tap it


def scaffold(folder: Path, flow_id: str, *, after: str = "") -> Scaffolded:
    """Write the module, its golden conversation and the course.yaml entry (raises ``ScaffoldError``)."""
    folder = Path(folder)
    _check_id(flow_id)
    try:
        course = check_course(folder).course
    except FlowError as error:
        raise ScaffoldError(f"the course in {folder} must pass the check before a module is added:\n{error}") \
            from error
    module_path, transcript_path = folder / f"{flow_id}.yaml", folder / "tests" / f"{flow_id}_it.yaml"
    for path in (module_path, transcript_path):
        if path.exists():
            raise ScaffoldError(f"{path} already exists — choose another module id, or remove the file")
    manifest_path = folder / MANIFEST
    manifest = insert_module(manifest_path.read_text(encoding="utf-8"), flow_id, after=after,
                             file=str(manifest_path))
    title = re.sub(r"^m\d+_", "", flow_id).replace("_", " ").capitalize()  # m11_prezzi -> "Prezzi"
    values = {"flow_id": flow_id, "title": _quoted(title), "short_title": _quoted(title[:SHORT_TITLE_MAX_CHARS]),
              "correct_prefix": _quoted(course.text("correct_prefix", "it")),
              "wrong_prefix": _quoted(course.text("wrong_prefix", "it")),
              "name": _quoted(f"{flow_id} in italiano, risposta giusta")}
    module = Template(MODULE_TEMPLATE.read_text(encoding="utf-8")).substitute(values)
    files = {**course_files(folder), MANIFEST: manifest, module_path.name: module}
    try:
        new_course = check_course_texts(files, folder=str(folder)).course
    except FlowError as error:  # a template that fails its own check is a bug here, not the admin's doing
        raise AssertionError(f"the scaffold does not pass the check:\n{error}") from error
    taps, reachable = taps_to(new_course, flow_id)
    lines = [f"  - tap: {_quoted(tap)}" + (f"    # {why}" if why else "") for tap, why in taps]
    transcript = Template(TRANSCRIPT_TEMPLATE.read_text(encoding="utf-8")).substitute(values, taps="\n".join(lines))
    transcript_path.parent.mkdir(parents=True, exist_ok=True)
    module_path.write_text(module, encoding="utf-8")
    transcript_path.write_text(transcript, encoding="utf-8")
    manifest_path.write_text(manifest, encoding="utf-8")
    modules = list(new_course.modules)
    index = modules.index(flow_id)
    return Scaffolded(module=module_path, transcript=transcript_path, manifest=manifest_path,
                      after=modules[index - 1] if index else "", reachable=reachable)


MAX_MENU_PAGES = 5  # how many "more" rows the way to a module may take


def taps_to(course: Course, flow_id: str) -> tuple[list[tuple[str, str]], bool]:
    """What a new Italian learner taps from "ciao" to the start of ``flow_id``, as (title, why) pairs.

    The language is Italian, the business the first one offered; then the module's row in the menu,
    reached through the menu's other rows (such as a next page) if it is not on the first screen.
    The flag says whether the menu offers it; if not, the last tap is its short title all the same
    (what the learner will tap once it is in reach).
    """
    engine = Engine(course)
    hello = _event(EventKind.TEXT, "ciao")
    progress, options = _play(engine, Progress.new(hello, 0), hello)
    taps: list[tuple[str, str]] = []
    for prefix, why in (("sys:lang:it", ""), ("sys:biz:", "the first business type in course.yaml")):
        chosen = next((o for o in options if o.id.startswith(prefix)), None)
        if chosen is not None:
            taps.append((chosen.title, why))
            progress, options = _play(engine, progress, _event(EventKind.CHOICE, chosen.title, chosen.id))
    to_menu = list(taps)
    for _ in range(MAX_MENU_PAGES):
        row = next((o for o in options if o.id == f"sys:module:{flow_id}"), None)
        if row is not None:
            return [*taps, (row.title, "the module's row in the menu: its short_title")], True
        more = [o for o in options if o.id.startswith("sys:") and not o.id.startswith(("sys:module:", "sys:checkup"))]
        if not more:
            break
        taps.append((more[0].title, "the menu's next page"))
        progress, options = _play(engine, progress, _event(EventKind.CHOICE, more[0].title, more[0].id))
    short_title = course.flows[flow_id].short_title.get("it")
    return [*to_menu, (short_title, "the module's row in the menu (a new learner's menu does not offer it yet)")], False


def _play(engine: Engine, progress: Progress, event: InboundEvent) -> tuple[Progress, list[Option]]:
    """One turn; the options of its last message that offers any."""
    outcome = engine.step(progress, event)
    offered = next((reply.options for reply in reversed(outcome.replies) if reply.options), ())
    return outcome.progress.with_changes(rev=progress.rev + 1), list(offered)  # as if stored


def _event(kind: EventKind, text: str, payload: str = "") -> InboundEvent:
    return InboundEvent(channel=channels.every()[0].channel, kind=kind, user_id="393330000000", reply_from="scaffold",
                        text=text, payload=payload)


def insert_module(manifest: str, flow_id: str, *, after: str = "", file: str = MANIFEST) -> str:
    """``course.yaml``'s text with ``flow_id`` listed under ``modules:`` (last, or after ``after``)."""
    modules = _modules_node(manifest, file)
    names = [item.value for item in modules.value]
    if flow_id in names:
        raise ScaffoldError(str(_problem(file, modules.value[names.index(flow_id)],
                                         f"module '{flow_id}' is already listed", "choose another id")))
    if after and after not in names:
        raise ScaffoldError(str(_problem(file, modules, f"--after names '{after}', which is not in modules",
                                         f"use one of: {', '.join(names)}")))
    if not names:
        return manifest[:modules.start_mark.index] + f"[{flow_id}]" + manifest[modules.end_mark.index:]
    anchor = modules.value[names.index(after) if after else -1]
    if modules.flow_style:  # modules: [m1, m2]
        return manifest[:anchor.end_mark.index] + f", {flow_id}" + manifest[anchor.end_mark.index:]
    lines = manifest.splitlines(keepends=True)
    line = lines[anchor.start_mark.line]
    prefix = line[:anchor.start_mark.column]  # "    - ": the same indentation and dash
    ending = "\n" if line.endswith("\n") else ""
    if not ending:
        lines[anchor.start_mark.line] = line + "\n"
    lines.insert(anchor.start_mark.line + 1, f"{prefix}{flow_id}\n")
    return "".join(lines)


def _modules_node(manifest: str, file: str) -> yaml.SequenceNode:
    root = yaml.compose(manifest, Loader=SAFE_LOADER)
    course = _value(root, "course")
    modules = _value(course, "modules") if course is not None else None
    if not isinstance(modules, yaml.SequenceNode) or \
            not all(isinstance(item, yaml.ScalarNode) for item in modules.value):
        raise ScaffoldError(f"{file}:1:1: no list of modules under 'course:' — write 'modules: [...]' "
                            "(see flows/README.md), then run this again")
    return modules


def _value(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key and isinstance(value_node, yaml.Node):
                return value_node
    return None


def _check_id(flow_id: str) -> None:
    if not flow_id or not flow_id[0].isascii() or not flow_id[0].isalpha() or \
            not all(c.isascii() and (c.islower() or c.isdigit() or c == "_") for c in flow_id):
        raise ScaffoldError(f"'{flow_id}' is not a valid module id — use lowercase letters, digits and '_', "
                            "starting with a letter (like m11_prezzi)")


def _problem(file: str, node: yaml.Node, message: str, fix: str) -> Problem:
    return Problem(file=file, line=node.start_mark.line + 1, column=node.start_mark.column + 1,
                   message=message, fix=fix)


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is a subset of it)."""
    return json.dumps(text, ensure_ascii=False)
