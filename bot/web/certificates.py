"""HTTP routes for certificates: the PDF behind an unguessable URL and the public verification page.

``GET /certificates/<token>.pdf`` -> the PDF, drawn on request from the stored record (no PDF bytes
are stored); this is the link handed to the Graph API as a WhatsApp document / Messenger file.
``GET /verify/<code>`` -> an HTML page: 200 "Attestato autentico", 410 "Attestato revocato" (its learner
was erased: ``bot.privacy``), or 404 "Codice non trovato".
Both answer 404 for anything unknown, 503 when Redis is unreachable, and ask not to be indexed nor
leak their URL as a referrer. Register with ``app.register_blueprint(blueprint(client))``.

Both are public, so both are rate-limited per client, on the app's own Redis so that every web process
counts into one budget (Flask-Limiter): ``/verify`` because codes can be guessed (an employer checks a
handful, a harvester needs billions of tries), the PDF because drawing one costs CPU (its 256-bit token
cannot be guessed; the budget leaves room for Meta, which fetches every learner's document from a few
addresses). Over a limit: 429, two short plain-text lines and ``Retry-After`` in seconds. The client is
``request.remote_addr`` - the TCP peer, or behind TRUSTED_PROXIES what werkzeug's ProxyFix read from
X-Forwarded-For - and an IPv6 client is counted by its /64. With Redis down the limiter counts in each
process's memory and the pages answer 503 as before, never 500.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import redis
from flask import Blueprint, Flask, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from flask_limiter import Limiter, RequestLimit
from redis.cluster import RedisCluster

from bot.certificates.model import Certificate
from bot.certificates.page import verify_page
from bot.certificates.pdf import render_pdf
from bot.model.client_address import counted_client
from bot.storage import certificate_store
from bot.storage.keys import RATE_LIMIT_PREFIX

log = logging.getLogger("bottega.certificates")

DEFAULT_COURSE_TITLE = "Bottega"
PDF_FILENAME = "attestato-bottega.pdf"
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)
# the pages show a learner's name: keep them out of search engines, caches and Referer headers
PRIVATE_HEADERS = {"X-Robots-Tag": "noindex, nofollow", "Referrer-Policy": "no-referrer",
                   "Cache-Control": "private, no-cache", "X-Content-Type-Options": "nosniff"}
# no script at all; the page's one small <style> block is its only inline content
PAGE_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
               "frame-ancestors 'none'")
# Per client. /verify: at 100 guesses a day, harvesting one of 100,000 old 40-bit codes takes a client
# ~300 years. The PDF: 60 a minute, no daily cap, as Meta's fetchers share addresses across learners.
VERIFY_LIMITS = "10 per minute;100 per day"
PDF_LIMITS = "60 per minute"


def course_title(lang: str) -> str:
    """The live course's title in ``lang`` (``course.title`` may be translated), else "Bottega"."""
    try:
        title = current_app.extensions["bottega"]["registry"].engine.course.title
    except (KeyError, AttributeError, TypeError):
        return DEFAULT_COURSE_TITLE
    text = title.get(lang) if hasattr(title, "get") else title
    return text if isinstance(text, str) and text.strip() else DEFAULT_COURSE_TITLE


def public_base_url() -> str:
    """Where people reach this app, printed before ``/verify/CODE``: PUBLIC_BASE_URL, else this request's host."""
    settings = current_app.extensions.get("bottega", {}).get("settings")
    return getattr(settings, "public_base_url", "") or request.host


def client_key() -> str:
    """Whom a rate limit counts: this request's client, an IPv6 client by its /64 (``counted_client``)."""
    return counted_client(request.remote_addr)


