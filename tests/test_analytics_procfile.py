"""Learning analytics end to end: learners walk module 1 through real signed webhooks to the real Procfile
processes (gunicorn web + Dramatiq worker), and the funnel the worker folded into the store is the walk's."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bot.analytics import queries
from bot.analytics.store import AnalyticsStore
from bot.channels.messenger import MESSENGER
from bot.channels.whatsapp import WHATSAPP
from tests.service import Phone, Service
from tests.test_procfile import finish, steps_of_module_1

pytestmark = pytest.mark.procfile

STEPS_TO_LESSON_1 = 5  # hello, language, business, the module (its intro), then lesson 1


@pytest.fixture
def service(tmp_path) -> Iterator[Service]:
    with Service(tmp_path) as svc:
        yield svc


def funnel_rows(store: AnalyticsStore, course) -> dict[str, tuple]:
    page, _ = queries.funnel(store, course.flows["m1_contatto"])
    return {row[1]: row for row in page.table("funnel").rows}


def test_learners_walking_module_1_give_the_funnel_they_walked(service: Service, course) -> None:
    finishers = [Phone(service, WHATSAPP, "393330000501"), Phone(service, MESSENGER, "7000000000502")]
    for phone in finishers:
        finish(steps_of_module_1(phone, course, "it"))
    quitter = Phone(service, WHATSAPP, "393330000503")
    walk = steps_of_module_1(quitter, course, "it")
    for _ in range(STEPS_TO_LESSON_1):
        next(walk)
    store = AnalyticsStore(f"sqlite:///{service.workdir / 'var' / 'analytics.sqlite3'}")
    flow = course.flows["m1_contatto"]
    expected = {"started": 3, flow.start: 3, "lesson_1": 3, "lesson_2": 2, "q4": 2, "completed": 2}
    deadline = time.monotonic() + 60
    rows: dict[str, tuple] = {}
    while time.monotonic() < deadline:  # the worker folds what the sender forwarded, a moment later
        try:
            rows = funnel_rows(store, course)
        except Exception:  # the worker has not created the store yet
            rows = {}
        if rows and {step: rows[step][3] for step in expected} == expected:
            break
        time.sleep(0.2)
    assert {step: rows[step][3] for step in expected} == expected
    assert rows["lesson_1"][5] == 1  # the one who stopped, stopped at lesson 1
    assert rows["lesson_2"][5] == 0
    channels = dict(((channel, lang), n) for channel, lang, n in store.rows(
        "SELECT channel, lang, COUNT(*) FROM learners GROUP BY channel, lang"))
    assert channels == {("whatsapp", "it"): 2, ("messenger", "it"): 1}
    items = {row[0]: row for row in queries.items(store, course, "quiz:m1_contatto").table("items").rows}
    assert items["q1"][2:4] == (2, "1.00")  # both finishers answered right: facility 1, flagged too easy
    assert "too easy" in items["q1"][5]
    sends = store.rows("SELECT SUM(n) FROM delivery_daily WHERE what = 'send' AND ok = 1")[0][0]
    assert sends and sends >= 3 * STEPS_TO_LESSON_1
    store.close()
