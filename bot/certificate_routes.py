"""HTTP routes for certificates: the PDF behind an unguessable URL and the public verification page.

``GET /certificates/<token>.pdf`` -> the PDF, drawn on request from the stored record (no PDF bytes
are stored); this is the link handed to the Graph API as a WhatsApp document / Messenger file.
``GET /verify/<code>`` -> an HTML page: 200 "Attestato autentico", or 404 "Codice non trovato".
Both answer 404 for anything unknown, 503 when Redis is unreachable, and ask not to be indexed nor
leak their URL as a referrer. Register with ``app.register_blueprint(blueprint(client))``.
"""

from __future__ import annotations

import logging

import redis
from flask import Blueprint, Response, current_app, request

from bot import certificate_store
from bot.certificates import render_pdf, verify_page

log = logging.getLogger("bottega.certificates")

DEFAULT_COURSE_TITLE = "Bottega"
PDF_FILENAME = "attestato-bottega.pdf"
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)
# the pages show a learner's name: keep them out of search engines, caches and Referer headers
PRIVATE_HEADERS = {"X-Robots-Tag": "noindex, nofollow", "Referrer-Policy": "no-referrer",
                   "Cache-Control": "private, no-cache", "X-Content-Type-Options": "nosniff"}
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


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


def blueprint(client: redis.Redis) -> Blueprint:
    """The certificate routes, reading records through ``client``."""
    routes = Blueprint("certificates", __name__)

    @routes.get("/certificates/<token>.pdf")
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
    def verify(code: str) -> Response:
        lang = "en" if request.args.get("lang") == "en" else "it"
        try:
            cert = certificate_store.by_code(client, code)
        except REDIS_DOWN as error:
            return _unavailable(error)
        page = verify_page(cert, lang=lang, course_title=course_title(cert.lang if cert else lang))
        headers = {**PRIVATE_HEADERS, "Content-Security-Policy": PAGE_POLICY}
        return Response(page, 200 if cert else 404, mimetype="text/html", headers=headers)

    return routes


def _unavailable(error: Exception) -> Response:
    log.error("certificate lookup failed (503): Redis unavailable: %s", type(error).__name__)
    return Response("temporarily unavailable", 503, mimetype="text/plain", headers={"Retry-After": "5"})
