"""The browser tests' harness: Playwright driving Debian's Chromium, screenshots into the test output folder,
and a learner's phone on the simulator page driven as a person would (type, tap the rendered buttons, open
a list's sheet and tap its rows). The fixtures that use it are in ``tests/conftest.py``: ``browser``
(one Chromium per session), ``page`` (a fresh page per test, its console watched), ``screenshots`` (this
test's folder) and ``dev_service`` (the Procfile's web + worker in dev mode on a copy of the flows).

Chromium is Debian's (``apt-get install chromium``; ``.ci/run`` installs it when missing): Playwright's own
browser download cannot work here. A browser test never skips: without a Chromium that starts it fails,
saying how to install one. ``BOTTEGA_CHROMIUM`` names another binary; ``BOTTEGA_TEST_OUTPUT`` another
output folder (default ``test-output/`` in the project, ignored by git).

Waiting is by state, never by time: a turn is over when the phone shows a newer message offering
choices and the learner's outbox (the inspector's ``data-outbox``) is empty.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, Playwright
from playwright.sync_api import Error as PlaywrightError

from config.settings import PROJECT_ROOT

CHROMIUM = Path(os.environ.get("BOTTEGA_CHROMIUM") or "/usr/bin/chromium")
OUTPUT_DIR = Path(os.environ.get("BOTTEGA_TEST_OUTPUT") or PROJECT_ROOT / "test-output")
CHROMIUM_ARGS = (
    "--no-sandbox",  # CI runs as root, where Chromium's own sandbox refuses to start
    "--disable-dev-shm-usage",  # a small /dev/shm in containers crashes renderers
)
VIEWPORT = {"width": 1400, "height": 1100}
TURN_TIMEOUT_MS = 30_000  # a generous bound on one turn (webhook, worker, fake Graph API, next poll)
MENU_PAGE_PREFIX = "sys:menu:page:"


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless; a failure (never a skip) when it is missing or does not start."""
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's with `apt-get install -y chromium` "
                    "(.ci/run does when it is missing) or set BOTTEGA_CHROMIUM", pytrace=False)
    try:
        return playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
    except PlaywrightError as error:
        pytest.fail(f"Chromium at {CHROMIUM} did not start: {error}", pytrace=False)


def output_folder(test_name: str) -> Path:
    folder = OUTPUT_DIR / "browser" / re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


@dataclass
class Screenshots:
    """Numbered full-page screenshots of one test: ``01-name.png``, ``02-...``."""

    folder: Path
    taken: list[Path] = field(default_factory=list)

    def take(self, page: Page, name: str) -> Path:
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


@dataclass
class PageProblems:
    """What the page's console and scripts reported: a broken script or a refused resource (CSP) shows here."""

    messages: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", lambda message: self.messages.append(f"console {message.type}: {message.text}")
                if message.type in ("error", "warning") else None)
        page.on("pageerror", lambda error: self.messages.append(f"page error: {error}"))


