"""Draw a flow: ``render(flow, fmt="mermaid"|"dot", lang="it") -> str``. No I/O but reading the flows
folder in ``main`` (``bottega flows graph FLOW [PATH] [--format mermaid|dot] [--lang it|en]``).

One node per step, labelled ``<step id> · <kind>`` and a short title (the first line of its first
message, or of its quiz question, without ``*``/``_`` marks, at most ``TITLE_MAX_CHARS``). Shapes:
a quiz is a hexagon, a step that moves on by a ``branch`` a diamond, the end step a stadium (dot:
a double octagon); a small "start" node points at the flow's ``start``. Edges: one per choice
(its label), one per quiz option (its label with ✓ for the right answer, ✗ for the others), one per
branch (its condition, e.g. ``score ≥ 3``, ``business = bakery``; the default is ``otherwise``), and
an unlabelled one for a plain ``next``.

Node ids are ``s_<step id>``: step ids are already ``[a-z][a-z0-9_]*``, and the prefix keeps them
clear of each language's keywords (Mermaid's ``end``, dot's ``node``/``edge``/``graph``). Every
label is quoted, with its quotes, brackets and other special characters escaped: Mermaid entity
codes (``#quot;``, ``#35;``...) or dot's backslash escapes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.flows.spec import LANGUAGES, Branch, Condition, Flow, Step

FORMATS = ("mermaid", "dot")
TITLE_MAX_CHARS = 40
START_NODE = "flow_start"
# Mermaid entity codes for the characters that could end or confuse a quoted label.
_MERMAID_ESCAPES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "|": "#124;", "[": "#91;",
                    "]": "#93;", "{": "#123;", "}": "#125;", "(": "#40;", ")": "#41;", "`": "#96;"}
_DOT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n"}  # plain (non-record) shapes need no more


def render(flow: Flow, *, fmt: str = "mermaid", lang: str = "it") -> str:
    """The flow as Mermaid ``flowchart TD`` text or a Graphviz ``digraph``; ends with a newline."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown graph format {fmt!r}; use one of: {', '.join(FORMATS)}")
    nodes = [(node_id(step.id), _shape(step), f"{step.id} · {_kind(step)}", short_title(step, lang))
             for step in flow.steps.values()]
    edges = [(START_NODE, node_id(flow.start), "")]
    for step in flow.steps.values():
        edges.extend((node_id(step.id), node_id(target), label) for target, label in step_edges(step, lang))
    return _mermaid(flow, nodes, edges) if fmt == "mermaid" else _dot(flow, nodes, edges)


def node_id(step_id: str) -> str:
    return f"s_{step_id}"


def step_edges(step: Step, lang: str) -> list[tuple[str, str]]:
    """(target step id, edge label) for every way out of ``step``, in the order the YAML gives them."""
    edges = [(choice.next, choice.label.get(lang)) for choice in step.choices]
    if step.quiz:
        edges += [(step.next, f"{'✓' if option.correct else '✗'} {option.label.get(lang)}")
                  for option in step.quiz.options]
    elif step.next and not step.choices:
        edges.append((step.next, ""))
    edges += [(branch.next, branch_label(branch)) for branch in step.branch]
    return edges


def branch_label(branch: Branch) -> str:
    """``score ≥ 3 and business = bakery``; ``otherwise`` for the default branch."""
    return " and ".join(condition_label(c) for c in branch.conditions) or "otherwise"


def condition_label(condition: Condition) -> str:
    argument = condition.argument
    if condition.name == "score_at_least":
        return f"score ≥ {argument}"
    if condition.name == "score_below":
        return f"score < {argument}"
    if condition.name == "answered" and isinstance(argument, tuple):
        return f"{argument[0]} = {argument[1]}"
    if condition.name == "var" and isinstance(argument, tuple):
        return " and ".join(f"{name} = {value}" for name, value in argument)
    return f"{condition.name} = {argument}"


