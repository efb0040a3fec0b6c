"""``templates.yaml`` -> validated ``TemplateSpec``s: the WhatsApp message templates Bottega sends. No I/O.

A template is content like a lesson: written here beside the flows, checked by ``bottega flows check``,
compared with the WhatsApp Business Account and submitted by ``bottega templates check|submit``
(``bot.proactive.template_sync``), sent by ``bot.proactive`` when the 24-hour window is closed::

    templates:
      - name: lesson_reminder          # Meta's name: lowercase letters, digits, _
        category: utility              # utility | marketing | authentication (what Meta bills)
        use: reminder                  # what Bottega sends it for
        params: [module]               # {{1}} = the learner's module title (PARAM_FIELDS)
        body: {it: "... {{1}} ...", en: "... {{1}} ..."}
        example: {it: ["Restare in contatto"], en: ["Keeping in touch"]}   # one sample per parameter
        buttons:                       # quick replies; a tap brings the payload back into the chat
          - {label: {it: "Riprendi", en: "Resume"}, payload: "sys:rem:go"}

Checks: names, categories, one template per use, both languages, ``{{1}}``...``{{n}}`` used exactly once
each per language and matching ``params``, one example per parameter, a default for a field that may be
empty, button labels within every channel's limit, and payloads that resolve (``routable``).
"""

from __future__ import annotations

import re

import yaml

from bot.flows import channel_limits
from bot.flows.spec import LANGUAGES, TemplateButton, TemplateSpec, Translated
from bot.flows.yaml_reader import NodeReader

CATEGORIES = ("utility", "marketing", "authentication")
# what a parameter can be filled with; an Open Day's templates also have its title, when and where it is, the
# link to join (or its address) and the recording (bot.tutor.open_days)
PARAM_FIELDS = ("module", "time", "name", "business", "event", "when", "where", "link")
MAY_BE_EMPTY = frozenset({"name", "business", "link"})  # these need a ``defaults:`` text
BODY_MAX_CHARS = 1024  # Meta's limit for a template body
BUTTONS_MAX = 3  # we keep to three quick replies: the tightest our renderers show elsewhere
# Payloads a template button may carry: the engine routes each (bot.tutor.engine; a test holds the two
# together). An Open Day's buttons carry no event id: they answer the latest one announced to the learner.
TEMPLATE_PAYLOADS = frozenset({"sys:rem:go", "sys:rem:change", "sys:rem:off", "sys:menu", "sys:checkup",
                               "sys:od:yes", "sys:od:no", "sys:od:later", "sys:od:module"})
MODULE_PAYLOAD = "sys:module:"  # + a module id: start that module
PAYLOAD_WORDS = frozenset({"stop", "riprendi", "resume", "menu", "promemoria", "reminders"})  # global words
_NAME = re.compile(r"[a-z][a-z0-9_]{0,511}")
_PARAM = re.compile(r"\{\{(\d+)\}\}")
TEMPLATE_KEYS = ("name", "category", "use", "params", "body", "example", "buttons", "defaults", "language_codes")


def routable(payload: str, module_ids: tuple[str, ...]) -> bool:
    """Whether a template button's payload leads somewhere when tapped."""
    if payload.startswith(MODULE_PAYLOAD):
        return payload.removeprefix(MODULE_PAYLOAD) in module_ids
    return payload in TEMPLATE_PAYLOADS or payload.lower() in PAYLOAD_WORDS


def read_templates(reader: NodeReader, root: yaml.Node, module_ids: tuple[str, ...]) -> tuple[TemplateSpec, ...]:
    top = reader.mapping(root, where="templates.yaml", required=("templates",))
    if not top or "templates" not in top:
        return ()
    templates: list[TemplateSpec] = []
    for node in reader.sequence(top["templates"], where="templates") or []:
        template = _template(reader, node, module_ids)
        if template is None:
            continue
        if any(t.name == template.name for t in templates):
            reader.problem(node, f"template '{template.name}' is declared twice", "give each template its own name")
        elif any(t.use == template.use for t in templates):
            reader.problem(node, f"two templates are for use '{template.use}'", "keep one template per use")
        else:
            templates.append(template)
    return tuple(templates)


def _template(reader: NodeReader, node: yaml.Node, module_ids: tuple[str, ...]) -> TemplateSpec | None:
    fields = reader.mapping(node, where="a template", required=("name", "category", "use", "body"),
                            optional=TEMPLATE_KEYS)
    if not fields or not {"name", "category", "use", "body"} <= set(fields):
        return None
    before = len(reader.problems)
    name = reader.scalar(fields["name"], where="template name") or ""
    if name and not _NAME.fullmatch(name):
        reader.problem(fields["name"], f"template name '{name}' is not one Meta accepts",
                       "use lowercase letters, digits and '_', starting with a letter")
    where = f"template '{name}'"
    category = reader.scalar(fields["category"], where=f"{where} category") or ""
    if category not in CATEGORIES:
        reader.problem(fields["category"], f"{where} has the category '{category}'",
                       f"use one of: {', '.join(CATEGORIES)}")
    use = reader.identifier(fields["use"], where=f"{where} use") or ""
    params = _params(reader, fields.get("params"), where)
    body = reader.translated(fields["body"], where=f"{where} body", max_chars=BODY_MAX_CHARS,
                             limit_reason="a WhatsApp template body", placeholders=frozenset())
    if body:
        _check_numbering(reader, fields["body"], body, len(params), where)
    example = _example(reader, fields.get("example"), len(params), where, node)
    buttons = read_buttons(reader, fields.get("buttons"), module_ids, where)
    defaults = _defaults(reader, fields.get("defaults"), where)
    for field_name in params:
        if field_name in MAY_BE_EMPTY and field_name not in defaults:
            reader.problem(fields.get("params"), f"{where}: the parameter '{field_name}' may be empty for a learner",
                           f"add defaults: {{{field_name}: {{it: \"...\", en: \"...\"}}}} (Meta refuses empty ones)")
    codes = _codes(reader, fields.get("language_codes"), where)
    if len(reader.problems) > before or body is None:
        return None
    return TemplateSpec(name=name, category=category, use=use, params=params, body=body, example=example,
                        buttons=buttons, defaults=defaults, language_codes=codes, line=node.start_mark.line + 1)


