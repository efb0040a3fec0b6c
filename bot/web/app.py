"""The Flask app: one ``/webhook`` for both Meta products (dispatch on ``object``).

GET is the subscription handshake. POST: raw bytes -> signature -> JSON -> events -> dispatch -> 200.
The request only verifies, parses, advances state and enqueues; Graph API calls happen in the worker.
Answers: 403 forged/missing signature, 413 over Meta's 3 MB cap (whatever the body's framing), 400 not
JSON (or nested too deep to parse), 200 for anything signed and well-formed (parts we do not understand
are logged and skipped, or Meta would redeliver them for days), 503 only when Redis is unreachable
(Meta retries; nothing is lost) or, on a Redis Cluster, when a commit meets a moving slot, a failover or a
node that cannot take it (MOVED/ASK left after the client's redirects, TRYAGAIN, CLUSTERDOWN, a replica
that is read-only) — a commit is one script on one node, so it ran whole or not at all.
Every request gets a request id (``config.logs``), answered in ``X-Request-Id`` and carried to the jobs.
Operations: ``/healthz`` (the process answers), ``/readyz`` (Redis and the broker answer; 503 otherwise),
``/metrics`` (Prometheus, ``bot.web.metrics``).
Every answer of the app carries HSTS and ``X-Content-Type-Options: nosniff``, and every HTML page frame
denial and a Content-Security-Policy (its own, or a default that allows nothing) (``_security_headers``).
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable

import redis
from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wsgi import get_input_stream

from bot import channels, composition, console, privacy, simulator
from bot.analytics import pages as analytics_pages
from bot.broadcasts.service import Broadcasts
from bot.channels import parsing as inbound
from bot.channels import signature as security
from bot.dispatch import ConcurrencyError, Dispatcher, Handled, Notify
from bot.handover import Inbox
from bot.model.events import Channel, InboundEvent
from bot.model.privacy import learner_ref
from bot.privacy.chat import store_export
from bot.storage import releases
from bot.storage.replication import NotReplicated
from bot.web import certificates as certificate_routes
from bot.web import learner_data as learner_data_routes
from bot.web import metrics as metric_routes
from bot.web import open_days as open_day_routes
from config import logs, meters
from config.settings import Settings

log = logging.getLogger("bottega.webhook")

# Redis cannot take the turn now: answer 503 and Meta redelivers (the dedup id makes the redelivery safe)
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, ConcurrencyError, NotReplicated,
              redis.exceptions.ClusterError, redis.exceptions.TryAgainError, redis.exceptions.AskError,
              redis.exceptions.ReadOnlyError, redis.exceptions.RedisClusterException)
READ_CHUNK_BYTES = 64 * 1024
HSTS = "max-age=31536000; includeSubDomains"  # a year, in seconds: browsers keep to HTTPS for this host
# an HTML page that set no policy of its own (werkzeug's error pages): nothing loads, nothing frames it
DEFAULT_PAGE_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def create_app(settings: Settings | None = None, *, redis_client: redis.Redis | None = None,
               notify: Notify | None = None) -> Flask:
    settings = settings or Settings.from_env()
    logs.configure_logging(settings.log_level, settings.log_format)
    client = redis_client or composition.redis_client(settings)
    # with no live release the folder must pass the check (FlowError names file, line and fix); with
    # one, a broken folder is logged and the live release keeps serving
    registry = composition.registry(settings, client)
    queue = None
    if notify is None:  # the production wiring: replies and a big batch's tail go to the worker's queue
        queue = composition.job_queue(settings)
        notify = queue.deliver
    dispatcher = composition.dispatcher(settings, client, registry, notify=notify, queue=queue,
                                        exports=lambda lid, token: store_export(client, lid, token))

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    if settings.trusted_proxies:  # remote_addr: the address in X-Forwarded-For that many hops from the right
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore[method-assign]
    app.before_request(_request_id)
    app.after_request(_security_headers)
    app.extensions["bottega"] = {"settings": settings, "dispatcher": dispatcher, "redis": client,
                                 "registry": registry}
    app.register_blueprint(certificate_routes.blueprint(client))  # /certificates/<token>.pdf, /verify/<code>
    # /admin: the admin console, when CONSOLE_SECRET_KEY is set (dev mode has a default)
    admin = console.install(app, settings=settings, client=client,
                            course=lambda: registry.engine_for(releases.live_release(client)).course,
                            broadcasts=Broadcasts.build(settings, client, registry, queue=queue),
                            inbox=Inbox(dispatcher, composition.proactive_policy(settings)),  # as `bottega inbox`
                            queue=queue or composition.job_queue(settings))  # dry runs, sends, announces: the worker
    app.register_blueprint(open_day_routes.blueprint(client))  # /open-days/<event>/<ticket>.ics
    app.register_blueprint(learner_data_routes.blueprint(client))  # /privacy, /data/<token>.json, /link/<code>
    # /simulator: in dev mode on the fake Graph API; in production behind the console's sign-in (editors), its
    # phones sandbox learners whose sends the worker records in Redis instead of calling Meta (outbound=)
    if settings.dev:
        simulator.install(app, settings=settings, client=client)
    elif admin is not None and simulator.install(app, settings=settings, client=client,
                                                 guard=admin.require(console.Role.EDITOR),
                                                 outbound=simulator.recorded(client)):
        console.add_nav(admin, console.NavItem(label="Simulator", endpoint="simulator.start",
                                               role=console.Role.EDITOR))
    privacy.register(privacy.analytics_holder(settings))  # the console's export and erase reach the analytics store
    # /admin/analytics: the learning analytics, behind the console's sign-in (the viewer role reads them)
    if admin is not None and analytics_pages.install(app, settings=settings, client=client, registry=registry,
                                                     guard=admin.require(console.Role.VIEWER)):
        console.add_nav(admin, console.NavItem(label="Analytics", endpoint="analytics.overview"))
    metric_routes.install(app, client=client, queue=queue, clock=dispatcher.clock)  # /metrics, /readyz

    @app.get("/webhook")
    def handshake() -> Response:
        mode = request.args.get("hub.mode")
        if mode == "subscribe" and security.verify_token_valid(settings.verify_token,
                                                               request.args.get("hub.verify_token")):
            return Response(request.args.get("hub.challenge", ""), 200, mimetype="text/plain")
        return Response("forbidden", 403, mimetype="text/plain")

    @app.post("/webhook")
    def receive() -> Response:
        raw = _read_body(settings.max_body_bytes)
        if raw is None:
            log.warning("webhook refused: body over %d bytes (413)", settings.max_body_bytes)
            meters.WEBHOOKS.labels("too_large").inc()
            return Response("body too large", 413, mimetype="text/plain")
        header = request.headers.get("X-Hub-Signature-256")
        signed_by = _signed_by(settings, raw, header)
        if not signed_by:
            log.warning("webhook refused: missing or invalid signature (%d bytes)", len(raw))
            meters.WEBHOOKS.labels("forged").inc()
            return Response("invalid signature", 403, mimetype="text/plain")
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            meters.WEBHOOKS.labels("malformed").inc()
            return Response("body is not JSON", 400, mimetype="text/plain")
        except RecursionError:  # signed but nested thousands deep: as malformed to us (a 500 is retried for days)
            meters.WEBHOOKS.labels("malformed").inc()
            return Response("body is JSON nested too deep", 400, mimetype="text/plain")
        if not isinstance(payload, dict):
            meters.WEBHOOKS.labels("malformed").inc()
            return Response("body is not a JSON object", 400, mimetype="text/plain")
        parsed = inbound.parse(payload)
        if parsed.channel is not None and parsed.channel not in signed_by:
            log.warning("webhook refused: signed with the other product's app secret")
            meters.WEBHOOKS.labels("forged").inc()
            return Response("invalid signature", 403, mimetype="text/plain")
        for note in parsed.skipped:
            log.info("webhook skipped: %s", note)
        counts: dict[object, int] = {}
        try:
            results = dispatcher.handle_batch(parsed.events, _handle_logging_bugs(dispatcher))
        except REDIS_DOWN as error:
            log.error("webhook deferred (503): Redis unavailable: %s", type(error).__name__)
            meters.WEBHOOKS.labels("unavailable").inc()
            return Response("temporarily unavailable", 503, mimetype="text/plain", headers={"Retry-After": "5"})
        for handled in results:
            counts[handled] = counts.get(handled, 0) + 1
        for handled, count in counts.items():
            meters.EVENTS.labels(str(getattr(handled, "value", handled))).inc(count)
        meters.WEBHOOKS.labels("ok").inc()
        log.info("webhook %s: %s", parsed.channel if parsed.channel else "unknown",
                 " ".join(f"{getattr(k, 'value', k)}={v}" for k, v in counts.items()) or "no events")
        return Response("EVENT_RECEIVED", 200, mimetype="text/plain")

    @app.get("/healthz")
    def health() -> Response:
        """Alive: the process answers (a load balancer or supervisor restarts it when not)."""
        return Response("ok", 200, mimetype="text/plain")

    return app


def _handle_logging_bugs(dispatcher: Dispatcher) -> Callable[[InboundEvent], Handled | str]:
    """``dispatcher.handle``, except that a bug in one event is logged (without PII) and the batch goes on:
    a 500 would only make Meta redeliver the whole body for days. Redis being down still raises."""
    def handle(event: InboundEvent) -> Handled | str:
        try:
            return dispatcher.handle(event)
        except REDIS_DOWN:
            raise
        except Exception as error:
            frames = "".join(traceback.format_tb(error.__traceback__))  # code lines, not the message
            log.error("event skipped after %s (learner %s):\n%s", type(error).__name__,
                      learner_ref(event.learner_id), frames)
            return "failed"
    return handle


def _read_body(max_bytes: int) -> bytes | None:
    """The request body, or None when it is longer than ``max_bytes``, whatever its framing.

    werkzeug caps a body without Content-Length (``Transfer-Encoding: chunked``) at MAX_CONTENT_LENGTH
    by silently stopping there: a 3.1 MB body came back cut to 3 MB and failed its signature (403)
    instead of 413. Reading one byte past the cap tells a body of exactly ``max_bytes`` from a longer
    one, and no more than that is ever held in memory.
    """
    if request.content_length is not None and request.content_length > max_bytes:
        return None  # refused before reading a byte of it
    stream = get_input_stream(request.environ, max_content_length=max_bytes + 1)
    body = bytearray()
    while len(body) <= max_bytes:
        chunk = stream.read(min(READ_CHUNK_BYTES, max_bytes + 1 - len(body)))
        if not chunk:
            return bytes(body)
        body += chunk
    return None


def _request_id() -> None:
    """This request's id (the caller's ``X-Request-Id`` when it is a plain token): on its log lines and jobs."""
    logs.request_id.set(logs.new_request_id(request.headers.get("X-Request-Id")))


def _security_headers(response: Response) -> Response:
    """Add HSTS and ``nosniff`` to every answer, frame denial and a default CSP to every HTML page, keeping
    any value a route set (the certificate pages', the console's, the simulator's).

    ``nosniff`` matters most for the GET handshake, which echoes caller-chosen text as text/plain.
    """
    response.headers.setdefault("Strict-Transport-Security", HSTS)
    response.headers.setdefault("X-Request-Id", logs.request_id.get())
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", DEFAULT_PAGE_POLICY)
    return response


def _signed_by(settings: Settings, raw: bytes, header: str | None) -> set[Channel]:
    """Which channels' app secrets sign this body (every one of them when one META_APP_SECRET serves all).

    One HMAC per distinct secret, not per channel: with one app secret for all, the body is hashed once.
    """
    by_secret: dict[str, list[Channel]] = {}
    for parts in channels.every():
        by_secret.setdefault(getattr(settings, parts.app_secret_setting), []).append(parts.channel)
    return {channel for secret, named in by_secret.items() if security.signature_valid(secret, raw, header)
            for channel in named}