def short_title(step: Step, lang: str) -> str:
    """The first non-empty line of the step's first message (or quiz question), shortened."""
    texts = [say.get(lang) for say in step.say] + ([step.quiz.question.get(lang)] if step.quiz else [])
    for text in texts:
        for line in text.splitlines():
            line = " ".join(line.replace("*", "").replace("_", " ").split())
            if line:
                return line if len(line) <= TITLE_MAX_CHARS else line[:TITLE_MAX_CHARS - 1].rstrip() + "…"
    return ""


def _kind(step: Step) -> str:
    return "end" if step.end else "branch" if step.branch else step.kind.value


def _shape(step: Step) -> str:
    return "end" if step.end else "quiz" if step.quiz else "branch" if step.branch else "box"


# --- Mermaid -----------------------------------------------------------------------------------

_MERMAID_SHAPES = {"box": ('["', '"]'), "quiz": ('{{"', '"}}'), "branch": ('{"', '"}'), "end": ('(["', '"])')}


def _mermaid_text(text: str) -> str:
    return "".join(_MERMAID_ESCAPES.get(char, char) for char in text)


def _mermaid(flow: Flow, nodes: list[tuple[str, str, str, str]], edges: list[tuple[str, str, str]]) -> str:
    lines = ["flowchart TD", f"    %% {flow.id} v{flow.version}", f'    {START_NODE}(("start"))']
    for ident, shape, head, title in nodes:
        opening, closing = _MERMAID_SHAPES[shape]
        label = _mermaid_text(head) + (f"<br/>{_mermaid_text(title)}" if title else "")
        lines.append(f"    {ident}{opening}{label}{closing}")
    for source, target, label in edges:
        arrow = f'-->|"{_mermaid_text(label)}"|' if label else "-->"
        lines.append(f"    {source} {arrow} {target}")
    ends = [ident for ident, shape, _, _ in nodes if shape == "end"]
    lines.append("    classDef endStep stroke-width:3px")
    if ends:
        lines.append(f"    class {','.join(ends)} endStep")
    return "\n".join(lines) + "\n"


# --- Graphviz dot ------------------------------------------------------------------------------

_DOT_SHAPES = {"box": "box", "quiz": "hexagon", "branch": "diamond", "end": "doubleoctagon"}


def _dot_text(text: str) -> str:
    return '"' + "".join(_DOT_ESCAPES.get(char, char) for char in text) + '"'


def _dot(flow: Flow, nodes: list[tuple[str, str, str, str]], edges: list[tuple[str, str, str]]) -> str:
    lines = [f"digraph {_dot_text(flow.id)} {{", "    rankdir=TB;",
             '    node [shape=box, fontname="Helvetica"];', '    edge [fontname="Helvetica"];',
             f'    {START_NODE} [shape=circle, label="start"];']
    for ident, shape, head, title in nodes:
        label = _dot_text(head + (f"\n{title}" if title else ""))
        lines.append(f"    {ident} [shape={_DOT_SHAPES[shape]}, label={label}];")
    for source, target, label in edges:
        lines.append(f"    {source} -> {target}" + (f" [label={_dot_text(label)}];" if label else ";"))
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print one module's graph; exit 1 if the course does not load or has no such module."""
    from bot.flows.loader import load_course
    from bot.flows.problems import FlowError

    parser = argparse.ArgumentParser(prog="bottega flows graph", description="draw a module of the course")
    parser.add_argument("flow", help="the module id, e.g. m1_contatto")
    parser.add_argument("path", nargs="?", default=None, help="the flows folder (default: flows/)")
    parser.add_argument("--format", choices=FORMATS, default="mermaid")
    parser.add_argument("--lang", choices=LANGUAGES, default=LANGUAGES[0])
    args = parser.parse_args(argv)
    try:
        course = load_course(Path(args.path or "flows"))  # `bottega flows` passes the configured folder
    except FlowError as error:
        print(error, file=sys.stderr)
        return 1
    if args.flow not in course.flows:
        print(f"no module '{args.flow}' in the course; use one of: {', '.join(course.modules)}", file=sys.stderr)
        return 1
    sys.stdout.write(render(course.flows[args.flow], fmt=args.format, lang=args.lang))
    return 0
