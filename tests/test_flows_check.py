"""``bottega flows check`` on purpose-built broken folders: one per problem class it must catch.

Each folder under ``tests/flows_broken/`` is a complete one-module course (``course.yaml`` plus a
broken ``m_broken.yaml``); the test copies it with the real ``flows/system.yaml`` into a temporary
folder and runs the real command. The line the check must point at carries the comment
``# <- problem``. Every case asserts exit code 1 and a ``file:line:column: message — fix`` line
with the expected wording; a second test per case asserts that the line is the marked one.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from bot import cli
from bot.flows import items
from bot.flows.loader import load_course
from config.settings import PROJECT_ROOT

BROKEN = Path(__file__).resolve().parent / "flows_broken"
MARKER = "# <- problem"
PROBLEM_LINE = re.compile(r"^(?P<file>\S+):(?P<line>\d+):(?P<column>\d+): (?P<message>.*) — (?P<fix>.*)$")

# case -> (a fragment of the message, a fragment of the fix)
CASES = {
    "yaml_syntax": ("YAML syntax error: mapping values are not allowed", "quote texts that contain ': '"),
    "unknown_key": ("unknown key 'nxt' in a step", "did you mean 'next'?"),
    "wrong_type": ("points must be a whole number >= 0, not 'many'", "write a number like 1"),
    "missing_step": ("step 'intro' leads to 'q2', which does not exist", "point it at one of: intro, q1, summary"),
    "unreachable_step": ("nothing leads to step 'extra'", "add a choice, 'next' or branch that points to it"),
    "dead_end": ("step 'extra' is a dead end", "add 'next:', choices, or 'end: true'"),
    "duplicate_id": ("step id 'q1' is used twice", "give each step its own id"),
    "quiz_no_correct": ("step 'q1' has 0 correct options", "mark exactly one option with 'correct: true'"),
    "option_no_feedback": ("step 'q1' option 'b' has no feedback", "add 'feedback:'"),
    "missing_translation": ("choice 'go' label has no 'en' translation", "add 'en: \"...\"'"),
    # The checker names every channel a text breaks, the tightest one with its limit.
    "label_too_long": ("label (it) is 25 characters; a WhatsApp button, a Messenger quick reply and an Instagram "
                       "quick reply allow 20", "shorten it by 5 characters"),
    "message_too_long": ("say (it) is 4369 characters; an Instagram text (WhatsApp: 4096, Messenger: 2000) allows 999",
                         "shorten it by 3370 characters"),
    "too_many_choices": ("offers 11 choices; WhatsApp shows at most 10", "split the step"),
    "unknown_condition": ("unknown key 'score_over' in step 'check' when", "did you mean 'score_below'?"),
    "unknown_placeholder": ("uses the unknown placeholder {punteggio}", "use one of: {business}, {max_score}"),
}
IMPRECISE: dict[str, str] = {}  # detected, but reported on another line than the one to fix (none now)


def check(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, str]], str]:
    code = cli.main(["flows", "check", str(folder)])
    out = capsys.readouterr().out
    problems = [match.groupdict() for line in out.splitlines() if (match := PROBLEM_LINE.match(line))]
    return code, problems, out


def broken_course(case: str, tmp_path: Path) -> Path:
    folder = tmp_path / case
    shutil.copytree(BROKEN / case, folder)
    shutil.copy(PROJECT_ROOT / "flows" / "system.yaml", folder / "system.yaml")
    return folder


def marked_line(case: str) -> int:
    lines = (BROKEN / case / "m_broken.yaml").read_text(encoding="utf-8").splitlines()
    marked = [number for number, line in enumerate(lines, start=1) if line.rstrip().endswith(MARKER)]
    assert len(marked) == 1, f"{case}: mark exactly one line with '{MARKER}'"
    return marked[0]


def test_every_broken_folder_has_a_case() -> None:
    assert sorted(path.name for path in BROKEN.iterdir() if path.is_dir()) == sorted(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_check_reports_the_problem_with_its_fix(case: str, tmp_path: Path, capsys) -> None:
    code, problems, out = check(broken_course(case, tmp_path), capsys)
    message, fix = CASES[case]
    assert code == 1, out
    found = [p for p in problems if message in p["message"] and fix in p["fix"]]
    assert found, f"no problem with {message!r} / {fix!r} in:\n{out}"
    assert all(Path(p["file"]).name == "m_broken.yaml" for p in found), out


@pytest.mark.parametrize("case", [
    pytest.param(case, marks=pytest.mark.xfail(strict=True, reason=IMPRECISE[case])) if case in IMPRECISE
    else case for case in sorted(CASES)
])
def test_check_points_at_the_line_to_fix(case: str, tmp_path: Path, capsys) -> None:
    code, problems, out = check(broken_course(case, tmp_path), capsys)
    message, _ = CASES[case]
    lines = {int(p["line"]) for p in problems if message in p["message"]}
    assert lines == {marked_line(case)}, out


@pytest.mark.parametrize("case,false_problem", [
    ("missing_translation", "is a dead end"),  # the choice is dropped, so its step looks like a dead end
    ("unknown_condition", "branch without 'when' before the last one"),  # the unknown condition is dropped
])
def test_one_mistake_reports_no_false_problem(case: str, false_problem: str, tmp_path: Path, capsys) -> None:
    _, problems, out = check(broken_course(case, tmp_path), capsys)
    assert not [p for p in problems if false_problem in p["message"]], out


def test_the_shipped_flows_pass(capsys) -> None:
    code, problems, out = check(PROJECT_ROOT / "flows", capsys)
    errors = [p for p in problems if not p["message"].startswith("warning: ")]  # warnings do not fail the check
    assert (code, errors) == (0, []), out


def test_the_shipped_items_give_no_length_warning_and_meet_the_item_targets(capsys) -> None:
    """Every module is in its second edition: no item whose right option's length gives it away, and the three
    item figures (flows/README.md, ``bot.flows.items``) within target for the reference language."""
    _, problems, out = check(PROJECT_ROOT / "flows", capsys)
    assert [p for p in problems if p["message"].startswith("warning: ")] == [], out
    assert items.figures(load_course(PROJECT_ROOT / "flows"))["within_target"] is True
