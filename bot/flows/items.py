"""Item analysis: do the course's multiple-choice items measure understanding, or test-wiseness? No I/O.

An *item* is a question with exactly one right option: every quiz step of every module listed in
``course.yaml`` (retrieval checks inside lessons included), and every *knowledge* question of the
check-up (its right option is the one worth the most points; practice questions have no right
answer and are left out).

An option's *text* is what the learner reads as that option. When the question body lists the
options as lines ``A) …``, ``B) …`` (one line per option, the letter taken from the option's label
``"A) …"`` or else from its position), the text is the rest of that line; otherwise it is the
option's label without a leading ``"A) "``. Its *length* is the number of characters of that text,
stripped of surrounding spaces. Measured per language; Italian (``REFERENCE_LANGUAGE``) is the one
the targets apply to, English is reported beside it.

``figures(course) -> dict`` gives, per language, three figures over all items:

* ``key_uniquely_longest``: the items whose right option is longer than every wrong option, and
  their ``share`` of all items (target: ``KEY_LONGEST_MAX_SHARE`` = 0.35 or less);
* ``length_ratio``: the mean length of the right options divided by the mean length of the wrong
  options, all items pooled (target: ``LENGTH_RATIO_MAX`` = 1.2 or less);
* ``absolutes``: the share of wrong options and of right options whose text contains an absolute
  word from ``ABSOLUTES[lang]`` (whole words, any case: "solo", "mai", "sempre", "per forza"…), and
  ``gap_points``, the wrong share minus the right share in percentage points (target:
  ``ABSOLUTES_MAX_GAP_POINTS`` = 10 or less: absolutes are no more a sign of a wrong option than of
  a right one).

``within_target`` says whether the reference language meets all three. ``warnings(course)`` lists,
as warnings (``bot.flows.problems.warning``) with file and line, every item whose right option is more than
``KEY_LENGTH_WARN_RATIO`` (1.5) times as long as its longest wrong option, in any language:
``bottega flows check`` prints them and still passes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.flows.problems import Problem, warning
from bot.flows.spec import LANGUAGES, REFERENCE_LANGUAGE, Course, Translated

KEY_LONGEST_MAX_SHARE = 0.35
LENGTH_RATIO_MAX = 1.2
ABSOLUTES_MAX_GAP_POINTS = 10.0
KEY_LENGTH_WARN_RATIO = 1.5
ABSOLUTES = {
    "it": ("solo", "soltanto", "mai", "niente", "nulla", "nessuno", "nessuna", "nessun", "sempre",
           "per forza", "tutti", "tutte", "qualsiasi", "ovunque"),
    "en": ("only", "never", "nothing", "none", "nobody", "no one", "always", "ever", "all", "everyone",
           "everything", "anywhere", "have to", "must"),
}
_OPTION_LINE = re.compile(r"^\s*([A-J])\)\s+(.+?)\s*$", re.MULTILINE)
_LETTER_PREFIX = re.compile(r"^\s*([A-J])\)\s*")


@dataclass(frozen=True, kw_only=True, slots=True)
class Item:
    """One question with one right option, where it is written, and its options' translated labels."""

    source: str
    line: int
    where: str  # "step 'q1'" or "question 'pr2'"
    question: Translated
    labels: tuple[Translated, ...]
    right: int  # index of the right option

    def texts(self, lang: str) -> list[str]:
        """The text of each option as the learner reads it (see the module docstring)."""
        body = {letter: text for letter, text in _OPTION_LINE.findall(self.question.get(lang))}
        letters = []
        for index, label in enumerate(self.labels):
            prefix = _LETTER_PREFIX.match(label.get(lang))
            letters.append(prefix.group(1) if prefix else chr(ord("A") + index))
        if all(letter in body for letter in letters) and len(set(letters)) == len(letters):
            return [body[letter] for letter in letters]
        return [_LETTER_PREFIX.sub("", label.get(lang)).strip() for label in self.labels]


def course_items(course: Course) -> list[Item]:
    items = []
    for flow_id in course.modules:
        flow = course.flows[flow_id]
        for step in flow.steps.values():
            if step.quiz:
                right = next(i for i, o in enumerate(step.quiz.options) if o.correct)
                items.append(Item(source=flow.source, line=step.line, where=f"{flow.id} step '{step.id}'",
                                  question=step.quiz.question, labels=tuple(o.label for o in step.quiz.options),
                                  right=right))
    checkup = course.checkup
    for question in checkup.questions if checkup else ():
        if question.kind != "knowledge" or checkup is None:
            continue
        best = question.max_points
        items.append(Item(source=checkup.source, line=question.line,
                          where=f"check-up question '{question.id}'", question=question.question,
                          labels=tuple(o.label for o in question.options),
                          right=next(i for i, o in enumerate(question.options) if o.points == best)))
    return items


