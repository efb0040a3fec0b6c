"""The simulator in Debian's Chromium, on the real Procfile processes in dev mode (as `make run` runs them).

A learner is walked through module 1 on each registered channel's phone by clicking what the page
rendered from the real Graph API bodies — reply buttons, a list's rows in its sheet, quick replies — by
the module's structure (option ids), not its wording, which the course's editors change. Then the window
display, the test clock and the Graph API failure switch are exercised, and a conversation saved as
golden from the simulator replays with `bottega flows test`. Screenshots go to test-output/browser/.
"""

from __future__ import annotations

import io

import pytest

from bot import channels
from bot.dev import transcripts
from bot.flows.loader import load_course
from tests.browser import SimulatorPhone

pytestmark = [pytest.mark.procfile, pytest.mark.browser]

CHANNELS = [parts.channel.name for parts in channels.every()]


@pytest.fixture(scope="module")
def module_1(dev_service):
    """The flow id of the course's first module, as the served folder says."""
    return load_course(dev_service.settings.flows_dir).modules[0]


def open_simulator(page, dev_service) -> str:
    page.goto(f"{dev_service.url}/simulator")
    assert page.locator("h1").inner_text() == "Bottega simulator"
    return page.url.rsplit("/", 1)[-1]  # the session


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_learner_walks_module_1_by_tapping_what_the_phone_shows_and_it_replays_as_golden(
        page, dev_service, screenshots, module_1, channel):
    open_simulator(page, dev_service)
    phone = SimulatorPhone(page, channel)
    assert phone.fact("learner") and not phone.modules_done()

    phone.write("ciao")
    assert "sys:lang:it" in phone.offered()
    screenshots.take(page, f"{channel}-language")
    phone.tap("sys:lang:it")
    business = phone.latest_message()
    if business.get_attribute("data-style") == "list":  # the phone shows the list's button; its rows are in a sheet
        assert not business.locator("[data-role=sheet]").is_visible()
        business.locator("[data-role=list-open]").click()
        assert business.locator("[data-role=sheet] button[data-option-id^='sys:biz:']").first.is_visible()
        screenshots.take(page, f"{channel}-list-sheet")
    phone.tap("sys:biz:")
    phone.open_module(module_1)
    taps = phone.walk_module(module_1)
    screenshots.take(page, f"{channel}-module-1-done")

    assert module_1 in phone.modules_done() and taps >= 3
    assert phone.bot_messages().count() > taps
    learner = page.locator(f'[data-channel="{channel}"] [data-role=learner-message]')
    assert learner.count() >= taps + 4  # ciao, language, business, module, then every tap in it
    if channels.parts_for(channel).read_receipt is not None:  # Bottega marked the learner's messages read
        assert learner.last.get_attribute("data-read") == "yes"
    assert page.problems.messages == []  # no script error, nothing the page's CSP refused

    column = page.locator(f'[data-channel="{channel}"]')
    column.locator("[data-role=golden-form] input[name=name]").fill(f"Simulator module 1 on {channel}")
    column.locator("[data-role=golden-form] button").click()
    notice = page.locator("[data-role=notice]")
    notice.filter(has_text="saved").wait_for()
    saved = dev_service.settings.flows_dir / "tests" / f"simulator_module_1_on_{channel}.yaml"
    assert str(saved) in notice.inner_text() and saved.exists()
    out = io.StringIO()
    assert transcripts.main([saved], flows_dir=dev_service.settings.flows_dir, out=out) == 0, out.getvalue()
    assert out.getvalue().splitlines()[-1] == "1 passed, 0 failed"
    assert f"{channel}]" in out.getvalue() and "expect" in saved.read_text()


def test_the_window_the_test_clock_and_the_failure_switch(page, dev_service, screenshots):
    open_simulator(page, dev_service)
    whatsapp, messenger = SimulatorPhone(page, CHANNELS[0]), SimulatorPhone(page, CHANNELS[1])
    assert channels.parts_for(whatsapp.channel).outside_window.value == "template"
    assert channels.parts_for(messenger.channel).outside_window.value == "opt_in_token"
    whatsapp.start()
    messenger.write("ciao")
    for phone in (whatsapp, messenger):
        assert (phone.fact("window"), phone.fact("proactive")) == ("open", "free-form")

    # a timed check-up schedules clock events; moving the clock 20 minutes fires the first warning
    whatsapp.from_menu("sys:checkup")
    whatsapp.tap("sys:checkup:start")
    pending = int(whatsapp.fact("timers"))
    assert pending >= 2
    said = whatsapp.bot_messages().count()
    clock = page.locator("[data-role=clock-form]")
    for _ in range(2):
        clock.locator("button[data-seconds='600']").click()
    page.locator("[data-role=clock-offset][data-offset-ms='1200000']").wait_for()
    page.wait_for_function(
        """([channel, pending]) => Number(document.querySelector(`[data-channel="${channel}"] [data-role=inspector]`)
                                          .dataset.timers) === pending - 1""", arg=[whatsapp.channel, pending])
    whatsapp.wait_for_messages(said)  # the warning arrives, after the clock lines
    assert whatsapp.column.locator("[data-role=clock-line]").count() == 2
    screenshots.take(page, "clock-moved-20-minutes")

    # a day later every window has closed: WhatsApp may only send a template, Messenger nothing
    clock.locator(f"button[data-seconds='{24 * 3600}']").click()
    for phone, how in ((whatsapp, "template"), (messenger, "nothing")):
        phone.inspector.and_(page.locator("[data-window=closed]")).wait_for()
        assert phone.fact("proactive") == how
    whatsapp.inspector.and_(page.locator("[data-timers='0']")).wait_for()  # the check-up ran out of time
    screenshots.take(page, "window-closed")

    # every send fails with a chosen Meta error code; the inspector shows it with its advice; then it heals
    failures = page.locator("[data-role=graph-form]")
    failures.locator("select[name=code]").select_option("131047")
    failures.locator("button").click()
    page.locator("[data-role=graph-state][data-failing='131047']").wait_for()
    messenger.tap("sys:lang:", wait=False)
    messenger.inspector.and_(page.locator("[data-last-error='131047']")).wait_for()
    assert int(messenger.fact("failed")) >= 1 and "24 hours" in messenger.inspector.inner_text()
    assert (messenger.fact("window"), messenger.fact("proactive")) == ("open", "free-form")  # the tap reopened it
    screenshots.take(page, "graph-failing")
    failures.locator("select[name=code]").select_option("")
    failures.locator("button").click()
    page.locator("[data-role=graph-state][data-failing='']").wait_for()
    said = messenger.bot_messages().count()
    messenger.write("ciao", wait=False)  # sends succeed again: the learner gets an answer
    messenger.wait_for_messages(said)
    assert page.problems.messages == []
