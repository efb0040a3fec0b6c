"""Reading YAML nodes with their positions, collecting problems instead of stopping at the first.

The loader composes each file with PyYAML's *safe* loader into nodes (which carry line and column)
and reads them through a ``NodeReader``: every getter records a ``Problem`` and returns ``None``
when a value has the wrong shape, so one pass reports everything that is wrong in a file.
"""

from __future__ import annotations

import difflib
import string
from collections.abc import Iterable

import yaml

from bot.flows import channel_limits
from bot.flows.problems import Problem
from bot.flows.spec import LANGUAGES, REFERENCE_LANGUAGE, Translated

SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's safe loader when present: ~10x faster


class NodeReader:
    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []

    # -- problems -------------------------------------------------------------------------------
    def problem(self, node: yaml.Node | None, message: str, fix: str) -> None:
        line, column = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (1, 1)
        self.problems.append(Problem(file=self.file, line=line, column=column, message=message, fix=fix))

    # -- documents ------------------------------------------------------------------------------
    def compose(self, text: str) -> yaml.Node | None:
        try:
            return yaml.compose(text, Loader=SAFE_LOADER)
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            self.problems.append(Problem(
                file=self.file, line=line, column=column,
                message=f"YAML syntax error: {error.problem or error.context}",
                fix="check the indentation and quoting on this line (quote texts that contain ': ')",
            ))
        except yaml.YAMLError as error:
            self.problems.append(Problem(file=self.file, line=1, column=1,
                                         message=f"YAML error: {error}", fix="fix the YAML syntax"))
        return None

    # -- shapes ---------------------------------------------------------------------------------
    def mapping(self, node: yaml.Node, *, where: str, required: Iterable[str] = (),
                optional: Iterable[str] = ()) -> dict[str, yaml.Node] | None:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"{where} must be a mapping (key: value lines)",
                         "write it as indented 'key: value' lines")
            return None
        required, optional = tuple(required), tuple(optional)
        known = required + optional
        result: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.problem(key_node, f"{where} has a key that is not a plain word", "use a plain key")
                continue
            if key in result:
                self.problem(key_node, f"{where} has the key '{key}' twice", "keep only one of them")
                continue
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(known)}"
                self.problem(key_node, f"unknown key '{key}' in {where}", hint)
                continue
            result[key] = value_node
        for key in required:
            if key not in result:
                self.problem(node, f"{where} is missing the key '{key}'", f"add '{key}:'")
        return result

    def sequence(self, node: yaml.Node, *, where: str) -> list[yaml.Node] | None:
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, f"{where} must be a list", "write each item on its own line starting with '- '")
            return None
        return list(node.value)

    def scalar(self, node: yaml.Node, *, where: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            self.problem(node, f"{where} must be a single value", "write a plain value after the colon")
            return None
        return str(node.value)

    def identifier(self, node: yaml.Node, *, where: str) -> str | None:
        value = self.scalar(node, where=where)
        if value is None:
            return None
        if not value or not all(c.islower() or c.isdigit() or c == "_" for c in value) or not value[0].isalpha():
            self.problem(node, f"{where} '{value}' is not a valid id",
                         "use lowercase letters, digits and '_', starting with a letter")
            return None
        return value

    def integer(self, node: yaml.Node, *, where: str, minimum: int = 0) -> int | None:
        value = self.scalar(node, where=where)
        if value is None:
            return None
        if node.tag != "tag:yaml.org,2002:int" or int(value) < minimum:
            self.problem(node, f"{where} must be a whole number >= {minimum}, not '{value}'",
                         f"write a number like {max(minimum, 1)}")
            return None
        return int(value)

    def boolean(self, node: yaml.Node, *, where: str) -> bool | None:
        value = self.scalar(node, where=where)
        if value is None:
            return None
        if node.tag != "tag:yaml.org,2002:bool":
            self.problem(node, f"{where} must be true or false, not '{value}'", "write true or false")
            return None
        return value.lower() in ("true", "yes", "on")

    def translated(self, node: yaml.Node, *, where: str, max_chars: int, limit_reason: str,
                   placeholders: frozenset[str]) -> Translated | None:
        """``{it: ..., en: ...}`` with every language present, within ``max_chars``."""
        fields = self.mapping(node, where=where, optional=LANGUAGES)
        if fields is None:
            return None
        texts: list[tuple[str, str]] = []
        for lang in (REFERENCE_LANGUAGE, *[code for code in LANGUAGES if code != REFERENCE_LANGUAGE]):
            if lang not in fields:
                self.problem(node, f"{where} has no '{lang}' translation",
                             f"add '{lang}: \"...\"' next to the other language")
                continue
            text = self.scalar(fields[lang], where=f"{where} ({lang})")
            if text is None:
                continue
            text = text.strip()
            if not text:
                self.problem(fields[lang], f"{where} ({lang}) is empty", "write the text")
                continue
            if len(text) > max_chars:
                verb = "allow" if " and " in limit_reason else "allows"  # "a button and a quick reply allow"
                self.problem(fields[lang], f"{where} ({lang}) is {len(text)} characters; {limit_reason} "
                             f"{verb} {max_chars}", f"shorten it by {len(text) - max_chars} characters")
            self._check_placeholders(fields[lang], text, where=f"{where} ({lang})", allowed=placeholders)
            texts.append((lang, text))
        if len(texts) != len(LANGUAGES):
            return None
        return Translated(tuple(texts))

    def texts(self, node: yaml.Node, *, required: Iterable[str], optional: Iterable[str] = (),
              placeholders: frozenset[str]) -> dict[str, Translated]:
        """A ``texts:`` mapping of translated texts (system.yaml, events.yaml, reminders.yaml): a key starting
        ``label_`` is a button label and held to a label's length, any other to a message's."""
        fields = self.mapping(node, where="texts", required=required, optional=optional)
        texts: dict[str, Translated] = {}
        for key, value in (fields or {}).items():
            limit = channel_limits.LABEL if key.startswith("label_") else channel_limits.MESSAGE
            text = self.translated(value, where=f"text '{key}'", max_chars=limit.chars, limit_reason=limit.reason,
                                   placeholders=placeholders)
            if text:
                texts[key] = text
        return texts

    def _check_placeholders(self, node: yaml.Node, text: str, *, where: str, allowed: frozenset[str]) -> None:
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
        except ValueError as error:
            self.problem(node, f"{where} has a broken placeholder ({error})",
                         "write placeholders as {score}; double a literal brace: {{ or }}")
            return
        for name in names:
            if name not in allowed:
                known = ", ".join("{" + n + "}" for n in sorted(allowed)) or "none here"
                self.problem(node, f"{where} uses the unknown placeholder {{{name}}}",
                             f"use one of: {known}, or double the braces for a literal {{{{")
