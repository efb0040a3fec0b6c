"""Every module reachable (a paged menu), finished modules reopened, and a check-up that cannot be hijacked.

Conversations through ``bot.dev.chat.Chat`` (the real dispatcher, engine, renderers and Redis), on the
shipped course and on courses generated with 10, 11 and 25 modules; every rendered body is checked
against its channel's limits.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
import yaml

from bot import channels
from bot.channels.messenger import MESSENGER
from bot.channels.whatsapp import WHATSAPP
from bot.dev.chat import Chat
from bot.flows.loader import load_course
from bot.model.events import Channel, EventKind
from bot.model.replies import Reply
from bot.storage.keys import LearnerPart, learner_key
from bot.tutor import global_words, menu
from bot.tutor.progress import Pending, Progress
from bot.tutor.progress_parts import CheckupAttempt
from config.settings import PROJECT_ROOT


def course_with(tmp_path: Path, modules: int):
    """The shipped course cut or grown (copies of module 1) to ``modules`` modules."""
    folder = tmp_path / f"flows_{modules}"
    shutil.copytree(PROJECT_ROOT / "flows", folder)
    manifest = yaml.safe_load((folder / "course.yaml").read_text())
    shipped = manifest["course"]["modules"]
    template = yaml.safe_load((folder / "m1_contatto.yaml").read_text())
    ids = list(shipped[:modules])
    for number in range(len(ids) + 1, modules + 1):
        flow_id = f"mx{number}_copia"
        module = {**template, "flow": flow_id, "version": 1,
                  "short_title": {"it": f"Copia {number}", "en": f"Copy {number}"}}
        module.pop("migrate", None)
        (folder / f"{flow_id}.yaml").write_text(yaml.safe_dump(module, allow_unicode=True, sort_keys=False))
        ids.append(flow_id)
    for extra in shipped[modules:]:
        (folder / f"{extra}.yaml").unlink()
    manifest["course"]["modules"] = ids
    (folder / "course.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False))
    checkup = yaml.safe_load((folder / "checkup.yaml").read_text())
    for area in checkup["areas"]:  # keep the check-up's areas pointing at modules that exist
        wanted = area.get("modules") or [area["module"]]
        kept = [m for m in wanted if m in ids] or [ids[0]]
        area.pop("module", None)
        area["modules"] = kept if "modules" in checkup["areas"][0] else kept[:1]
        if "modules" not in checkup["areas"][0] or len(kept) == 1:
            area.pop("modules", None)
            area["module"] = kept[0]
    (folder / "checkup.yaml").write_text(yaml.safe_dump(checkup, allow_unicode=True, sort_keys=False))
    return load_course(folder)


def chat_on(redis_client, course, settings, channel: Channel, user: str) -> Chat:
    return Chat(client=redis_client, course=course, settings=settings, channel=channel, user_id=user,
                out=io.StringIO())


def tap(chat: Chat, title: str) -> None:
    for option_id, shown in chat.shown_options:
        if shown == title:
            chat.send(kind=EventKind.CHOICE, payload=option_id, text=shown)
            return
    raise AssertionError(f"{title!r} not in {[t for _, t in chat.shown_options]}")


def titles(chat: Chat) -> list[str]:
    return [title for _, title in chat.shown_options]


def progress(redis_client, chat: Chat) -> Progress:
    lid = f"{chat.channel.prefix}:{chat.user_id}"
    stored = Progress.from_hash(redis_client.hgetall(learner_key(lid, LearnerPart.PROGRESS)))
    assert stored is not None
    return stored


def onboard(chat: Chat, lang: str = "it") -> None:
    chat.send_line("ciao")
    tap(chat, "Italiano" if lang == "it" else "English")
    tap(chat, "Panificio" if lang == "it" else "Bakery")


@pytest.mark.parametrize("modules", [10, 11, 25])
@pytest.mark.parametrize("channel", [WHATSAPP, MESSENGER])
def test_every_module_is_reachable_through_the_menu_pages(tmp_path, redis_client, settings, modules, channel):
    course = course_with(tmp_path, modules)
    assert menu.unreachable(course) == []
    chat = chat_on(redis_client, course, settings, channel, "393330000301" if channel is WHATSAPP
                   else "7000000000000301")
    onboard(chat)
    reached: set[str] = set()
    pages = 0
    while True:
        pages += 1
        assert len(chat.shown_options) <= menu.MENU_ROWS
        reached |= {option_id for option_id, _ in chat.shown_options if option_id.startswith("sys:module:")}
        if "Altri moduli ›" not in titles(chat):
            break
        tap(chat, "Altri moduli ›")
    assert reached == {f"sys:module:{flow_id}" for flow_id in course.modules}
    assert pages == menu.page_count(course) == (1 if modules <= 9 else len(menu.page_slices(modules + 1)))
    if pages > 1:
        tap(chat, "‹ Moduli precedenti")  # and back again
        assert "‹ Moduli precedenti" not in titles(chat) or pages > 2
    last_module = course.modules[-1]
    chat.send_line("menu")
    while f"sys:module:{last_module}" not in {option_id for option_id, _ in chat.shown_options}:
        tap(chat, "Altri moduli ›")
    tap(chat, course.flows[last_module].short_title.get("it"))
    assert progress(redis_client, chat).flow == last_module


@pytest.mark.parametrize("modules", [10, 11, 25])
def test_every_menu_page_fits_every_channel(tmp_path, modules):
    course = course_with(tmp_path, modules)
    for lang in ("it", "en"):
        for number in range(menu.page_count(course)):
            rows = menu.page(course, lang, list(course.modules), number, more="Altri moduli ›",
                             previous="‹ Moduli precedenti")
            reply = Reply(text="Scegli:", options=tuple(rows), choose_label="Scegli", lang=lang)
            for parts in channels.every():
                for body in parts.render(reply, user_id=parts.dev.default_user, phone=parts.dev.default_user):
                    assert parts.check_limits(body) == []
                    assert "list" in str(body) or parts.channel is not WHATSAPP or len(rows) <= 3


def finish_module(chat: Chat, course, flow_id: str, lang: str = "it", *, right: bool = True) -> None:
    flow = course.flows[flow_id]
    step = flow.steps[flow.start]
    while not step.end:
        if step.quiz:
            option = step.quiz.correct_option if right else next(o for o in step.quiz.options if not o.correct)
            tap(chat, option.label.get(lang))
            step = flow.steps[step.next]
        else:
            tap(chat, step.choices[0].label.get(lang))
            step = flow.steps[step.choices[0].next]


@pytest.mark.parametrize("channel", [WHATSAPP, MESSENGER])
def test_a_finished_module_can_be_reopened_its_quiz_skipped_or_redone_without_losing_the_best_score(
        redis_client, course, settings, channel):
    chat = chat_on(redis_client, course, settings, channel, "393330000302" if channel is WHATSAPP
                   else "7000000000000302")
    onboard(chat)
    flow = course.flows["m1_contatto"]
    tap(chat, flow.short_title.get("it"))
    finish_module(chat, course, "m1_contatto", right=True)
    best = progress(redis_client, chat).flow_score("m1_contatto")
    assert best == flow.max_score and "m1_contatto" in progress(redis_client, chat).modules_done
    chat.send_line("menu")
    tap(chat, "✓ " + flow.short_title.get("it"))  # the finished module, still in its place
    assert progress(redis_client, chat).revisiting == "lessons"
    step = flow.steps[flow.start]
    while not step.quiz:  # the lessons again
        tap(chat, step.choices[0].label.get("it"))
        step = flow.steps[step.choices[0].next]
    assert titles(chat) == ["Rifaccio il quiz", "Salto il quiz"]
    tap(chat, "Salto il quiz")
    stored = progress(redis_client, chat)
    assert stored.flow_score("m1_contatto") == best and stored.revisiting == "" and stored.step in {
        s.id for s in flow.steps.values() if s.end}
    chat.send_line("menu")
    tap(chat, "✓ " + flow.short_title.get("it"))
    step = flow.steps[flow.start]
    while not step.quiz:
        tap(chat, step.choices[0].label.get("it"))
        step = flow.steps[step.choices[0].next]
    tap(chat, "Rifaccio il quiz")
    finish_module_from(chat, course, "m1_contatto", step, right=False)  # worse this time
    stored = progress(redis_client, chat)
    assert stored.flow_score("m1_contatto") == best  # the best score stays
    assert stored.modules_done.count("m1_contatto") == 1


def finish_module_from(chat: Chat, course, flow_id: str, step, *, right: bool) -> None:
    flow = course.flows[flow_id]
    while not step.end:
        if step.quiz:
            option = step.quiz.correct_option if right else next(o for o in step.quiz.options if not o.correct)
            tap(chat, option.label.get("it"))
            step = flow.steps[step.next]
        else:
            tap(chat, step.choices[0].label.get("it"))
            step = flow.steps[step.choices[0].next]


# -- the check-up cannot be hijacked ---------------------------------------------------------------------------
def start_checkup(chat: Chat) -> None:
    onboard(chat)
    tap(chat, "Check-up digitale")
    tap(chat, "Inizia il check-up")


def checkup_state(redis_client, chat: Chat) -> CheckupAttempt:
    return progress(redis_client, chat).checkup


def test_menu_then_a_module_during_the_checkup_can_never_answer_the_checkup(redis_client, course, settings):
    """The reported hijack: menu, then a module, showed its quiz question with the check-up's buttons."""
    chat = chat_on(redis_client, course, settings, WHATSAPP, "393330000303")
    onboard(chat)
    first_menu = tuple(chat.shown_options)
    tap(chat, "Check-up digitale")
    tap(chat, "Inizia il check-up")
    answered = checkup_state(redis_client, chat).index
    chat.send_line("menu")
    assert titles(chat) == ["Continuo il check-up", "Consegno adesso"]  # no module is on offer
    module_row = next(option for option in first_menu if option[0].startswith("sys:module:"))
    chat.send(kind=EventKind.CHOICE, payload=module_row[0], text=module_row[1])  # the old menu's row
    state = checkup_state(redis_client, chat)
    assert state.running and state.index == answered and progress(redis_client, chat).flow == ""
    assert all(option_id.startswith("sys:checkup:") for option_id, _ in chat.shown_options)
    tap(chat, "Continuo il check-up")
    assert all(option_id.startswith("k:") for option_id, _ in chat.shown_options)
    stale_quiz = f"c:m1_contatto:q1:{course.flows['m1_contatto'].steps['q1'].quiz.options[0].id}"
    chat.send(kind=EventKind.CHOICE, payload=stale_quiz, text="A")  # a module's quiz button: refused
    assert checkup_state(redis_client, chat).index == answered
    chat.send_line("menu")
    tap(chat, "Consegno adesso")  # leaving ends the attempt, as the question said
    state = checkup_state(redis_client, chat)
    assert not state.running and state.result.answered == answered
    chat.send_line("menu")
    assert any(option_id.startswith("sys:module:") for option_id, _ in chat.shown_options)


