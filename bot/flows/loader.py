"""YAML in ``flows/`` -> a validated ``Course``. Every problem is reported with file, line and fix.

Files: ``course.yaml`` (manifest), ``system.yaml`` (system texts), one ``<flow id>.yaml`` per module
listed in the manifest, and ``checkup.yaml`` if present. YAML is read with the safe loader only; a
flow can name nothing but data. The service never runs a course that fails here: ``load_course``
raises ``FlowError`` listing every problem, and the caller keeps what it had.
``load_course_texts`` does the same from a mapping of file name -> YAML text (a published release).
``check_course_texts`` also returns the warnings (``bot.flows.problems``): what loads but is probably
not meant, like a YAML file here that ``course.yaml`` does not list (it would be skipped unchecked).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.flows import channel_limits
from bot.flows.broadcasts import read_broadcasts
from bot.flows.checkup_reader import read_checkup
from bot.flows.events import read_events
from bot.flows.flow_reader import LABEL_MAX_CHARS, read_flow, text
from bot.flows.items import warnings as item_warnings
from bot.flows.problems import FlowError, Problem, in_order, warning
from bot.flows.reminders import read_reminders
from bot.flows.spec import (
    OPTIONAL_TEXT_KEYS,
    SYSTEM_TEXT_KEYS,
    BroadcastMessage,
    BusinessType,
    CheckUp,
    Course,
    Flow,
    OpenDay,
    Reminders,
    TemplateSpec,
    Translated,
)
from bot.flows.templates import read_templates
from bot.flows.yaml_reader import NodeReader

SYSTEM_PLACEHOLDERS = frozenset({"name", "business", "score", "max_score", "module", "support_email",
                                 "done", "total", "where", "minutes", "level", "percent", "area", "channels", "days",
                                 "next_step", "action", "answered", "questions", "code", "url", "when", "page", "pages",
                                 "pass_percent", "hours"})
MANIFEST, SYSTEM, CHECKUP = "course.yaml", "system.yaml", "checkup.yaml"
# optional: Bottega writing first (bot.proactive, bot.broadcasts)
TEMPLATES, REMINDERS, BROADCASTS = "templates.yaml", "reminders.yaml", "broadcasts.yaml"
EVENTS = "events.yaml"  # optional: Business Open Days (bot.flows.events)


@dataclass(frozen=True, slots=True)
class Checked:
    course: Course
    warnings: tuple[Problem, ...]  # each with ``severity`` WARNING, in file order


def course_files(flows_dir: Path) -> dict[str, str]:
    """The course's YAML files in ``flows_dir`` (not its tests), by file name."""
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(Path(flows_dir).glob("*.yaml"))}


def load_course(flows_dir: Path) -> Course:
    return check_course(flows_dir).course


def check_course(flows_dir: Path) -> Checked:
    flows_dir = Path(flows_dir)
    try:
        files = course_files(flows_dir)
    except OSError as error:
        raise FlowError([Problem(file=str(flows_dir), line=1, column=1, message=f"cannot read the flows: "
                                 f"{error}", fix="check the path and permissions")]) from error
    return check_course_texts(files, folder=str(flows_dir))


def load_course_texts(files: Mapping[str, str], *, folder: str = "flows") -> Course:
    return check_course_texts(files, folder=folder).course


def _plan_warnings(course: Course, folder: str) -> list[Problem]:
    """A module in no check-up area: no action plan can ever send a learner to it."""
    if course.checkup is None:
        return []
    covered = {module for area in course.checkup.areas for module in area.modules}
    return [warning(file=course.checkup.source or f"{folder}/{CHECKUP}", message=(
        f"the module '{module}' is in no check-up area, so no action plan can point to it"),
        fix=f"add {module} to the 'modules:' list of the area it teaches") for module in course.modules
        if module not in covered]


