"""The content author's tools: golden transcripts (``flows test``), graphs (``flows graph``), stats.

Transcripts replay on the real path (Chat -> Dispatcher -> engine -> renderer -> Redis outbox).
Graph output is checked by small structural validators written here (no Mermaid or Graphviz needed;
if Graphviz's ``dot`` happens to be installed, it parses the output too). Stats are compared with
numbers computed independently from the YAML with ``yaml.safe_load``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bot import channels, cli
from bot.dev import scaffold, transcripts
from bot.dev.transcripts import TranscriptError, read_transcript, run_transcript
from bot.flows import graph, stats
from bot.flows.loader import load_course_texts
from bot.flows.spec import LANGUAGES, Say, Translated
from config.settings import PROJECT_ROOT

FLOWS = PROJECT_ROOT / "flows"
SHIPPED = sorted((FLOWS / "tests").glob("*.yaml"))


def write(tmp_path: Path, text: str, name: str = "t.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- transcripts -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_transcripts_pass_on_every_channel(path, redis_client, course, settings):
    results = run_transcript(path, client=redis_client, course=course, settings=settings)
    assert [r.channel.name for r in results] == ["whatsapp", "messenger", "instagram"]
    assert all(r.passed for r in results), "\n\n".join(f for r in results for f in r.failures)


def test_shipped_transcripts_cover_the_brief():
    names = {p.stem for p in SHIPPED}
    assert {"m1_it_all_right", "m1_en_all_right", "m1_it_wrong_answers", "global_words_it", "global_words_en",
            "stale_button", "media"} <= names


GOOD = """name: "Inizio"
channels: [whatsapp]
turns:
  - send: ciao
    expect:
      choices: [Italiano, English]
  - tap: Italiano
    expect:
      text: "Perfetto, continuiamo in italiano.\\n\\nChe attività hai? Così ti faccio esempi su misura."
      contains: ["Che attività hai?"]
