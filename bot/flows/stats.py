"""``bottega flows stats``: how big the course is, and whether every message fits its channel. No I/O
but reading the flows folder in ``main``.

``collect(course) -> dict`` (JSON-ready)::

    {"title": "...", "modules": 10, "all_translated": true,
     "flows": {"m1_contatto": {"steps": 9, "lessons": 3, "quiz_questions": 4, "max_score": 4,
               "languages": {"it": {"words": 1298, "messages": 24, "messages_over_aim": 0,
                                    "longest": {"whatsapp": {"chars": 532, "step": "intro", "bytes": 547},
                                                "messenger": {"chars": 532, "step": "intro"}},
                                    "over_limit": []}, "en": {...}}}},
     "totals": {"steps": ..., "lessons": ..., "quiz_questions": ..., "max_score": ...,
                "words": {"it": ..., "en": ...},
                "longest": {"whatsapp": {"chars": 600, "step": "lesson_1", "flow": "m7_risultati", "lang": "it"},
                            "messenger": {...}},
                "over_limit": 0},
     "checkup": {"questions": 25, "areas": {"presence": 4, ...}, "knowledge_questions": 14,
                 "plan_modules": {"presence": ["m11_google", ...], ...}, "modules_not_in_plan": [],
                 "every_module_in_plan": true} or null,
     "items": {"it": {"items": 70, "key_uniquely_longest": {"items": 20, "share": 0.286},
                      "length_ratio": 1.05, "mean_length": {"right": 40.1, "wrong": 38.2},
                      "absolutes": {"wrong": 9, "wrong_options": 140, "right": 5, "right_options": 70,
                                    "wrong_share": 0.064, "right_share": 0.071, "gap_points": -0.7}},
               "en": {...}, "targets": {...}, "within_target": true}}

*Words* count every text of a flow in that language (titles, messages with every ``by_business``
variant, captions, labels, questions, feedback), split on whitespace. *Messages* are what a
learner reads as one text before the renderer splits it (each ``by_business`` variant counts);
``messages_over_aim`` counts those over ``AIM_CHARS`` (flows/README.md: a shopkeeper reads a
micro-lesson between two customers). *Longest* is measured on the API bodies the real renderers
(``bot.channels.rendering.render``) produce, so splitting and buttons are accounted for; ``over_limit`` lists
every body that breaks a platform limit (each channel's ``check_limits``) or that a renderer
refuses, as ``{"step", "channel", "problem"}``. Placeholders are filled with the longest plausible
values (the longest business label, two-digit scores).

*Items* are the multiple-choice questions with one right answer (module quizzes and the check-up's
knowledge questions): ``bot.flows.items`` defines exactly how the three figures are measured (is the
right option the uniquely longest, how much longer is it, do absolutes like "solo"/"mai" mark the
wrong options) and the targets; Italian is the target language, English is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bot import channels
from bot.channels.parts import ChannelParts
from bot.flows import items
from bot.flows.spec import LANGUAGES, Course, Flow, Step, Translated
from bot.model.replies import Media, MediaKind, Option, Reply

AIM_CHARS = 600  # flows/README.md: aim for at most 600 characters per message


def collect(course: Course) -> dict[str, Any]:
    flows = {flow_id: _flow_stats(course, course.flows[flow_id]) for flow_id in course.modules}
    totals: dict[str, Any] = {key: sum(f[key] for f in flows.values())
                              for key in ("steps", "lessons", "quiz_questions", "max_score")}
    totals["words"] = {lang: sum(f["languages"][lang]["words"] for f in flows.values()) for lang in LANGUAGES}
    totals["longest"] = {}
    for channel in (parts.channel.name for parts in channels.every()):
        candidates = [{**f["languages"][lang]["longest"][channel], "flow": flow_id, "lang": lang}
                      for flow_id, f in flows.items() for lang in LANGUAGES]
        top = max(candidates, key=lambda c: c["chars"], default=None)
        totals["longest"][channel] = top and {**top, "bytes": max(c["bytes"] for c in candidates)}
    totals["over_limit"] = sum(len(f["languages"][lang]["over_limit"]) for f in flows.values() for lang in LANGUAGES)
    checkup = None
    if course.checkup is not None:
        areas = {area.id: sum(q.area == area.id for q in course.checkup.questions) for area in course.checkup.areas}
        in_plan = {module for area in course.checkup.areas for module in area.modules}
        missing = [module for module in course.modules if module not in in_plan]
        checkup = {"questions": len(course.checkup.questions), "areas": areas,
                   "knowledge_questions": sum(q.kind == "knowledge" for q in course.checkup.questions),
                   "plan_modules": {area.id: list(area.modules) for area in course.checkup.areas},
                   "modules_not_in_plan": missing, "every_module_in_plan": not missing}
    return {"title": course.title.get(LANGUAGES[0]), "modules": len(course.modules),
            "all_translated": all(_complete(text) for text in course_texts(course)),
            "flows": flows, "totals": totals, "checkup": checkup, "items": items.figures(course)}


def flow_texts(flow: Flow) -> list[Translated]:
    """Every translated text of a flow, ``by_business`` variants included."""
    texts = [flow.title, flow.short_title]
    for step in flow.steps.values():
        texts += [text for say in step.say for text in say.texts]
        if step.media and step.media.caption:
            texts.append(step.media.caption)
        texts += [choice.label for choice in step.choices]
        if step.quiz:
            texts.append(step.quiz.question)
            texts += [text for option in step.quiz.options for text in (option.label, option.feedback)]
    return texts


def course_texts(course: Course) -> list[Translated]:
    texts = [course.title, *course.texts.values(), *(kind.label for kind in course.business_types)]
    texts += [text for flow in course.flows.values() for text in flow_texts(flow)]
    checkup = course.checkup
    if checkup is not None:
        texts += [checkup.title, checkup.short_title, checkup.intro, *(level.label for level in checkup.levels)]
        texts += [text for area in checkup.areas for text in (area.title, area.action)]
        texts += [q.question for q in checkup.questions]
        texts += [option.label for q in checkup.questions for option in q.options]
    return texts


def _complete(text: Translated) -> bool:
    present = dict(text.texts)
    return all(present.get(lang, "").strip() for lang in LANGUAGES)


def _flow_stats(course: Course, flow: Flow) -> dict[str, Any]:
    steps = flow.steps.values()
    languages: dict[str, dict[str, Any]] = {}
    for lang in LANGUAGES:
        replies = [(step.id, reply) for step in steps for reply in step_replies(course, flow, step, lang)]
        longest: dict[str, dict[str, Any]] = {
            parts.channel.name: {"chars": 0, "step": "", "bytes": 0} for parts in channels.every()}
        over_limit: list[dict[str, str]] = []
        for step_id, reply in replies:
            for parts in channels.every():
                channel = parts.channel.name
                user_id = parts.dev.default_user
                try:
                    bodies = parts.render(reply, user_id=user_id, phone=parts.dev.phone_of(user_id))
                except ValueError as error:
                    over_limit.append({"step": step_id, "channel": channel, "problem": str(error)})
                    continue
                for body in bodies:
                    over_limit += [{"step": step_id, "channel": channel, "problem": problem}
                                   for problem in parts.check_limits(body)]
                    chars, size = visible_chars(parts, body), visible_bytes(parts, body)
                    if chars > longest[channel]["chars"]:
                        longest[channel] = {"chars": chars, "step": step_id, "bytes": longest[channel]["bytes"]}
                    longest[channel]["bytes"] = max(longest[channel]["bytes"], size)
        languages[lang] = {"words": sum(len(text.get(lang).split()) for text in flow_texts(flow)),
                           "messages": len(replies),
                           "messages_over_aim": sum(len(reply.text) > AIM_CHARS for _, reply in replies),
                           "longest": longest, "over_limit": over_limit}
    return {"steps": len(flow.steps), "lessons": sum(s.kind.value == "lesson" and not s.quiz for s in steps),
            "quiz_questions": sum(s.quiz is not None for s in steps), "max_score": flow.max_score,
            "languages": languages}


def step_replies(course: Course, flow: Flow, step: Step, lang: str) -> list[Reply]:
    """The replies a step can send, as the engine builds them: every ``by_business`` variant of each
    message (media on the first, options on the last), then each quiz option's feedback."""
    choose = course.text("label_choose", lang) if "label_choose" in course.texts else "Scegli"
    values = {"name": "", "business": max((k.label.get(lang) for k in course.business_types), key=len, default=""),
              "score": max(flow.max_score, 10), "max_score": max(flow.max_score, 10), "module": flow.title.get(lang)}
    messages = [[_fill(text.get(lang), values) for text in say.texts] for say in step.say]
    if step.quiz:
        messages.append([_fill(step.quiz.question.get(lang), values)])
    if step.quiz:
        options = [Option(id=f"c:{flow.id}:{step.id}:{o.id}", title=o.label.get(lang)) for o in step.quiz.options]
    else:
        options = [Option(id=f"c:{flow.id}:{step.id}:{c.id}", title=c.label.get(lang)) for c in step.choices]
    media = None
    if step.media:
        caption = step.media.caption.get(lang) if step.media.caption else ""
        media = Media(kind=MediaKind(step.media.kind), url=step.media.url, caption=caption)
    replies = []
    for index, variants in enumerate(messages):
        last = index == len(messages) - 1
        for text in variants:
            replies.append(Reply(text=text, options=tuple(options) if last and not step.end else (),
                                 media=media if index == 0 else None, choose_label=choose, lang=lang))
    for option in step.quiz.options if step.quiz else ():
        key = "correct_prefix" if option.correct else "wrong_prefix"
        prefix = course.text(key, lang) if key in course.texts else ""
        replies.append(Reply(text=f"{prefix} {option.feedback.get(lang)}".strip(), choose_label=choose, lang=lang))
    return replies


