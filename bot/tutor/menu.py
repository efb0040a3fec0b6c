"""The course menu, in pages that fit every channel: the check-up and every module, always reachable. No I/O.

A WhatsApp list holds at most 10 rows (Messenger's quick replies 13), so the menu is paged: page 1
lists the check-up and as many modules as fit beside a "More modules ›" row; later pages start with
"‹ Previous modules". Modules keep the course's order on every page (a finished one keeps its place,
marked ✓, so a learner can go back to it: ``bot.tutor.revisit``). Navigation rows carry their page number
(``sys:menu:page:N``), so an old menu's tap still opens the page it named.
"""

from __future__ import annotations

from bot.flows import channel_limits
from bot.flows.problems import Problem, warning
from bot.flows.spec import Course
from bot.model.replies import OPTION_TITLE_MAX, Option
from bot.tutor.progress import Pending
from bot.tutor.turn import Turn

MENU_ROWS = channel_limits.OPTIONS_MAX  # the tightest channel's options on one screen (WhatsApp's list: 10)
PAGE_PREFIX = "sys:menu:page:"
DONE_MARK = "✓ "


def entries(course: Course, lang: str, modules_done: list[str]) -> list[Option]:
    """The check-up and every module, in course order, as menu rows (without navigation)."""
    rows = []
    if course.checkup:
        rows.append(Option(id="sys:checkup", title=course.checkup.short_title.get(lang)))
    for flow_id in course.modules:
        mark = DONE_MARK if flow_id in modules_done else ""
        title = (mark + course.flows[flow_id].short_title.get(lang))[:OPTION_TITLE_MAX]
        rows.append(Option(id=f"sys:module:{flow_id}", title=title))
    return rows


def page_slices(count: int, rows: int = MENU_ROWS) -> list[tuple[int, int]]:
    """``(start, end)`` of the entries on each page, leaving room for the navigation rows."""
    slices, start, page = [], 0, 0
    while True:
        room = rows - (1 if page else 0)  # "previous" on every page but the first
        if count - start <= room:
            slices.append((start, count))
            return slices
        slices.append((start, start + room - 1))  # and "more" on every page but the last
        start, page = start + room - 1, page + 1


def page(course: Course, lang: str, modules_done: list[str], number: int, *, more: str, previous: str,
         last: Option | None = None) -> list[Option]:
    """The rows of page ``number`` (0-based; clamped to the pages there are); ``last`` ends the last page
    when it has room (the reminders' row: the word ``promemoria`` reaches them anyway)."""
    all_rows = entries(course, lang, modules_done)
    slices = page_slices(len(all_rows))
    number = min(max(number, 0), len(slices) - 1)
    start, end = slices[number]
    rows = all_rows[start:end]
    if number > 0:
        rows.insert(0, Option(id=f"{PAGE_PREFIX}{number - 1}", title=previous))
    if number < len(slices) - 1:
        rows.append(Option(id=f"{PAGE_PREFIX}{number + 1}", title=more))
    elif last is not None and len(rows) < MENU_ROWS:
        rows.append(last)
    return rows


def page_count(course: Course) -> int:
    return len(page_slices(len(entries(course, "it", []))))


def unreachable(course: Course) -> list[str]:
    """Modules that appear on no menu page (none, as long as paging works: ``flows check`` asks)."""
    shown = {option.id for number in range(page_count(course))
             for option in page(course, "it", [], number, more=">", previous="<")}
    return [flow_id for flow_id in course.modules if f"sys:module:{flow_id}" not in shown]


def reach_warnings(course: Course, folder: str) -> list[Problem]:
    """A warning for each module a learner could never reach from the menu's pages."""
    return [warning(file=course.flows[flow_id].source or f"{folder}/{flow_id}.yaml", message=(
        f"module '{flow_id}' appears on no page of the menu, so a learner can never open it"),
        fix="list it under 'modules:' in course.yaml") for flow_id in unreachable(course)]


def options(turn: Turn) -> list[Option]:
    reminders = Option(id="sys:rem:change", title=turn.text("label_reminders")) if turn.course.reminders else None
    return page(turn.course, turn.progress.lang, turn.progress.modules_done, turn.progress.menu_page,
                more=turn.text("label_more_modules"), previous=turn.text("label_previous_modules"), last=reminders)


def show(turn: Turn, number: int = 0) -> None:
    """Show menu page ``number`` (ephemeral: a later turn's replies make it stale)."""
    number = min(max(number, 0), page_count(turn.course) - 1)
    turn.progress = turn.progress.with_changes(pending=Pending.MENU, menu_page=number)
    intro = turn.text("menu_intro") if number == 0 else turn.text(
        "menu_intro_page", page=number + 1, pages=page_count(turn.course))
    turn.say(intro, options(turn), ephemeral=True)