def has_absolute(text: str, lang: str) -> bool:
    lowered = text.lower()
    return any(re.search(rf"(?<!\w){re.escape(word)}(?!\w)", lowered) for word in ABSOLUTES.get(lang, ()))


def language_figures(items: list[Item], lang: str) -> dict[str, Any]:
    longest = 0
    right_lengths: list[int] = []
    wrong_lengths: list[int] = []
    right_absolute = wrong_absolute = 0
    for item in items:
        texts = item.texts(lang)
        key, others = texts[item.right], [t for i, t in enumerate(texts) if i != item.right]
        longest += all(len(key) > len(other) for other in others)
        right_lengths.append(len(key))
        wrong_lengths += [len(other) for other in others]
        right_absolute += has_absolute(key, lang)
        wrong_absolute += sum(has_absolute(other, lang) for other in others)
    count = len(items)
    right_share = right_absolute / count if count else 0.0
    wrong_share = wrong_absolute / len(wrong_lengths) if wrong_lengths else 0.0
    mean_right = sum(right_lengths) / count if count else 0.0
    mean_wrong = sum(wrong_lengths) / len(wrong_lengths) if wrong_lengths else 0.0
    return {
        "items": count,
        "key_uniquely_longest": {"items": longest, "share": round(longest / count, 3) if count else 0.0},
        "length_ratio": round(mean_right / mean_wrong, 2) if mean_wrong else 0.0,
        "mean_length": {"right": round(mean_right, 1), "wrong": round(mean_wrong, 1)},
        "absolutes": {"wrong": wrong_absolute, "wrong_options": len(wrong_lengths), "right": right_absolute,
                      "right_options": count, "wrong_share": round(wrong_share, 3),
                      "right_share": round(right_share, 3),
                      "gap_points": round(100 * (wrong_share - right_share), 1)},
    }


def figures(course: Course) -> dict[str, Any]:
    items = course_items(course)
    result: dict[str, Any] = {lang: language_figures(items, lang) for lang in LANGUAGES}
    reference = result[REFERENCE_LANGUAGE]
    result["targets"] = {"key_uniquely_longest_share_max": KEY_LONGEST_MAX_SHARE,
                         "length_ratio_max": LENGTH_RATIO_MAX,
                         "absolutes_gap_points_max": ABSOLUTES_MAX_GAP_POINTS, "language": REFERENCE_LANGUAGE}
    result["within_target"] = (reference["key_uniquely_longest"]["share"] <= KEY_LONGEST_MAX_SHARE
                               and reference["length_ratio"] <= LENGTH_RATIO_MAX
                               and reference["absolutes"]["gap_points"] <= ABSOLUTES_MAX_GAP_POINTS)
    return result


def warnings(course: Course) -> list[Problem]:
    """Items whose right option is over ``KEY_LENGTH_WARN_RATIO`` times the longest wrong one."""
    found = []
    for item in course_items(course):
        for lang in LANGUAGES:
            texts = item.texts(lang)
            key = len(texts[item.right])
            longest_wrong = max((len(t) for i, t in enumerate(texts) if i != item.right), default=0)
            if longest_wrong and key > KEY_LENGTH_WARN_RATIO * longest_wrong:
                found.append(warning(
                    file=item.source, line=item.line or 1, column=1,
                    message=f"{item.where}: the right option ({lang}) is {key} characters, "
                            f"{key / longest_wrong:.1f}× the longest wrong one ({longest_wrong}); "
                            "its length gives it away",
                    fix="shorten it, or make the wrong options as specific and as long"))
    return found


def format_lines(result: dict[str, Any]) -> list[str]:
    """The three figures per language, for ``bottega flows stats``."""
    lines = []
    for lang in LANGUAGES:
        data = result[lang]
        absolutes = data["absolutes"]
        mark = " (target)" if lang == REFERENCE_LANGUAGE else ""
        lines.append(
            f"items {lang}{mark}: {data['items']}; right option uniquely longest in "
            f"{data['key_uniquely_longest']['items']} ({100 * data['key_uniquely_longest']['share']:.0f} %, "
            f"≤ {100 * KEY_LONGEST_MAX_SHARE:.0f} %); right/wrong length {data['length_ratio']:.2f}× "
            f"(≤ {LENGTH_RATIO_MAX}); absolutes in {absolutes['wrong']}/{absolutes['wrong_options']} wrong vs "
            f"{absolutes['right']}/{absolutes['right_options']} right options, gap {absolutes['gap_points']:.0f} "
            f"points (≤ {ABSOLUTES_MAX_GAP_POINTS:.0f})")
    lines.append(f"items within target ({REFERENCE_LANGUAGE}): {'yes' if result['within_target'] else 'NO'}")
    return lines