"""


def test_a_changed_expectation_fails_with_a_readable_diff(tmp_path, redis_client, course, settings):
    [ok] = run_transcript(write(tmp_path, GOOD), client=redis_client, course=course, settings=settings)
    assert ok.passed, ok.failures
    changed = GOOD.replace("continuiamo in italiano.", "continuiamo in inglese.")
    [result] = run_transcript(write(tmp_path, changed), client=redis_client, course=course, settings=settings)
    assert not result.passed
    [failure] = result.failures
    assert failure.startswith("turn 2 (line 7), tap: 'Italiano'\n")
    assert "expected a message with exactly this text:" in failure
    assert "--- expected\n" in failure and "+++ actual (message 1)\n" in failure
    assert "-Perfetto, continuiamo in inglese.\n" in failure
    assert "+Perfetto, continuiamo in italiano.\n" in failure
    assert "messages of this turn:\n    [1] Perfetto, continuiamo in italiano." in failure


def test_contains_and_choices_failures_show_expected_and_actual(tmp_path, redis_client, course, settings):
    changed = GOOD.replace("choices: [Italiano, English]", "choices: [English, Italiano]\n      "
                           "contains: [Benvenuto]\n      not_contains: [Bottega]")
    [result] = run_transcript(write(tmp_path, changed), client=redis_client, course=course, settings=settings)
    [failure] = result.failures
    assert failure.startswith("turn 1 (line 4), send: 'ciao'\n")
    assert "  expected to contain: 'Benvenuto'\n" in failure
    assert "  expected NOT to contain: 'Bottega'\n" in failure
    assert "  expected choices: ['English', 'Italiano']\n  offered choices:  ['Italiano', 'English']" in failure
    assert "        options: Italiano | English" in failure


def test_tapping_an_option_that_is_not_on_screen_fails_and_stops(tmp_path, redis_client, course, settings):
    text = GOOD.replace("- tap: Italiano", "- tap: Deutsch") + "  - tap: 1\n"
    [result] = run_transcript(write(tmp_path, text), client=redis_client, course=course, settings=settings)
    [failure] = result.failures
    assert "'Deutsch' is not on screen; the options are ['Italiano', 'English']" in failure
    assert "(the replay stops here)" in failure


def test_each_replay_meets_a_new_learner(tmp_path, redis_client, course, settings):
    every_channel = GOOD.replace('channels: [whatsapp]', 'user: "3933300"')  # Instagram numbers the options in the text
    loose = '      contains: ["Perfetto, continuiamo in italiano.", "Che attività hai?"]\n'
    every_channel = re.sub(r'      text: .*\n      contains: .*\n', loose, every_channel)
    path = write(tmp_path, every_channel)
    first = run_transcript(path, client=redis_client, course=course, settings=settings)
    again = run_transcript(path, client=redis_client, course=course, settings=settings)
    assert all(r.passed for r in first + again)  # a returning learner would not be welcomed again


@pytest.mark.parametrize("text,line,column,fragment", [
    ('name: x\nturns:\n  - send: ciao\n    exepct: {contains: [a]}\n', 4, 5,
     "unknown key 'exepct' in a turn — did you mean 'expect'?"),
    ('name: x\nturns:\n  - send: ciao\n    tap: 1\n', 3, 5, "a turn does exactly one of send, tap, tap_any, tap_old"),
    ('name: x\nturns:\n  - tap_any: []\n', 3, 14, "tap_any lists no title"),
    ('name: x\nturns:\n  - media: photo\n', 3, 12, "unknown media 'photo' — use one of: image, audio"),
    ('name: x\nchannels: [telegram]\nturns:\n  - send: ciao\n', 2, 12, "unknown channel 'telegram'"),
    ('name: x\nturns:\n  - send: ciao\n    expect:\n      choices: Italiano\n', 5, 16, "must be a list"),
    ('name: x\nturns:\n  - send: a: b\n', 3, 12, "YAML syntax error"),
    ('name: x\n', 1, 1, "the transcript is missing the key 'turns'"),
    ('', 1, 1, "the transcript is empty"),
])
def test_a_malformed_transcript_names_file_and_line(tmp_path, text, line, column, fragment):
    path = write(tmp_path, text)
    with pytest.raises(TranscriptError) as caught:
        read_transcript(path)
    assert f"{path}:{line}:{column}: " in str(caught.value)
    assert fragment in str(caught.value)


def test_main_prints_pass_fail_and_a_summary(tmp_path, redis_url, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    good, bad = write(tmp_path, GOOD, "good.yaml"), write(tmp_path, "name: x\nturns: 3\n", "bad.yaml")
    out = io.StringIO()
    assert transcripts.main([good], flows_dir=FLOWS, out=out) == 0
    assert out.getvalue() == "PASS Inizio [whatsapp]\n1 passed, 0 failed\n"
    out = io.StringIO()
    assert transcripts.main([tmp_path], flows_dir=FLOWS, out=out) == 1
    assert f"FAIL {bad} (malformed)\n{bad}:2:8: turns must be a list" in out.getvalue()
    assert out.getvalue().endswith("1 passed, 1 failed\n")


def test_main_starts_and_stops_its_own_redis_without_redis_url(tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    out = io.StringIO()
    assert transcripts.main([write(tmp_path, GOOD)], flows_dir=FLOWS, out=out) == 0, out.getvalue()


# --- graphs ------------------------------------------------------------------------------------

SAFE_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MERMAID_KEYWORDS = {"end", "graph", "flowchart", "subgraph", "class", "classdef", "style", "click", "linkstyle",
                    "direction", "default", "call", "href"}
DOT_KEYWORDS = {"node", "edge", "graph", "digraph", "subgraph", "strict"}
MERMAID_LABEL = r'"(?P<label>[^"]*)"'
MERMAID_NODE = re.compile(r"(?P<id>\S+?)(?:\[" + MERMAID_LABEL + r"\]|\(\(" + MERMAID_LABEL.replace("label", "l2")
                          + r"\)\)|\{\{" + MERMAID_LABEL.replace("label", "l3") + r"\}\}|\{"
                          + MERMAID_LABEL.replace("label", "l4") + r"\}|\(\[" + MERMAID_LABEL.replace("label", "l5")
                          + r"\]\))")
MERMAID_EDGE = re.compile(r"(?P<source>\S+) -->(?:\|" + MERMAID_LABEL + r"\|)? (?P<target>\S+)")
DOT_STRING = r'"(?:[^"\\\n]|\\.)*"'
DOT_ATTRS = rf"\[(?:\w+=(?:{DOT_STRING}|\w+))(?:, \w+=(?:{DOT_STRING}|\w+))*\]"
DOT_NODE = re.compile(rf"(?P<id>\S+) {DOT_ATTRS};")
DOT_EDGE = re.compile(rf"(?P<source>\S+) -> (?P<target>\S+)(?: {DOT_ATTRS})?;")


def balanced(text: str, quoted: str) -> bool:
    """Brackets outside quoted strings open and close in order."""
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    for char in re.sub(quoted, '""', text):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


def validate_mermaid(text: str) -> tuple[set[str], list[tuple[str, str, str]]]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[0] == "flowchart TD"
    nodes: set[str] = set()
    edges: list[tuple[str, str, str]] = []
    for line in lines[1:]:
        assert balanced(line, r'"[^"]*"'), line
        if line.startswith("%%") or line.startswith("classDef "):
            continue
        if line.startswith("class "):
            assert set(line.split()[1].split(",")) <= nodes, line
        elif edge := MERMAID_EDGE.fullmatch(line):
            edges.append((edge["source"], edge["target"], edge["label"] or ""))
        elif node := MERMAID_NODE.fullmatch(line):
            nodes.add(node["id"])
            label = next(value for key, value in node.groupdict().items() if key != "id" and value is not None)
            assert not re.search(r"[<>|\"]", label.replace("<br/>", "")), f"unescaped label: {line}"
        else:
            raise AssertionError(f"not a Mermaid statement: {line!r}")
    for ident in nodes | {end for s, t, _ in edges for end in (s, t)}:
        assert SAFE_ID.fullmatch(ident) and ident.lower() not in MERMAID_KEYWORDS, ident
    assert {end for s, t, _ in edges for end in (s, t)} <= nodes, "an edge references an undeclared node"
    return nodes, edges


def validate_dot(text: str) -> tuple[set[str], list[tuple[str, str, str]]]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert re.fullmatch(rf"digraph {DOT_STRING} \{{", lines[0]) and lines[-1] == "}", text
    assert balanced(text, DOT_STRING)
    nodes: set[str] = set()
    edges: list[tuple[str, str, str]] = []
    for line in lines[1:-1]:
        if line == "rankdir=TB;" or re.fullmatch(rf"(node|edge) {DOT_ATTRS};", line):
            continue
        if edge := DOT_EDGE.fullmatch(line):
            label = re.search(rf"label=({DOT_STRING})", line)
            edges.append((edge["source"], edge["target"], json.loads(label[1]) if label else ""))
        elif node := DOT_NODE.fullmatch(line):
            nodes.add(node["id"])
        else:
            raise AssertionError(f"not a dot statement: {line!r}")
    for ident in nodes:
        assert SAFE_ID.fullmatch(ident) and ident.lower() not in DOT_KEYWORDS, ident
    assert {end for s, t, _ in edges for end in (s, t)} <= nodes, "an edge references an undeclared node"
    return nodes, edges


def expected_edge_count(flow) -> int:
    return 1 + sum(len(s.choices) + len(s.branch) + (len(s.quiz.options) if s.quiz else 0)
                   + (1 if s.next and not s.quiz and not s.choices else 0) for s in flow.steps.values())


@pytest.mark.parametrize("validate,text", [
    (validate_mermaid, 'graph TD\n    a["x"]\n'),  # wrong header
    (validate_mermaid, 'flowchart TD\n    a["x"]\n    a --> b\n'),  # b is not declared
    (validate_mermaid, 'flowchart TD\n    end["x"]\n'),  # a keyword as node id
    (validate_mermaid, 'flowchart TD\n    a["say "hi""]\n'),  # an unescaped quote
    (validate_mermaid, 'flowchart TD\n    a["x"\n'),  # unbalanced brackets
    (validate_mermaid, 'flowchart TD\n    a["<b>x</b>"]\n'),  # raw markup in a label
    (validate_dot, 'digraph "g" {\n    a [label="x"];\n    a -> b;\n}\n'),  # b is not declared
    (validate_dot, 'digraph "g" {\n    node [label="x"];\n    a [label="say "hi""];\n}\n'),  # quote
    (validate_dot, 'digraph "g" {\n    a [label="x"]\n}\n'),  # no semicolon
    (validate_dot, 'digraph "g" {\n    a [label="x"];\n'),  # not closed
])
def test_the_graph_validators_reject_broken_graphs(validate, text):
    with pytest.raises(AssertionError):
        validate(text)


@pytest.mark.parametrize("fmt,validate", [("mermaid", validate_mermaid), ("dot", validate_dot)])
@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_shipped_flow_draws_as_a_valid_graph(course, fmt, validate, lang):
    for flow in course.flows.values():
        nodes, edges = validate(graph.render(flow, fmt=fmt, lang=lang))
        assert nodes == {graph.node_id(s) for s in flow.steps} | {graph.START_NODE}, flow.id
        assert len(edges) == expected_edge_count(flow), flow.id


BRANCHY = """flow: m_graph
version: 1
title: {it: "Grafo", en: "Graph"}
short_title: {it: "Grafo", en: "Graph"}
start: graph
steps:
  - id: graph
    say: {it: '*"Ciao"* [a] {{b}} <c> | #1; \\ fine', en: "Odd title"}
    choices:
      - {id: go, label: {it: 'Sì "davvero" [x]', en: "Yes"}, next: node, set: {channel: wa}}
      - {id: pipe, label: {it: "a|b {{c}} <d> #e", en: "Pipe"}, next: node}
  - id: node
    kind: quiz
    quiz:
      question: {it: "Domanda (1)?", en: "Question (1)?"}
      options:
        - {id: a, label: {it: "Giusta", en: "Right"}, correct: true, feedback: {it: "Sì.", en: "Yes."}}
        - {id: b, label: {it: "Sbagliata", en: "Wrong"}, feedback: {it: "No.", en: "No."}}
    next: check
  - id: check
    say: {it: "Vediamo.", en: "Let's see."}
    branch:
      - {when: {score_at_least: 1}, next: end}
      - {when: {business: bakery, var: {channel: wa}}, next: end}
      - {when: {answered: {step: node, option: b}}, next: end}
      - {when: {score_below: 1}, next: end}
      - next: end
  - id: end
    kind: summary
    say: {it: "Fine.", en: "The end."}
    end: true