def _fill(template: str, values: dict[str, object]) -> str:
    try:
        return template.format_map(values)
    except (KeyError, ValueError, IndexError):
        return template  # the flow check reports unknown placeholders; measure the raw text


def visible_chars(parts: ChannelParts, body: dict[str, Any]) -> int:
    """Characters of text one rendered body shows (media captions count, the "[image: link]" line does not)."""
    return len(_visible(parts, body))


def visible_bytes(parts: ChannelParts, body: dict[str, Any]) -> int:
    """The same text's UTF-8 size: Instagram counts bytes too (accents 2, emoji 4)."""
    return len(_visible(parts, body).encode("utf-8"))


def _visible(parts: ChannelParts, body: dict[str, Any]) -> str:
    lines = parts.describe(body).text.splitlines()
    return "\n".join(line for line in lines if not (line.startswith("[") and line.endswith("]")))


# --- output ------------------------------------------------------------------------------------


def format_text(stats: dict[str, Any]) -> str:
    def longest(entry: dict[str, Any] | None) -> str:
        return f"{entry['chars']} ({entry['step']})" if entry and entry["chars"] else "-"

    shown = [(parts.channel.name, f"longest {parts.title}") for parts in channels.every()]
    lines = [f"{stats['title']}: {stats['modules']} module(s), {stats['totals']['steps']} steps", "",
             f"{'module':<16}{'lang':<6}{'lessons':>8}{'quiz':>6}{'words':>8}{'msgs':>6}{'>600':>6}  "
             + "".join(f"{heading:<22}" for _, heading in shown) + "over limit"]
    for flow_id, flow in stats["flows"].items():
        for index, lang in enumerate(LANGUAGES):
            data = flow["languages"][lang]
            counts = (f"{flow['lessons']:>8}{flow['quiz_questions']:>6}" if index == 0 else " " * 14)
            lines.append(f"{flow_id if index == 0 else '':<16}{lang:<6}{counts}{data['words']:>8}"
                         f"{data['messages']:>6}{data['messages_over_aim']:>6}  "
                         + "".join(f"{longest(data['longest'].get(name)):<22}" for name, _ in shown)
                         + f"{len(data['over_limit']) or 'no'}")
    totals = stats["totals"]
    words = ", ".join(f"{lang} {count}" for lang, count in totals["words"].items())
    lines += ["", f"totals: {stats['modules']} modules, {totals['lessons']} lessons, {totals['quiz_questions']} "
              f"quiz questions ({totals['max_score']} points), words: {words}"]
    for channel, entry in totals["longest"].items():
        if entry:
            lines.append(f"longest {channel} message: {entry['chars']} characters ({entry['flow']} "
                         f"{entry['step']}, {entry['lang']}); largest {entry['bytes']} UTF-8 bytes")
    if stats["checkup"]:
        areas = ", ".join(f"{area} {count}" for area, count in stats["checkup"]["areas"].items())
        lines.append(f"check-up: {stats['checkup']['questions']} questions ({areas})")
        missing = stats["checkup"]["modules_not_in_plan"]
        lines.append("every module reachable from the check-up plan: "
                     + ("yes" if not missing else "NO (" + ", ".join(missing) + ")"))
    lines += items.format_lines(stats["items"])
    lines.append(f"every text in both languages: {'yes' if stats['all_translated'] else 'NO'}")
    problems = [f"  {flow_id} {lang} {p['step']} [{p['channel']}]: {p['problem']}"
                for flow_id, flow in stats["flows"].items() for lang in LANGUAGES
                for p in flow["languages"][lang]["over_limit"]]
    lines.append("messages over a channel limit: " + ("none" if not problems else f"{len(problems)}"))
    return "\n".join(lines + problems) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``bottega flows stats [PATH] [--json]``; exit 1 if the course does not load."""
    from bot.flows.loader import load_course
    from bot.flows.problems import FlowError

    parser = argparse.ArgumentParser(prog="bottega flows stats", description=__doc__.split("\n")[0])
    parser.add_argument("path", nargs="?", default=None, help="the flows folder (default: flows/)")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args(argv)
    try:
        course = load_course(Path(args.path or "flows"))  # `bottega flows` passes the configured folder
    except FlowError as error:
        print(error, file=sys.stderr)
        return 1
    stats = collect(course)
    sys.stdout.write(json.dumps(stats, ensure_ascii=False, indent=2) + "\n" if args.json else format_text(stats))
    return 0
