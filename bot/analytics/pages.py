"""The analytics pages: a Flask Blueprint the admin console mounts (``blueprint(read_store, guard, ...)``).

Server-rendered HTML, no script and no inline style (the console's Content-Security-Policy allows neither): the
charts are SVG drawn on the server (``charts``, and Graphviz for the funnel on the module's flow diagram), the
one stylesheet is a static file, and the layout is a single column that reads on a phone. Every table has a
CSV link (``/<page>.csv?table=<slug>``, with the page's own query string).

``guard`` wraps every view: the console passes its sign-in/role check (the viewer role reads analytics); tests
and dev may pass ``lambda view: view``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from flask import Blueprint, Flask, Response, abort, render_template, request, url_for

from bot.analytics import charts, diagram, queries
from bot.analytics.queries import Page, Table
from bot.analytics.store import AnalyticsStore
from bot.delivery.graph import advice
from bot.flows.spec import Course
from bot.proactive.policy import Prices
from bot.storage.clock import SharedTestClock, SystemClock
from bot.storage.releases import Registry, live_release
from config.settings import Settings

Guard = Callable[[Callable[..., Any]], Callable[..., Any]]

PAGES = (("overview", "Overview"), ("funnel", "Funnel"), ("items", "Item analysis"), ("checkup", "Check-up"),
         ("delivery", "Delivery"), ("cohorts", "Cohorts"))
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")


def install(app: Flask, *, settings: Settings, client: redis.Redis, registry: Registry, guard: Guard,
            url_prefix: str = "/admin/analytics") -> bool:
    """Mount the pages at ``url_prefix`` behind the console's ``guard`` (signed in, the viewer role). True."""
    store = AnalyticsStore.for_settings(settings.analytics_url, settings.var_dir)
    clock = SharedTestClock(client) if settings.movable_clock else SystemClock()
    prices = Prices.parse(settings.whatsapp_prices, settings.price_currency)
    app.register_blueprint(blueprint(lambda: store, guard,
                                     course=lambda: registry.engine_for(live_release(client)).course,
                                     now_ms=clock, prices=prices.cost, currency=prices.currency,
                                     home=("Console", url_prefix.rsplit("/", 1)[0] + "/")),
                           url_prefix=url_prefix)
    return True


def blueprint(read_store: Callable[[], AnalyticsStore], guard: Guard, *, course: Callable[[], Course],
              now_ms: Callable[[], int], prices: Callable[[str], float] = lambda category: 0.0,
              currency: str = "USD", name: str = "analytics", home: tuple[str, str] | None = None) -> Blueprint:
    """The analytics pages over the store ``read_store()`` gives and the live ``course()``; ``home``: (label, URL)
    of the page the navigation leads back to (the console's)."""
    pages = Blueprint(name, __name__, template_folder="templates")
    stylesheet = (Path(__file__).parent / "static" / "analytics.css").read_text(encoding="utf-8")

    def build(page: str) -> tuple[Page, dict[str, Any]]:
        """The page's tables and what its template needs besides them."""
        store = read_store()
        live = course()
        if page == "overview":
            return queries.overview(store, now_ms()), {}
        if page == "funnel":
            modules = [m for m in live.modules if m in live.flows]
            module = request.args.get("module") or (modules[0] if modules else "")
            if module not in live.flows:
                abort(404)
            flow = live.flows[module]
            result, edges = queries.funnel(store, flow)
            funnel_table = result.table("funnel")
            stopped = {row[1]: int(row[5]) for row in (funnel_table.rows if funnel_table else [])
                       if isinstance(row[5], int) and row[5]}
            return result, {"choices": [(m, m) for m in modules], "chosen": module, "choice_name": "module",
                            "flow_svg": diagram.funnel_svg(flow, edges, stopped)}
        if page == "items":
            tests = queries.tests_of(live)
            test = request.args.get("test") or (tests[0][0] if tests else "")
            if test not in {t for t, _ in tests}:
                abort(404)
            return queries.items(store, live, test), {"choices": tests, "chosen": test, "choice_name": "test"}
        if page == "checkup":
            return queries.checkup(store), {}
        if page == "delivery":
            return queries.delivery(store, now_ms(), advice, prices, currency), {}
        if page == "cohorts":
            return queries.cohorts(store), {}
        abort(404)

    def chart(table: Table) -> str:
        if table.chart is None or not table.rows:
            return ""
        label, value = table.chart
        rows = [(str(row[label]), float(row[value] or 0)) for row in table.rows]
        return charts.bars(rows, title=table.title)

    @pages.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if response.mimetype != "text/css":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    def view(page: str) -> Callable[[], str]:
        def show() -> str:
            result, extra = build(page)
            csv_links = {table.slug: _csv_link(page, table.slug) for table in result.tables}
            return render_template("analytics/page.html", pages=PAGES, page=page, title=dict(PAGES)[page], home=home,
                                   result=result, chart=chart, csv_links=csv_links, **extra)

        def download() -> Response:
            result, _ = build(page)
            table = result.table(request.args.get("table", ""))
            if table is None:
                abort(404)
            return Response(table.csv(), mimetype="text/csv", headers={
                "Content-Disposition": f'attachment; filename="{page}-{table.slug}.csv"'})

        show.__name__, download.__name__ = page, f"{page}_csv"
        pages.add_url_rule("/" if page == "overview" else f"/{page}", page, guard(show))
        pages.add_url_rule(f"/{page}.csv", f"{page}_csv", guard(download))
        return show

    for page, _ in PAGES:
        view(page)

    def css() -> Response:  # behind the guard too: every page under the console's prefix asks for a session
        return Response(stylesheet, mimetype="text/css", headers={"Cache-Control": "private, max-age=3600"})

    pages.add_url_rule("/analytics.css", "stylesheet", guard(css))
    return pages


def _csv_link(page: str, slug: str) -> str:
    values: dict[str, Any] = {key: value for key, value in request.args.items() if key in ("module", "test")}
    return url_for(f".{page}_csv", table=slug, **values)