"""


@pytest.fixture(scope="module")
def branchy():
    files = {"course.yaml": (FLOWS / "course.yaml").read_text(encoding="utf-8"),
             "system.yaml": (FLOWS / "system.yaml").read_text(encoding="utf-8"), "m_graph.yaml": BRANCHY}
    manifest = yaml.safe_load(files["course.yaml"])
    manifest["course"]["modules"] = ["m_graph"]
    files["course.yaml"] = yaml.safe_dump(manifest, allow_unicode=True)
    return load_course_texts(files).flows["m_graph"]


@pytest.mark.parametrize("fmt,validate", [("mermaid", validate_mermaid), ("dot", validate_dot)])
def test_branches_quizzes_odd_labels_and_keyword_ids_draw_safely(branchy, fmt, validate):
    nodes, edges = validate(graph.render(branchy, fmt=fmt))
    assert {"s_graph", "s_node", "s_end"} <= nodes
    labels = [label for source, _, label in edges if source == "s_check"]
    if fmt == "dot":
        assert labels == ["score ≥ 1", "business = bakery and channel = wa", "node = b", "score < 1", "otherwise"]
        assert [label for source, _, label in edges if source == "s_node"] == ["✓ Giusta", "✗ Sbagliata"]
    else:
        assert labels == ["score ≥ 1", "business = bakery and channel = wa", "node = b", "score #lt; 1",
                          "otherwise"]
        assert '#quot;' in graph.render(branchy) and "s_end([" in graph.render(branchy)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graphviz_parses_every_graph(course, branchy):
    for flow in [*course.flows.values(), branchy]:
        done = subprocess.run(["dot", "-Tsvg"], input=graph.render(flow, fmt="dot"), capture_output=True,
                              text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr


def test_graph_main_prints_a_module_or_names_the_modules(course, capsys):
    module = course.modules[0]
    assert graph.main([module, str(FLOWS), "--format", "dot", "--lang", "en"]) == 0
    assert capsys.readouterr().out == graph.render(course.flows[module], fmt="dot", lang="en")
    assert graph.main(["m_nope", str(FLOWS)]) == 1
    assert f"no module 'm_nope' in the course; use one of: {module}," in capsys.readouterr().err


def test_an_unknown_format_is_refused(branchy):
    with pytest.raises(ValueError, match="use one of: mermaid, dot"):
        graph.render(branchy, fmt="svg")


# --- stats -------------------------------------------------------------------------------------


def translated_dicts(value):
    """Every {it: ..., en: ...} mapping in a YAML tree."""
    if isinstance(value, dict):
        if value and set(value) <= set(LANGUAGES):
            yield value
        else:
            for item in value.values():
                yield from translated_dicts(item)
    elif isinstance(value, list):
        for item in value:
            yield from translated_dicts(item)


def test_stats_match_counts_taken_from_the_yaml(course):
    result = stats.collect(course)
    manifest = yaml.safe_load((FLOWS / "course.yaml").read_text(encoding="utf-8"))["course"]
    assert result["modules"] == len(manifest["modules"]) == len(result["flows"])
    totals = {"lessons": 0, "quiz_questions": 0, "max_score": 0, "words": dict.fromkeys(LANGUAGES, 0)}
    for module in manifest["modules"]:
        data = yaml.safe_load((FLOWS / f"{module}.yaml").read_text(encoding="utf-8"))
        steps = data["steps"]
        lessons = sum(1 for s in steps if s.get("kind", "lesson") == "lesson" and "quiz" not in s)
        questions = sum(1 for s in steps if "quiz" in s)
        points = sum(s["quiz"].get("points", 1) for s in steps if "quiz" in s)
        got = result["flows"][module]
        assert (got["steps"], got["lessons"], got["quiz_questions"], got["max_score"]) == \
            (len(steps), lessons, questions, points), module
        for lang in LANGUAGES:
            words = sum(len(d[lang].split()) for d in translated_dicts(data))
            assert got["languages"][lang]["words"] == words, (module, lang)
            totals["words"][lang] += words
        totals["lessons"] += lessons
        totals["quiz_questions"] += questions
        totals["max_score"] += points
    assert {key: result["totals"][key] for key in totals} == totals
    assert result["all_translated"] is True
    assert result["totals"]["over_limit"] == 0


def test_checkup_stats_match_the_yaml(course):
    path = FLOWS / "checkup.yaml"
    if not path.exists():
        assert stats.collect(course)["checkup"] is None
        return
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    areas = {area["id"]: sum(q["area"] == area["id"] for q in data["questions"]) for area in data["areas"]}
    plan = {area["id"]: area.get("modules") or [area["module"]] for area in data["areas"]}
    in_plan = {module for modules in plan.values() for module in modules}
    missing = [module for module in course.modules if module not in in_plan]
    assert stats.collect(course)["checkup"] == {
        "questions": len(data["questions"]), "areas": areas,
        "knowledge_questions": sum(q["kind"] == "knowledge" for q in data["questions"]),
        "plan_modules": plan, "modules_not_in_plan": missing, "every_module_in_plan": not missing}
    assert missing == []  # the shipped course: every module is reachable from the check-up's action plan


def test_longest_messages_are_measured_after_the_renderers_split_them(course):
    flow = course.flows[course.modules[0]]
    step = next(s for s in flow.steps.values() if s.end)  # no options: WhatsApp sends it as one text
    sentence = "Una frase di prova per misurare. "
    long_text = (sentence * (3000 // len(sentence))).strip()
    longer = dataclasses.replace(step, say=(Say((("default", Translated.of(it=long_text, en=long_text)),)),))
    longer_flow = dataclasses.replace(flow, steps={**flow.steps, step.id: longer})
    result = stats.collect(dataclasses.replace(course, flows={**course.flows, flow.id: longer_flow}))
    longest = result["flows"][flow.id]["languages"]["it"]["longest"]
    assert longest["whatsapp"] == {"chars": len(long_text), "step": step.id,  # one text of up to 4096
                                   "bytes": len(long_text.encode("utf-8"))}
    assert 1000 < longest["messenger"]["chars"] <= 2000  # split for Messenger's 2000
    assert 500 < longest["instagram"]["chars"] <= 999  # split under Instagram's 1000 characters and bytes
    assert longest["instagram"]["bytes"] <= 1000
    assert result["flows"][flow.id]["languages"]["it"]["messages_over_aim"] >= 1


def test_a_label_over_the_limit_is_reported(course):
    flow = course.flows[course.modules[0]]
    step = next(s for s in flow.steps.values() if s.choices)
    choice = dataclasses.replace(step.choices[0], label=Translated.of(it="Un'etichetta troppo lunga", en="Ok"))
    broken = dataclasses.replace(step, choices=(choice, *step.choices[1:]))
    result = stats.collect(dataclasses.replace(course, flows={
        **course.flows, flow.id: dataclasses.replace(flow, steps={**flow.steps, step.id: broken})}))
    problems = result["flows"][flow.id]["languages"]["it"]["over_limit"]
    assert {p["channel"] for p in problems} == {parts.channel.name for parts in channels.every()}
    assert all(p["step"] == step.id for p in problems)
    assert result["totals"]["over_limit"] == len(problems)
    assert f"messages over a channel limit: {len(channels.every())}" in stats.format_text(result)


def test_stats_main_prints_text_and_json(capsys):
    assert stats.main([str(FLOWS)]) == 0
    text = capsys.readouterr().out
    assert "every text in both languages: yes" in text and "messages over a channel limit: none" in text
    assert stats.main([str(FLOWS), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["modules"] == len(data["flows"]) and data["all_translated"] is True


# --- flows new (the scaffold) ------------------------------------------------------------------


@pytest.mark.parametrize("manifest,after,expected", [
    ("course:\n  modules:\n    - m1\n    - m2  # last\n", "",
     "course:\n  modules:\n    - m1\n    - m2  # last\n    - m9\n"),
    ("course:\n  modules:\n  - m1\n  - m2", "m1", "course:\n  modules:\n  - m1\n  - m9\n  - m2"),
    ("course:\n  modules:\n  - m1\n  - m2", "", "course:\n  modules:\n  - m1\n  - m2\n  - m9\n"),
    ("course:\n  modules: [m1, m2]  # order\n", "m1", "course:\n  modules: [m1, m9, m2]  # order\n"),
    ("course:\n  modules: [m1, m2]\n", "", "course:\n  modules: [m1, m2, m9]\n"),
    ("course:\n  modules: []\n", "", "course:\n  modules: [m9]\n"),
])
def test_a_new_module_is_listed_in_place_keeping_the_manifest_as_written(manifest, after, expected):
    assert scaffold.insert_module(manifest, "m9", after=after) == expected


@pytest.mark.parametrize("manifest,after,message", [
    ("course:\n  modules: [m1, m9]\n", "", "course.yaml:2:17: module 'm9' is already listed — choose another id"),
    ("course:\n  modules: [m1]\n", "m7", "course.yaml:2:12: --after names 'm7', which is not in modules — use one "
                                          "of: m1"),
    ("course:\n  title: x\n", "", "course.yaml:1:1: no list of modules under 'course:'"),
])
def test_a_manifest_the_scaffold_cannot_extend_is_named_with_its_line(manifest, after, message):
    with pytest.raises(scaffold.ScaffoldError, match=re.escape(message)):
        scaffold.insert_module(manifest, "m9", after=after)


def small_course(tmp_path: Path, modules: list[str]) -> Path:
    """The shipped system texts and the first shipped modules: room in the menu for a new one."""
    folder = tmp_path / "flows"
    folder.mkdir()
    for name in ("system.yaml", *(f"{m}.yaml" for m in modules)):
        shutil.copy(FLOWS / name, folder / name)
    manifest = (FLOWS / "course.yaml").read_text(encoding="utf-8")
    manifest = manifest[:manifest.index("  modules:")] + "  modules:\n" + "".join(f"    - {m}\n" for m in modules)
    (folder / "course.yaml").write_text(manifest, encoding="utf-8")
    return folder


def test_a_scaffolded_module_passes_check_and_its_conversation_passes(tmp_path, redis_url, monkeypatch, capsys):
    folder = small_course(tmp_path, ["m1_contatto", "m2_pagina"])
    monkeypatch.setenv("BOTTEGA_FLOWS_DIR", str(folder))
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert cli.main(["flows", "new", "m3_prezzi_chiari"]) == 0
    out = capsys.readouterr().out
    assert "listed it in" in out and "after m2_pagina" in out and "Note:" not in out
    assert yaml.safe_load((folder / "course.yaml").read_text())["course"]["modules"][-1] == "m3_prezzi_chiari"
    text = (folder / "m3_prezzi_chiari.yaml").read_text(encoding="utf-8")
    assert 'title: {it: "Prezzi chiari", en: "Prezzi chiari"}' in text
    assert "Bottega itself puts \"✅ Giusto!\" in front of the feedback" in text and '"❌ Non proprio."' in text
    assert cli.main(["flows", "check"]) == 0
    assert "warning" not in capsys.readouterr().out
    assert cli.main(["flows", "test", str(folder / "tests" / "m3_prezzi_chiari_it.yaml")]) == 0
    assert capsys.readouterr().out.endswith(f"{len(channels.every())} passed, 0 failed\n")


def test_a_module_appended_past_the_first_menu_page_is_reached_through_the_next_page(
        tmp_path, monkeypatch, capsys, redis_client, settings):
    folder = tmp_path / "flows"
    shutil.copytree(FLOWS, folder)
    monkeypatch.setenv("BOTTEGA_FLOWS_DIR", str(folder))
    assert cli.main(["flows", "new", "m99_prezzi"]) == 0  # appended after every module and the check-up
    assert "does not offer" not in capsys.readouterr().out
    conversation = folder / "tests" / "m99_prezzi_it.yaml"
    assert "the menu's next page" in conversation.read_text(encoding="utf-8")
    course = load_course_texts({p.name: p.read_text(encoding="utf-8") for p in folder.glob("*.yaml")})
    results = run_transcript(conversation, client=redis_client, course=course, settings=settings)
    assert all(result.passed for result in results), [f for r in results for f in r.failures]


@pytest.mark.parametrize("flow_id,after,message", [
    ("M11", "", "'M11' is not a valid module id — use lowercase letters"),
    ("m1_contatto", "", "m1_contatto.yaml already exists — choose another module id"),
    ("m11_x", "m_nope", "--after names 'm_nope', which is not in modules"),
])
def test_a_refused_scaffold_leaves_the_folder_as_it_was(tmp_path, monkeypatch, capsys, flow_id, after, message):
    folder = small_course(tmp_path, ["m1_contatto"])
    before = {path: path.read_bytes() for path in folder.rglob("*")}
    assert cli.main(["flows", "new", flow_id, str(folder), *(["--after", after] if after else [])]) == 1
    assert message in capsys.readouterr().err
    assert {path: path.read_bytes() for path in folder.rglob("*")} == before


def test_the_scaffold_wants_a_course_that_passes_the_check(tmp_path, capsys):
    folder = small_course(tmp_path, ["m1_contatto"])
    (folder / "m1_contatto.yaml").write_text("flow: [unclosed\n", encoding="utf-8")
    assert cli.main(["flows", "new", "m2_x", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "must pass the check before a module is added" in err and "m1_contatto.yaml:2:1: YAML syntax" in err


# --- flows check: warnings and the live course -------------------------------------------------


def test_check_says_when_it_could_not_compare_with_the_live_course(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("BOTTEGA_VAR_DIR", str(tmp_path / "var"))  # no `make run` here
    assert cli.main(["flows", "check", str(FLOWS)]) == 0
    assert "Not compared with the live course (REDIS_URL is not set and 'make run' is not running): a changed " \
           "module whose version was not raised is caught only by 'bottega flows publish'." in capsys.readouterr().out


def test_check_compares_with_the_release_make_run_serves(tmp_path, monkeypatch, capsys):
    from bot.dev import embedded_redis
    from bot.flows.loader import course_files
    from bot.storage import releases

    folder = tmp_path / "flows"
    shutil.copytree(FLOWS, folder)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("BOTTEGA_VAR_DIR", str(tmp_path / "var"))
    server = embedded_redis.start(tmp_path / "var" / "redis", persist=False)  # what `make run` starts
    try:
        import redis

        client = redis.Redis.from_url(server.url)
        releases.publish(client, course_files(folder), folder=str(folder))
        client.close()
        module = folder / "m2_pagina.yaml"
        module.write_text(module.read_text(encoding="utf-8").replace("kind: lesson", "kind: intro", 1))
        assert cli.main(["flows", "check", str(folder)]) == 0
        out = capsys.readouterr().out
    finally:
        server.stop()
    version = yaml.safe_load(module.read_text(encoding="utf-8"))["version"]
    line = next(n for n, text in enumerate(module.read_text(encoding="utf-8").splitlines(), 1)
                if text.startswith("version:"))
    assert f"{module}:{line}:10: warning: module 'm2_pagina' changed but is still version {version}" in out
    assert "Compared with live release 1 (the 'make run' Redis)." in out
    modules = len(yaml.safe_load((folder / "course.yaml").read_text())["course"]["modules"])
    assert out.splitlines()[-1].startswith(f"OK: {modules} flow(s)") and " warning(s)." in out