def check_course_texts(files: Mapping[str, str], *, folder: str = "flows") -> Checked:
    """Load and validate; raise ``FlowError`` (with the warnings too) or return the course and its warnings."""
    problems: list[Problem] = []

    def reader_for(name: str, required: bool = True) -> _FileReader | None:
        if name not in files:
            if required:
                problems.append(Problem(file=f"{folder}/{name}", line=1, column=1, message=f"{name} is missing",
                                        fix=f"create {name} (see flows/README.md)"))
            return None
        reader = _FileReader(f"{folder}/{name}")
        root = reader.compose(files[name])
        if root is None and not reader.problems:
            reader.problem(None, "the file is empty", "write it, see flows/README.md")
        if root is None:
            problems.extend(reader.problems)
            return None
        reader.root = root
        return reader

    manifest, system = reader_for(MANIFEST), reader_for(SYSTEM)
    title, email, module_ids, business = _manifest(manifest) if manifest else (None, "", (), ())
    texts = _system_texts(system) if system else {}
    business_ids = frozenset(kind.id for kind in business)
    flows: dict[str, Flow] = {}
    for module_id in module_ids:
        reader = reader_for(f"{module_id}.yaml")
        if reader is None:
            continue
        flow = read_flow(reader, reader.root, business_ids)
        problems.extend(reader.problems)
        if flow is not None and flow.id != module_id:
            problems.append(Problem(file=reader.file, line=1, column=1, message=f"the file declares flow "
                                    f"'{flow.id}' but course.yaml lists '{module_id}'",
                                    fix="make the two ids the same"))
        elif flow is not None:
            flows[flow.id] = flow
    checkup: CheckUp | None = None
    checkup_reader = reader_for(CHECKUP, required=False)
    if checkup_reader:
        checkup = read_checkup(checkup_reader, checkup_reader.root, module_ids)
        problems.extend(checkup_reader.problems)
    templates: tuple[TemplateSpec, ...] = ()
    templates_reader = reader_for(TEMPLATES, required=False)
    if templates_reader:
        templates = read_templates(templates_reader, templates_reader.root, tuple(module_ids))
        problems.extend(templates_reader.problems)
    reminders: Reminders | None = None
    reminders_reader = reader_for(REMINDERS, required=False)
    if reminders_reader:
        reminders, reminder_texts = read_reminders(reminders_reader, reminders_reader.root)
        problems.extend(reminders_reader.problems)
        for key in sorted(set(reminder_texts) & set(texts)):
            problems.append(Problem(file=reminders_reader.file, line=1, column=1, message=f"the text '{key}' is "
                                    f"also in {SYSTEM}", fix="keep it in one file"))
        texts = {**texts, **reminder_texts}
    open_days: tuple[OpenDay, ...] = ()
    events_reader = reader_for(EVENTS, required=False)
    if events_reader:
        open_days, event_texts = read_events(events_reader, events_reader.root, tuple(module_ids), business_ids)
        problems.extend(events_reader.problems)
        for key in sorted(set(event_texts) & set(texts)):
            problems.append(Problem(file=events_reader.file, line=1, column=1, message=f"the text '{key}' is "
                                    "also in another file", fix="keep it in one file"))
        texts = {**texts, **event_texts}
    broadcasts: tuple[BroadcastMessage, ...] = ()
    broadcasts_reader = reader_for(BROADCASTS, required=False)
    if broadcasts_reader:
        broadcasts = read_broadcasts(broadcasts_reader, broadcasts_reader.root, tuple(module_ids), templates)
        problems.extend(broadcasts_reader.problems)
    warnings = _unlisted_files(files, module_ids, folder) if manifest and not manifest.problems else []
    for reader in (manifest, system):
        if reader:
            problems.extend(reader.problems)
    if problems:
        raise FlowError(problems, warnings)
    assert title is not None
    course = Course(title=title, support_email=email, modules=tuple(module_ids), flows=flows, texts=texts,
                    business_types=business, checkup=checkup, templates=templates, reminders=reminders,
                    open_days=open_days, broadcasts=broadcasts)
    warnings += item_warnings(course)  # course-wide: an item whose right option's length gives it away
    warnings += _plan_warnings(course, folder)
    warnings += _optional_text_warnings(texts, folder) if system and not system.problems else []
    return Checked(course=course, warnings=tuple(in_order(warnings)))


