"""Learning analytics in Debian's Chromium, on the real Procfile processes in dev mode (as `make run` runs them):
five learners walk module 1 on the simulator's phones by tapping what the page shows, then a viewer signs in to
the console on a phone-sized screen and reads the module's funnel — the counts the worker folded, on the flow
diagram too. Screenshots go to test-output/browser/."""

from __future__ import annotations

import time

import pytest

from bot.console.users import Role, Users
from bot.flows.loader import load_course
from tests.browser import SimulatorPhone

pytestmark = [pytest.mark.procfile, pytest.mark.browser]

PASSWORD = "a long viewer password"
PHONE_SIZE = {"width": 390, "height": 844}
SESSIONS = (("whatsapp", "messenger", "instagram"), ("whatsapp", "messenger"))  # two simulator sessions: 5 learners
LEARNERS = sum(len(session) for session in SESSIONS)


def funnel_rows(page) -> dict[str, list[str]]:
    rows = [text.split("\t") for text in page.locator("#funnel tbody tr").all_inner_texts()]
    return {cells[1].strip(): [cell.strip() for cell in cells] for cells in rows if len(cells) > 3}


def test_a_viewer_reads_the_funnel_of_module_1_after_five_learners_walk_it_on_the_simulator(page, dev_service,
                                                                                              screenshots):
    module_1 = load_course(dev_service.settings.flows_dir).modules[0]
    for session in SESSIONS:
        page.goto(f"{dev_service.url}/simulator")  # a new session: a new learner on every phone
        for channel in session:
            phone = SimulatorPhone(page, channel)
            phone.start()
            phone.open_module(module_1)
            phone.walk_module(module_1)
            assert module_1 in phone.modules_done()
    screenshots.take(page, "five-learners-walked")

    Users(dev_service.redis_client()).add("vittoria", Role.VIEWER, PASSWORD)
    page.set_viewport_size(PHONE_SIZE)
    page.goto(f"{dev_service.url}/admin/analytics/funnel?module={module_1}")
    assert "/admin/login" in page.url  # the analytics are behind the console's sign-in
    page.get_by_label("Name").fill("vittoria")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/admin/analytics/funnel?module={module_1}")
    deadline = time.monotonic() + 90
    rows = funnel_rows(page)
    while time.monotonic() < deadline:  # the worker folds what its senders forwarded, a moment after the replies
        if rows.get("completed", [""] * 4)[3] == str(LEARNERS):
            break
        time.sleep(1)
        page.reload()
        rows = funnel_rows(page)
    assert rows["started"][3] == str(LEARNERS) and rows["completed"][3] == str(LEARNERS)
    assert all(row[3] == str(LEARNERS) for step, row in rows.items() if row[2] in ("intro", "lesson"))
    diagram = page.locator(".diagram svg")
    assert diagram.is_visible() and f"n={LEARNERS}" in (diagram.text_content() or "")
    screenshots.take(page, "viewer-reads-the-funnel")
    page.get_by_role("navigation", name="Analytics pages").get_by_role("link", name="Item analysis").click()
    assert page.locator("#items tbody tr").count() >= 1
    screenshots.take(page, "viewer-reads-item-analysis")
    assert page.problems.messages == []  # no script error, nothing the Content-Security-Policy refused