def resolve(chat: Chat, word: str) -> None:
    """Answer whatever a global word asked, the way that keeps the learner where they were."""
    answers = {"stop": "No", "restart": "No", "language": "Italiano", "menu": "Continuo il check-up",
               "reminders": "No, grazie", "erase": "No", "unlink": "No",
               "person": "No, continuo qui"}
    kind = global_words.WORDS[word]
    if kind in answers and answers[kind] in titles(chat):
        tap(chat, answers[kind])


@pytest.mark.parametrize("word", sorted(global_words.WORDS))
def test_every_global_word_mid_checkup_leaves_the_checkup_answerable_by_its_own_buttons_only(
        redis_client, course, settings, word):
    chat = chat_on(redis_client, course, settings, WHATSAPP, "393330000304")
    start_checkup(chat)
    tap(chat, titles(chat)[0])  # answer question 1
    before = checkup_state(redis_client, chat)
    chat.advance(31)  # past the pause of a "non ho capito"
    chat.send_line(word)
    resolve(chat, word)
    state = checkup_state(redis_client, chat)
    assert state.running and state.attempt == before.attempt and state.index == before.index
    if global_words.WORDS[word] != "stop" or progress(redis_client, chat).pending != Pending.CONFIRM_STOP:
        assert chat.shown_options and all(o.startswith("k:") for o, _ in chat.shown_options), titles(chat)
    chat.send(kind=EventKind.CHOICE, payload="c:m1_contatto:q1:a", text="A")  # never a check-up answer
    assert checkup_state(redis_client, chat).index == before.index
    chat.advance(31)
    tap(chat, titles(chat)[0])
    assert checkup_state(redis_client, chat).index == before.index + 1


@pytest.mark.parametrize("word", sorted(global_words.WORDS))
def test_every_global_word_mid_quiz_leaves_the_quiz_answerable(redis_client, course, settings, word):
    chat = chat_on(redis_client, course, settings, WHATSAPP, "393330000305")
    onboard(chat)
    flow = course.flows["m1_contatto"]
    tap(chat, flow.short_title.get("it"))
    step = flow.steps[flow.start]
    while not step.quiz:
        tap(chat, step.choices[0].label.get("it"))
        step = flow.steps[step.choices[0].next]
    quiz_ids = {f"c:m1_contatto:{step.id}:{o.id}" for o in step.quiz.options}
    chat.send_line(word)
    kind = global_words.WORDS[word]
    if kind == "menu":
        tap(chat, flow.short_title.get("it"))  # back to the module in progress: it resumes
    else:
        resolve(chat, word)
    if kind == "stop" and progress(redis_client, chat).pending == Pending.CONFIRM_STOP:
        tap(chat, "No")
    assert {option_id for option_id, _ in chat.shown_options} == quiz_ids, titles(chat)
    tap(chat, step.quiz.correct_option.label.get("it"))
    assert progress(redis_client, chat).answers["m1_contatto"][step.id] == step.quiz.correct_option.id
