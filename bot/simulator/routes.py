"""The simulator's pages: one phone per registered channel, side by side, with an inspector under each.

``GET /simulator`` starts a session (new learners) and redirects to ``/simulator/<session>``, the page.
``GET /simulator/<session>/panels`` answers JSON ``{panel name: HTML}`` — the same Jinja fragments the page
is made of — which ``static/simulator.js`` polls to refresh the phones, inspectors and controls. Every
action is a plain HTML form (it works without JavaScript: a POST, then 303 back to the page); the script
submits the same forms with ``fetch`` and ``Accept: application/json`` instead:

* ``send`` (channel, text) and ``tap`` (channel, option_id, title, tap): the learner's side
  (``learner_side``: a signed webhook to the app's own ``/webhook``);
* ``clock`` (seconds): the test clock moves forward (dev mode only);
* ``graph`` (code, or empty): every Graph API send fails with that Meta error code, or succeeds again
  (production: every send to this session's sandbox learners);
* ``golden`` (channel, name): the phone's conversation as a golden transcript.

No inline script and no inline style (the console's Content-Security-Policy forbids them; these pages
send that policy themselves). A POST from another site is refused (``Origin`` / ``Sec-Fetch-Site``); with
the console's CSRF protection installed, each form also carries its token (``csrf_token()`` in the
templates when the app defines it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from flask import Blueprint, Response, abort, current_app, jsonify, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue

from bot import channels
from bot.channels.bubbles import BubbleKind, Choice, ChoiceStyle
from bot.channels.parts import ChannelParts
from bot.delivery.graph import TRANSIENT_CODES, advice
from bot.model.errors import BottegaError
from bot.simulator import golden, learner_side
from bot.simulator.inspector import Inspection, inspect
from bot.simulator.outbound import Outbound, OutboundSource
from bot.simulator.phones import PhoneView, phone_view
from bot.simulator.session import Action, Entry, SessionLog, learner_id, new_session, valid_session
from bot.simulator.window import NextProactive
from bot.storage import clock as test_clock
from bot.storage.keys import LearnerPart, learner_key
from config.settings import Settings

View = Callable[..., ResponseReturnValue]
Guard = Callable[[View], View]  # a view decorator: the console's "signed-in admin" check

# What the failure switch offers: Meta codes worth seeing once (the advice beside each comes from bot.delivery.graph)
FAILURE_CODES = (131047, 131026, 131056, 130429, 131000, 190, 10, 100, 551, 1545041)
CLOCK_STEPS_SECONDS = (60, 600, 3600, 6 * 3600, 24 * 3600)
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


@dataclass(frozen=True, kw_only=True)
class Simulator:
    """What the pages work with; built by ``bot.simulator.install``."""

    settings: Settings
    client: redis.Redis
    outbound: OutboundSource  # session -> what was sent to its learners
    decide: NextProactive
    movable_clock: bool  # the shared test clock (dev): the page moves it; else the real clock (production)
    golden_folder: Path | None  # where "save as golden" writes; None: it downloads the file instead
    sandbox: bool = False  # the sessions' learners are sandbox learners (production: bot.model.sandbox)

    def now_ms(self) -> int:
        return test_clock.SharedTestClock(self.client)() if self.movable_clock else test_clock.system_ms()

    def sent(self, session: str) -> Outbound:
        return self.outbound(session)

    def view(self, parts: ChannelParts, log: SessionLog, calls: list[dict[str, Any]]) -> PhoneView:
        return phone_view(parts, log.session, log.entries(), calls, sandbox=self.sandbox)


EXTENSION = "bottega_simulator"  # where the app keeps its Simulator (app.extensions)


def blueprint(sim: Simulator, guard: Guard | None = None) -> Blueprint:
    """The pages over ``sim``; every view passes ``guard`` first (the console's sign-in), POSTs the origin check."""
    pages = Blueprint("simulator", __name__, template_folder="templates", static_folder="static",
                      static_url_path="/simulator/static")
    protect: Guard = guard or (lambda view: view)

    @pages.record_once
    def keep(state: BlueprintSetupState) -> None:  # the views find it on the app they serve
        state.app.extensions[EXTENSION] = sim

    pages.after_request(_headers)
    routes: list[tuple[str, str, View]] = [
        ("/simulator", "GET", start), ("/simulator/<session>", "GET", page),
        ("/simulator/<session>/panels", "GET", panels), ("/simulator/<session>/send", "POST", send),
        ("/simulator/<session>/tap", "POST", tap), ("/simulator/<session>/clock", "POST", clock),
        ("/simulator/<session>/graph", "POST", graph), ("/simulator/<session>/golden", "POST", save_golden)]
    for rule, method, view in routes:
        checked = _same_origin_posts(view) if method == "POST" else view
        pages.add_url_rule(rule, view.__name__, protect(checked), methods=[method])
    return pages


def _sim() -> Simulator:
    sim: Simulator = current_app.extensions[EXTENSION]
    return sim


def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


# --- the views ------------------------------------------------------------------------------------


def start() -> ResponseReturnValue:
    """A new session: new learners, one per channel."""
    return redirect(url_for("simulator.page", session=new_session()), 303)


def page(session: str) -> ResponseReturnValue:
    return render_template("simulator/page.html", **_context(_sim(), _session(session)))


def panels(session: str) -> ResponseReturnValue:
    """The page's changing parts, as the page's own fragments: ``{panel name: HTML}``."""
    context = _context(_sim(), _session(session))
    fragments = {"clock-state": render_template("simulator/_clock_state.html", **context),
                 "graph-state": render_template("simulator/_graph_state.html", **context)}
    for phone in context["phones"]:
        name = phone.parts.channel.name
        fragments[f"screen-{name}"] = render_template("simulator/_screen.html", phone=phone, **context)
        fragments[f"inspector-{name}"] = render_template("simulator/_inspector.html", phone=phone, **context)
    return jsonify(fragments)


def send(session: str) -> ResponseReturnValue:
    parts, text = _channel(), request.form.get("text", "").strip()
    if not text:
        return _answer(session, "write something first", 400)
    return _learner_acts(_sim(), session, lambda context: learner_side.write(parts, text, **context))


def tap(session: str) -> ResponseReturnValue:
    sim, parts = _sim(), _channel()
    choice = Choice(id=request.form.get("option_id", ""), title=request.form.get("title", ""),
                    tap=request.form.get("tap", ""))
    if not choice.id:
        return _answer(session, "that choice has no id", 400)
    log = SessionLog(sim.client, _session(session))
    view = sim.view(parts, log, sim.sent(log.session).calls())
    latest = any(c.id == choice.id and c.title == choice.title for c in view.latest_choices)
    return _learner_acts(sim, session, lambda context: learner_side.tap(parts, choice, latest=latest, **context))


def clock(session: str) -> ResponseReturnValue:
    """The test clock moves forward (dev mode); every learner's outbox says whether the log's turns settled."""
    sim = _sim()
    log = SessionLog(sim.client, _session(session))
    if not sim.movable_clock:
        abort(404)
    seconds = _number(request.form.get("seconds", ""))
    if seconds is None or seconds <= 0:
        return _answer(session, "move the clock forward by a number of seconds above 0", 400)
    settled = all(sim.client.llen(learner_key(learner_id(parts, log.session, sandbox=sim.sandbox),
                                              LearnerPart.OUTBOX)) == 0 for parts in channels.every())
    offset = test_clock.advance(sim.client, int(seconds * 1000))
    log.append(Entry(action=Action.CLOCK, seconds=seconds, calls_before=len(sim.sent(log.session).calls()),
                     settled=settled, at_ms=test_clock.system_ms() + offset))
    return _answer(session, f"test clock moved {duration(int(seconds * 1000))} forward")


def graph(session: str) -> ResponseReturnValue:
    """Every Graph API send fails with the chosen Meta error code; an empty code: they succeed again."""
    sim = _sim()
    _session(session)
    raw = request.form.get("code", "").strip()
    code = int(raw) if raw.lstrip("-").isdigit() else None
    if raw and code is None:
        return _answer(session, f"{raw!r} is not an error code", 400)
    sim.sent(session).fail_with(code)
    sends = "every send to this session's sandbox learners" if sim.sandbox else "every Graph API send"
    return _answer(session, f"{sends} now fails with error {code}" if code is not None else f"{sends} succeeds again")


def save_golden(session: str) -> ResponseReturnValue:
    """One phone's conversation as a golden transcript: written beside the course (dev), else downloaded."""
    sim, parts = _sim(), _channel()
    log = SessionLog(sim.client, _session(session))
    name = request.form.get("name", "").strip() or f"Simulator {parts.title} {time.strftime('%Y-%m-%d %H:%M')}"
    view = sim.view(parts, log, sim.sent(log.session).calls())
    try:
        recorded = golden.transcript(view, name=name, session=log.session)
    except ValueError as error:
        return _answer(session, str(error), 400)
    if sim.golden_folder is None:
        filename = golden.file_name(name, Path(".")).name
        return Response(recorded.text, 200, mimetype="application/yaml",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    sim.golden_folder.mkdir(parents=True, exist_ok=True)
    path = golden.file_name(name, sim.golden_folder)
    path.write_text(recorded.text, encoding="utf-8")
    return _answer(session, f"saved {path} ({recorded.turns} turns); replay it: bottega flows test {path}",
                   path=str(path))


# --- the parts of a page ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Phone:
    parts: ChannelParts
    view: PhoneView
    inspection: Inspection


def _views(sim: Simulator, log: SessionLog) -> list[PhoneView]:
    entries, calls = log.entries(), sim.sent(log.session).calls()
    return [phone_view(parts, log.session, entries, calls, sandbox=sim.sandbox) for parts in channels.every()]


def _context(sim: Simulator, session: str) -> dict[str, Any]:
    log = SessionLog(sim.client, session)
    now = sim.now_ms()
    phones = [Phone(parts=view.parts, view=view, inspection=inspect(sim.client, view.learner_id, now, sim.decide))
              for view in _views(sim, log)]
    failing = sim.sent(session).failing_code()
    codes = [(code, _advice(code), code in TRANSIENT_CODES) for code in FAILURE_CODES]
    return {"session": session, "phones": phones, "now_ms": now, "failing": failing, "codes": codes,
            "clock_offset_ms": test_clock.offset_ms(sim.client) if sim.movable_clock else None,
            "clock_steps": CLOCK_STEPS_SECONDS,
            "golden_folder": sim.golden_folder, "duration": duration, "moment": moment, "Kind": BubbleKind,
            "Style": ChoiceStyle, "Action": Action}


def _advice(code: int) -> str:
    """The advice for ``code``, once if every channel gives the same, else per channel."""
    by_channel = {parts.title: advice(parts.channel.name, code) for parts in channels.every()}
    if len(set(by_channel.values())) == 1:
        return next(iter(by_channel.values()))
    return "; ".join(f"{title}: {text}" for title, text in by_channel.items())


def duration(ms: int) -> str:
    """``ms`` as a person reads it, two units at most: "45 s", "4 min 05 s", "1 h", "23 h 59 min", "2 d 3 h"."""
    seconds = max(ms // 1000, 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    units = [(days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s")]
    first = next((i for i, (value, _) in enumerate(units) if value), len(units) - 1)
    shown = [f"{value:02d} {unit}" if i > first and unit in ("min", "s") else f"{value} {unit}"
             for i, (value, unit) in enumerate(units[first:first + 2], start=first) if value or i == first]
    return " ".join(shown)


def moment(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else "—"


# --- request helpers ----------------------------------------------------------------------------


def _session(session: str) -> str:
    if not valid_session(session):
        abort(404)
    return session


def _channel() -> ChannelParts:
    try:
        return channels.parts_for(request.form.get("channel", ""))
    except channels.UnknownChannel:
        abort(400, description="unknown channel")


def _number(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _learner_acts(sim: Simulator, session: str, act: Callable[[dict[str, Any]], Entry]) -> ResponseReturnValue:
    log = SessionLog(sim.client, _session(session))
    context = {"settings": sim.settings, "client": sim.client, "log": log, "outbound": sim.sent(log.session),
               "sandbox": sim.sandbox,
               "now_ms": sim.now_ms(), "webhook_url": f"{request.host_url.rstrip('/')}/webhook"}
    try:
        act(context)
    except learner_side.NotSandbox as error:
        return _answer(session, str(error), 403)
    except BottegaError as error:
        return _answer(session, str(error), 502)
    return _answer(session, "")


def _answer(session: str, notice: str, status: int = 200, **extra: str) -> ResponseReturnValue:
    """JSON for the script (``Accept: application/json``); a redirect back to the page for a plain form."""
    if request.accept_mimetypes.best == "application/json":
        return jsonify({"notice": notice, **extra}), status
    if status >= 400:
        return Response(notice, status, mimetype="text/plain")
    return redirect(url_for("simulator.page", session=session), 303)


def _same_origin_posts(view: View) -> View:
    """Refuse a POST another site's page made the developer's browser send (dev mode has no sign-in)."""
    def checked(**kwargs: Any) -> ResponseReturnValue:
        site = request.headers.get("Sec-Fetch-Site", "")
        origin = request.headers.get("Origin", "")
        if site not in ("", "same-origin", "none") or (origin and _origin(origin) != _origin(request.host_url)):
            return Response("refused: this form may only be posted from the simulator's own page", 403,
                            mimetype="text/plain")
        return view(**kwargs)
    checked.__name__ = view.__name__
    return checked


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
