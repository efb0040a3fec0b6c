"""What the benchmark's baseline apps share (bare, durable ack, inline send): the Flask app with the
``/healthz`` the harness waits for, and Meta's signature check done the way a minimal bot does it."""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask, Response, request


def app_with_health(name: str) -> Flask:
    app = Flask(name)

    @app.get("/healthz")
    def health() -> Response:
        return Response("ok", 200, mimetype="text/plain")

    return app


def signed_body(secret: bytes) -> bytes | None:
    """The request's body if ``X-Hub-Signature-256`` signs it with ``secret``, else None."""
    raw = request.get_data(cache=False)
    expected = "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()
    return raw if hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")) else None