def _params(reader: NodeReader, node: yaml.Node | None, where: str) -> tuple[str, ...]:
    if node is None:
        return ()
    params: list[str] = []
    for item in reader.sequence(node, where=f"{where} params") or []:
        value = reader.scalar(item, where=f"{where} parameter") or ""
        if value not in PARAM_FIELDS:
            reader.problem(item, f"{where} has the parameter '{value}'", f"use one of: {', '.join(PARAM_FIELDS)}")
        params.append(value)
    return tuple(params)


def _check_numbering(reader: NodeReader, node: yaml.Node, body: Translated, count: int, where: str) -> None:
    expected = [str(n) for n in range(1, count + 1)]
    for lang, text in body.texts:
        found = _PARAM.findall(text)
        if sorted(found, key=int) != expected or len(set(found)) != len(found):
            shown = ", ".join("{{" + n + "}}" for n in expected) or "no {{n}}"
            reader.problem(node, f"{where} body ({lang}) uses {', '.join('{{' + n + '}}' for n in found) or 'no {{n}}'}"
                           f" but declares {count} parameter(s)", f"use {shown}, each once, and list them in params:")


def _example(reader: NodeReader, node: yaml.Node | None, count: int, where: str,
             template: yaml.Node) -> dict[str, tuple[str, ...]]:
    if count == 0:
        return {}
    if node is None:
        reader.problem(template, f"{where} has parameters but no example", "add example: {it: [...], en: [...]}: "
                       "Meta reviews a template with sample values")
        return {}
    fields = reader.mapping(node, where=f"{where} example", required=LANGUAGES)
    example: dict[str, tuple[str, ...]] = {}
    for lang, values_node in (fields or {}).items():
        values = tuple(reader.scalar(item, where=f"{where} example") or "" for item in
                       reader.sequence(values_node, where=f"{where} example ({lang})") or [])
        if len(values) != count or not all(values):
            reader.problem(values_node, f"{where} example ({lang}) has {len(values)} value(s) for {count} parameter(s)",
                           "give one non-empty sample per parameter")
        example[lang] = values
    return example


def read_buttons(reader: NodeReader, node: yaml.Node | None, module_ids: tuple[str, ...],
             where: str) -> tuple[TemplateButton, ...]:
    if node is None:
        return ()
    items = reader.sequence(node, where=f"{where} buttons") or []
    if len(items) > BUTTONS_MAX:
        reader.problem(node, f"{where} has {len(items)} buttons", f"keep at most {BUTTONS_MAX}")
    buttons: list[TemplateButton] = []
    for item in items:
        fields = reader.mapping(item, where=f"{where} button", required=("label", "payload"))
        if not fields or len(fields) < 2:
            continue
        label = reader.translated(fields["label"], where=f"{where} button label",
                                  max_chars=channel_limits.LABEL.chars, limit_reason=channel_limits.LABEL.reason,
                                  placeholders=frozenset())
        payload = reader.scalar(fields["payload"], where=f"{where} button payload") or ""
        if not routable(payload, module_ids):
            known = ", ".join(sorted(TEMPLATE_PAYLOADS)) + f", {MODULE_PAYLOAD}<module id>, or a global word"
            reader.problem(fields["payload"], f"{where}: the button payload '{payload}' leads nowhere",
                           f"use one of: {known}")
        if label:
            buttons.append(TemplateButton(label=label, payload=payload))
    return tuple(buttons)


def _defaults(reader: NodeReader, node: yaml.Node | None, where: str) -> dict[str, Translated]:
    if node is None:
        return {}
    fields = reader.mapping(node, where=f"{where} defaults", optional=PARAM_FIELDS)
    defaults: dict[str, Translated] = {}
    for name, value in (fields or {}).items():
        text = reader.translated(value, where=f"{where} default for '{name}'", max_chars=60,
                                 limit_reason="a template parameter default", placeholders=frozenset())
        if text:
            defaults[name] = text
    return defaults


def _codes(reader: NodeReader, node: yaml.Node | None, where: str) -> dict[str, str]:
    if node is None:
        return {}
    fields = reader.mapping(node, where=f"{where} language_codes", optional=LANGUAGES)
    return {lang: reader.scalar(value, where=f"{where} language code") or lang
            for lang, value in (fields or {}).items()}