class SimulatorPhone:
    """One channel's phone on the simulator page (``/simulator/<session>``)."""

    def __init__(self, page: Page, channel: str):
        self.page, self.channel = page, channel
        self.column = page.locator(f'[data-channel="{channel}"]')
        self.lines = self.column.locator("[data-role=lines]")
        self.inspector = self.column.locator("[data-role=inspector]")

    # -- what is on screen ---------------------------------------------------------------------------
    def latest_number(self) -> int:
        """The call number of the newest message offering choices (-1: none yet)."""
        return int(self.lines.get_attribute("data-last-choices") or -1)

    def latest_message(self) -> Locator:
        return self.column.locator(f'[data-role=bot-message][data-number="{self.latest_number()}"]')

    def offered(self) -> list[str]:
        """The option ids of the newest message offering choices (list rows, buttons or quick replies)."""
        message = self.latest_message()
        if message.get_attribute("data-style") == "quick_replies":
            buttons = self.column.locator("[data-role=quick-replies] button[data-option-id]")
        else:
            buttons = message.locator("button[data-option-id]")
        return [buttons.nth(i).get_attribute("data-option-id") or "" for i in range(buttons.count())]

    def fact(self, name: str) -> str:
        """One of the inspector's data attributes: modules-done, window, proactive, outbox, timers, learner."""
        return self.inspector.get_attribute(f"data-{name}") or ""

    def modules_done(self) -> list[str]:
        return self.fact("modules-done").split()

    def bot_messages(self) -> Locator:
        return self.column.locator("[data-role=bot-message]")

    def wait_for_messages(self, more_than: int) -> None:
        """Until the phone shows more than ``more_than`` of Bottega's messages."""
        self.page.wait_for_function(
            """([channel, count]) => document.querySelectorAll(
                 `[data-channel="${channel}"] [data-role=bot-message]`).length > count""",
            arg=[self.channel, more_than], timeout=TURN_TIMEOUT_MS)

    # -- what the learner does -----------------------------------------------------------------------
    def write(self, text: str, *, wait: bool = True) -> None:
        before = self.latest_number()
        self.column.locator("[data-role=composer] input[name=text]").fill(text)
        self.column.locator("[data-role=composer] button").click()
        if wait:
            self.wait_for_turn(before)

    def tap(self, prefix: str, *, wait: bool = True) -> str:
        """Tap the first choice of the newest message whose option id starts with ``prefix``, as a person would:
        a reply button, a quick reply, or a list row after opening the list's sheet. Returns the id tapped."""
        before = self.latest_number()
        message = self.latest_message()
        style = message.get_attribute("data-style")
        if style == "list":
            if not message.locator("[data-role=sheet]").is_visible():
                message.locator("[data-role=list-open]").click()  # the list's button opens its sheet of rows
            target = message.locator(f'[data-role=sheet] button[data-option-id^="{prefix}"]').first
        elif style == "quick_replies":
            target = self.column.locator(f'[data-role=quick-replies] button[data-option-id^="{prefix}"]').first
        else:
            target = message.locator(f'button[data-option-id^="{prefix}"]').first
        if target.count() == 0:
            raise AssertionError(f"{self.channel}: no choice starting {prefix!r}; on screen: {self.offered()}")
        tapped = target.get_attribute("data-option-id") or ""
        target.click()
        if wait:
            self.wait_for_turn(before)
        return tapped

    def wait_for_turn(self, before: int) -> None:
        """Until a message newer than ``before`` offers choices and the learner's outbox is empty."""
        self.page.wait_for_function(
            """([channel, before]) => {
                 const column = document.querySelector(`[data-channel="${channel}"]`);
                 const lines = column && column.querySelector("[data-role=lines]");
                 const facts = column && column.querySelector("[data-role=inspector]");
                 return lines && facts && Number(lines.dataset.lastChoices) > before && facts.dataset.outbox === "0";
               }""", arg=[self.channel, before], timeout=TURN_TIMEOUT_MS)

    def start(self, *, language: str = "sys:lang:it") -> None:
        """A new learner says hello, picks a language and the first business type."""
        self.write("ciao")
        self.tap(language)
        self.tap("sys:biz:")

    def open_module(self, flow_id: str) -> None:
        """From the menu on screen: the module's row, turning menu pages until it shows."""
        self.from_menu(f"sys:module:{flow_id}")

    def from_menu(self, option_id: str) -> None:
        """Tap ``option_id`` on the menu on screen, turning its pages until it shows."""
        for _ in range(10):
            offered = self.offered()
            if option_id in offered:
                self.tap(option_id)
                return
            pages = [option for option in offered if option.startswith(MENU_PAGE_PREFIX)]
            if not pages:
                break
            self.tap(pages[-1])
        raise AssertionError(f"{self.channel}: the menu never offered {option_id}; on screen: {self.offered()}")

    def walk_module(self, flow_id: str, *, max_taps: int = 60) -> int:
        """Through ``flow_id`` by its structure, tapping the first of the module's own choices (lessons'
        "done", any quiz answer) until the inspector lists it done; returns the taps it took."""
        for taps in range(max_taps):
            if flow_id in self.modules_done():
                return taps
            self.tap(f"c:{flow_id}:")
        raise AssertionError(f"{self.channel}: {flow_id} not done after {max_taps} taps; on screen: {self.offered()}")