def rate_limiter(client: redis.Redis) -> Limiter:
    """A per-client limiter whose counters live in ``client``'s Redis, under ``bottega:ratelimit:``.

    It borrows ``client``'s connection pool rather than a URL: ``limits`` reads ``redis://`` and
    ``redis+unix://`` but not the ``unix://`` URL of dev mode's embedded Redis, and the pool already
    holds the right server, socket kind and timeouts for any REDIS_URL. Creating it connects nowhere.
    """
    # ``limits`` hands these to its Redis client; the stubs say str | int, the client takes a pool too
    options: dict[str, Any] = {"key_prefix": RATE_LIMIT_PREFIX}
    if isinstance(client, RedisCluster):  # a cluster client has no one pool: limits' cluster storage, same nodes
        nodes = ",".join(f"{node.host}:{node.port}" for node in client.nodes_manager.startup_nodes.values())
        uri = f"redis+cluster://{nodes}"
    else:
        options["connection_pool"] = client.connection_pool
        uri = "redis://"  # only selects limits' Redis storage; the connections come from the pool
    return Limiter(
        client_key,
        storage_uri=uri,
        storage_options=options,
        strategy="fixed-window",  # one counter per client and window, expiring with it
        on_breach=_too_many_requests,
        # Redis down: count in this process's memory until it answers again (re-checked after 1, 2, 4...
        # 32 s) rather than fail the request; the page itself then answers 503
        in_memory_fallback_enabled=True,
        swallow_errors=True,  # any other limiter failure lets the request through, logged, never a 500
    )


def blueprint(client: redis.Redis) -> Blueprint:
    """The certificate routes, reading records through ``client`` and counting requests in its Redis."""
    routes = Blueprint("certificates", __name__)
    limiter = rate_limiter(client)

    @routes.record_once
    def register(state: BlueprintSetupState) -> None:  # the limiter's hooks run for the app's requests
        assert isinstance(state.app, Flask)
        limiter.init_app(state.app)

    @routes.get("/certificates/<token>.pdf")
    @limiter.limit(PDF_LIMITS)
    def pdf(token: str) -> Response:
        try:
            cert = certificate_store.by_token(client, token)
        except REDIS_DOWN as error:
            return _unavailable(error)
        if cert is None:
            return Response("not found", 404, mimetype="text/plain", headers=PRIVATE_HEADERS)
        body = render_pdf(cert, course_title=course_title(cert.lang), base_url=public_base_url())
        headers = {**PRIVATE_HEADERS, "Content-Disposition": f'inline; filename="{PDF_FILENAME}"'}
        return Response(body, 200, mimetype="application/pdf", headers=headers)

    @routes.get("/verify/<code>")
    @limiter.limit(VERIFY_LIMITS)
    def verify(code: str) -> Response:
        lang = "en" if request.args.get("lang") == "en" else "it"
        try:
            found = certificate_store.lookup(client, code)
        except REDIS_DOWN as error:
            return _unavailable(error)
        cert = found if isinstance(found, Certificate) else None
        revoked = isinstance(found, int)
        page = verify_page(cert, lang=lang, course_title=course_title(cert.lang if cert else lang), revoked=revoked)
        headers = {**PRIVATE_HEADERS, "Content-Security-Policy": PAGE_POLICY}
        return Response(page, 200 if cert else 410 if revoked else 404, mimetype="text/html", headers=headers)

    return routes


def _too_many_requests(limit: RequestLimit) -> Response:
    """The 429 answer: one line in Italian, one in English, and Retry-After in whole seconds."""
    window_seconds = limit.limit.get_expiry()
    try:
        reset_at = limit.window[0]  # Unix time, seconds, when this client's window ends
        wait_seconds = min(window_seconds, max(1, math.ceil(reset_at - time.time())))
    except redis.RedisError:  # Redis went away since the count: a whole window is never too short
        wait_seconds = window_seconds
    body = (f"Troppe richieste: riprova tra {wait_seconds} secondi.\n"
            f"Too many requests: try again in {wait_seconds} seconds.\n")
    return Response(body, 429, mimetype="text/plain",
                    headers={**PRIVATE_HEADERS, "Retry-After": str(wait_seconds)})


def _unavailable(error: Exception) -> Response:
    log.error("certificate lookup failed (503): Redis unavailable: %s", type(error).__name__)
    return Response("temporarily unavailable", 503, mimetype="text/plain", headers={"Retry-After": "5"})