def _optional_text_warnings(texts: Mapping[str, Translated], folder: str) -> list[Problem]:
    """A system text added after the first releases (``OPTIONAL_TEXT_KEYS``) that system.yaml lacks."""
    found = []
    for key, fallback in OPTIONAL_TEXT_KEYS.items():
        if key not in texts:
            instead = f"learners read '{fallback}' instead" if fallback else "learners read nothing there"
            found.append(warning(file=f"{folder}/{SYSTEM}", message=f"system.yaml has no text '{key}': {instead}",
                                 fix=f"add '{key}:' under texts (see flows/README.md)"))
    return found


def _unlisted_files(files: Mapping[str, str], module_ids: tuple[str, ...], folder: str) -> list[Problem]:
    """A YAML file the manifest does not name is neither checked nor shown to anyone: say so."""
    known = {MANIFEST, SYSTEM, CHECKUP, TEMPLATES, REMINDERS, EVENTS, BROADCASTS,
             *(f"{module_id}.yaml" for module_id in module_ids)}
    return [warning(file=f"{folder}/{name}", message=f"{name} is not listed in course.yaml, so it is not "
                    "checked and no learner sees it",
                    fix=f"add '{Path(name).stem}' under modules: in course.yaml, or move the file out of {folder}/")
            for name in sorted(files) if name not in known]


def key_position(text: str, key: str) -> tuple[int, int]:
    """Line and column (1-based) of a top-level ``key:`` in a YAML file's text; (1, 1) if not found."""
    reader = NodeReader("")
    root = reader.compose(text)
    if isinstance(root, yaml.MappingNode):
        for key_node, value_node in root.value:
            if getattr(key_node, "value", None) == key:
                return value_node.start_mark.line + 1, value_node.start_mark.column + 1
    return 1, 1


class _FileReader(NodeReader):
    root: yaml.Node


def _manifest(reader: _FileReader) -> tuple[Translated | None, str, tuple[str, ...], tuple[BusinessType, ...]]:
    top = reader.mapping(reader.root, where=MANIFEST, required=("course",))
    if not top or "course" not in top:
        return None, "", (), ()
    course = reader.mapping(top["course"], where="course", required=("title", "support_email", "modules"),
                            optional=("business_types",))
    if not course:
        return None, "", (), ()
    title = text(reader, course.get("title"), "course title", 200)
    email = reader.scalar(course["support_email"], where="support_email") if "support_email" in course else ""
    modules: list[str] = []
    for item in (reader.sequence(course["modules"], where="modules") or []) if "modules" in course else []:
        module_id = reader.identifier(item, where="module id")
        if module_id in modules:
            reader.problem(item, f"module '{module_id}' is listed twice", "list each module once")
        elif module_id:
            modules.append(module_id)
    business: list[BusinessType] = []
    for item in (reader.sequence(course["business_types"], where="business_types") or []) \
            if "business_types" in course else []:
        fields = reader.mapping(item, where="a business type", required=("id", "label"))
        if not fields or len(fields) < 2:
            continue
        kind_id = reader.identifier(fields["id"], where="business type id")
        kind_label = reader.translated(fields["label"], where=f"business type '{kind_id}' label",
                                       max_chars=LABEL_MAX_CHARS, limit_reason=channel_limits.LABEL.reason,
                                       placeholders=frozenset())
        if kind_id in {b.id for b in business} or kind_id == "default":
            reader.problem(item, f"business type '{kind_id}' is defined twice or reserved", "rename it")
        elif kind_id and kind_label:
            business.append(BusinessType(id=kind_id, label=kind_label))
    if len(business) > channel_limits.OPTIONS_MAX:
        reader.problem(course["business_types"], f"{len(business)} business types; {channel_limits.OPTIONS_REASON}",
                       f"keep at most {channel_limits.OPTIONS_MAX}")
    return title, email or "", tuple(modules), tuple(business)


def _system_texts(reader: _FileReader) -> dict[str, Translated]:
    top = reader.mapping(reader.root, where=SYSTEM, required=("texts",))
    if not top or "texts" not in top:
        return {}
    return reader.texts(top["texts"], required=SYSTEM_TEXT_KEYS, optional=tuple(OPTIONAL_TEXT_KEYS),
                        placeholders=SYSTEM_PLACEHOLDERS)
