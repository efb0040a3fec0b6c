"""The admin's loop, end to end, through the real ``bottega`` command on a real Redis.

An admin copies the course, scaffolds a module, makes the usual mistakes and reads the checker,
fixes them, previews with ``flows diff``, publishes, and chats through the published release. Then
they change the module: the checker warns that the version was not raised, publishing refuses it,
and the chat keeps showing what learners really get (``--draft`` shows the edit, labelled). With
the version raised and ``migrate:`` covering a renamed step, learners left on version 1 go on where
they were — one of them straight into the renamed step — instead of falling back to the menu.

The module is scaffolded near the front of the course: a new learner's menu shows the check-up and
the first 9 modules (menu paging is another change).
"""

from __future__ import annotations

import io
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from bot import channels, cli
from bot.storage import releases
from bot.storage.keys import LearnerPart, learner_key
from bot.tutor.progress import Progress
from config.settings import PROJECT_ROOT

MODULE = "m0_prezzi"
FIRST_LEARNER, SECOND_LEARNER, NEW_LEARNER = "393330000201", "393330000202", "393330000203"


@pytest.fixture
def folder(tmp_path: Path, redis_url: str, redis_client, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small course made of the shipped files (two modules, no check-up) — the folder every command works
    on, stable while the course's content changes; REDIS_URL is the test Redis."""
    copy = tmp_path / "flows"
    copy.mkdir()
    for name in ("system.yaml", "m1_contatto.yaml", "m2_pagina.yaml"):
        shutil.copy(PROJECT_ROOT / "flows" / name, copy / name)
    manifest = (PROJECT_ROOT / "flows" / "course.yaml").read_text(encoding="utf-8")
    manifest = manifest[:manifest.index("  modules:")] + "  modules:\n    - m1_contatto\n    - m2_pagina\n"
    (copy / "course.yaml").write_text(manifest, encoding="utf-8")
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("BOTTEGA_FLOWS_DIR", str(copy))
    monkeypatch.setenv("BOTTEGA_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("BOTTEGA_ENV", raising=False)  # the command's own default: dev
    return copy


def bottega(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def chat(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str,
         typed: list[str]) -> str:
    """``bottega chat ARGV`` with ``typed`` as the lines the learner types (then end of input)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(f"{line}\n" for line in typed)))
    code, out = bottega(capsys, "chat", *argv)
    assert code == 0, out
    return out


def where(redis_client, user: str) -> tuple[str, int, str]:
    progress = Progress.from_hash(redis_client.hgetall(learner_key(f"wa:{user}", LearnerPart.PROGRESS)))
    assert progress is not None
    return progress.flow, progress.flow_version, progress.step


def version_position(text: str) -> str:
    """``line:column`` of the value of ``version:`` in a module's text."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("version:"):
            return f"{number}:{len('version: ') + 1}"
    raise AssertionError("no version line")


def test_the_admin_loop_tells_the_truth(folder, capsys, monkeypatch, redis_client, redis_url):
    code, out = bottega(capsys, "flows", "publish", str(folder))
    assert (code, out.splitlines()[0]) == (0, "Published release 1 — first release: 2 modules. Every process "
                                              "serves it from its next message.")

    # -- scaffold: a module and its golden conversation that pass as generated
    code, out = bottega(capsys, "flows", "new", MODULE, "--after", "m1_contatto")
    assert code == 0, out
    module, transcript = folder / f"{MODULE}.yaml", folder / "tests" / f"{MODULE}_it.yaml"
    assert f"Created {module}" in out and f"listed it in {folder / 'course.yaml'}, after m1_contatto" in out
    modules = yaml.safe_load((folder / "course.yaml").read_text(encoding="utf-8"))["course"]["modules"]
    assert modules[:3] == ["m1_contatto", MODULE, "m2_pagina"]
    assert "# The course manifest" in (folder / "course.yaml").read_text(encoding="utf-8")  # comments kept
    template = module.read_text(encoding="utf-8")
    assert "✅ Giusto!" in template and "❌ Non proprio." in template  # the feedback prefixes are explained
    code, out = bottega(capsys, "flows", "check")
    assert code == 0 and "OK: 3 flow(s)" in out and "warning" not in out, out
    assert "Compared with live release 1 (REDIS_URL)." in out and "bottega flows diff" in out
    monkeypatch.delenv("REDIS_URL")  # as an admin runs it: the replay's learners go to a throwaway Redis
    code, out = bottega(capsys, "flows", "test", str(transcript))
    assert (code, out.splitlines()[-1]) == (0, f"{len(channels.every())} passed, 0 failed"), out
    monkeypatch.setenv("REDIS_URL", redis_url)

    # -- the usual mistakes: a bad next, a label over 20 characters, a missing translation; a stray file
    good = module.read_text(encoding="utf-8")
    broken = good.replace("next: q1", "next: q_1", 1)
    broken = broken.replace('{it: "Lo faccio dopo", en:', '{it: "Lo faccio dopo, davvero", en:')
    broken = broken.replace('label: {it: "Iniziamo", en: "Let\'s start"}', 'label: {it: "Iniziamo"}')
    module.write_text(broken, encoding="utf-8")
    (folder / "m0_bozza.yaml").write_text("flow: m0_bozza\n", encoding="utf-8")
    code, out = bottega(capsys, "flows", "check")
    assert code == 1
    assert re.search(rf"^{module}:\d+:\d+: step 'lesson_1' leads to 'q_1', which does not exist — point it at "
                     "one of: intro, lesson_1, q1, summary$", out, re.M), out
    assert re.search(rf"^{module}:\d+:\d+: step 'lesson_1' choice 'later' label \(it\) is 23 characters; a "
                     "WhatsApp button, a Messenger quick reply and an Instagram quick reply allow 20 — shorten it by 3 "
                     "characters$", out, re.M)
    assert re.search(rf"^{module}:\d+:\d+: step 'intro' choice 'go' label has no 'en' translation — add 'en: ", out,
                     re.M)
    assert f"{folder}/m0_bozza.yaml:1:1: warning: m0_bozza.yaml is not listed in course.yaml, so it is not " \
           f"checked and no learner sees it — add 'm0_bozza' under modules: in course.yaml, or move the file " \
           f"out of {folder}/" in out
    assert "3 problem(s) and 1 warning(s) found." in out
    module.write_text(good, encoding="utf-8")
    (folder / "m0_bozza.yaml").unlink()

    # -- preview, publish, chat through the published release
    code, out = bottega(capsys, "flows", "diff")
    assert code == 0 and f"Publishing {folder} over live release 1: modules added: {MODULE}" in out, out
    assert out.splitlines()[-1] == "Publish with: bottega flows publish"
    assert releases.live_release(redis_client) == "1"  # a preview publishes nothing
    code, out = bottega(capsys, "flows", "publish")
    assert (code, out.splitlines()[0]) == (0, f"Published release 2 — modules added: {MODULE}. Every process serves "
                                              "it from its next message.")
    out = chat(capsys, monkeypatch, "--user", FIRST_LEARNER, typed=["Italiano", "Panificio", "Prezzi"])
    assert out.startswith(f"Bottega chat — whatsapp, learner {FIRST_LEARNER} — the live course, release 2 (what "
                          "learners get).\n")
    assert "In questo modulo trovi una lezione breve" in out
    chat(capsys, monkeypatch, "--user", SECOND_LEARNER, typed=["Italiano", "Panificio", "Prezzi", "Iniziamo"])
    assert where(redis_client, FIRST_LEARNER) == (MODULE, 1, "intro")
    assert where(redis_client, SECOND_LEARNER) == (MODULE, 1, "lesson_1")

    # -- version 2 renames lesson_1, with migrate: but the version is not raised yet
    renamed = good.replace("id: lesson_1", "id: lezione_1").replace("next: lesson_1", "next: lezione_1")
    renamed = renamed.replace("*1. Il titolo della lezione*", "*1. La lezione, nuova versione*")
    renamed = renamed.replace("\nstart: intro\n", "\nmigrate: {lesson_1: lezione_1}\nstart: intro\n")
    module.write_text(renamed, encoding="utf-8")
    code, out = bottega(capsys, "flows", "check")
    assert code == 0, out
    assert f"{module}:{version_position(renamed)}: warning: module '{MODULE}' changed but is still version 1, " \
           "which learners may be on (publishing refuses it) — set 'version: 2'" in out
    assert "Compared with live release 2 (REDIS_URL)." in out
    code, out = bottega(capsys, "flows", "publish")
    assert code == 1 and "still version 1" in out and "nothing was published" in out
    out = chat(capsys, monkeypatch, "--user", NEW_LEARNER, typed=["Italiano", "Panificio", "Prezzi", "Iniziamo"])
    assert "1. Il titolo della lezione" in out and "nuova versione" not in out  # what learners really get
    out = chat(capsys, monkeypatch, "--draft", typed=["Italiano", "Panificio", "Prezzi", "Iniziamo"])
    assert out.startswith("Bottega chat — whatsapp, learner 393330000009 — DRAFT: the working folder "
                          f"{folder}, not published (learners get release 2)")
    assert "1. La lezione, nuova versione" in out

    # -- raised: the preview says who is waiting where, publishing labels the release
    module.write_text(renamed.replace("version: 1", "version: 2", 1), encoding="utf-8")
    code, out = bottega(capsys, "flows", "diff")
    assert code == 0 and f"over live release 2: bumped: {MODULE} 1→2" in out, out
    assert "step 'lesson_1' removed: 2 learner(s) waiting — migrate sends them to 'lezione_1'" in out
    code, out = bottega(capsys, "flows", "publish")
    assert code == 0 and out.startswith(f"Published release 3 — bumped: {MODULE} 1→2."), out

    # -- learners left on version 1 are migrated, not reset
    out = chat(capsys, monkeypatch, "--user", FIRST_LEARNER, typed=["Iniziamo"])
    assert "the live course, release 3" in out and "Ecco i moduli del corso" not in out  # no menu: their place
    assert "In questo modulo trovi una lezione breve" in out  # resumed on version 1's intro ...
    assert "1. La lezione, nuova versione" in out  # ... and went on into the renamed step of version 2
    assert where(redis_client, FIRST_LEARNER) == (MODULE, 2, "lezione_1")
    out = chat(capsys, monkeypatch, "--user", SECOND_LEARNER, typed=["Fatto ✅"])
    assert "Ecco i moduli del corso" not in out and "1. Il titolo della lezione" in out  # on their renamed step
    assert "Scrivi qui la domanda?" in out
    assert where(redis_client, SECOND_LEARNER) == (MODULE, 2, "q1")


def test_chat_publishes_nothing_but_a_first_release_and_a_broken_draft_is_not_served(folder, capsys, monkeypatch,
                                                                                     redis_client):
    out = chat(capsys, monkeypatch, typed=[])
    assert f"the live course, release 1 (what learners get); nothing was published yet, so {folder} was " \
           "published as release 1" in out.splitlines()[0]
    module = folder / "m1_contatto.yaml"
    module.write_text(module.read_text(encoding="utf-8").replace("next: lesson_2", "next: lesson_nope", 1))
    out = chat(capsys, monkeypatch, typed=[])  # learners are served the live release whatever the folder holds
    assert f"release 1 (what learners get); {folder} has unpublished edits: 'bottega chat --draft' tries them" in out
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, out = bottega(capsys, "chat", "--draft")
    assert code == 1 and "step 'lesson_1' leads to 'lesson_nope', which does not exist" in out
    assert "problem(s): the draft cannot be served; fix them (bottega flows check)." in out
    assert releases.live_release(redis_client) == "1"
