"""The benchmark's baseline: a bare Flask endpoint served by the same gunicorn config as Bottega.

``gunicorn -c config/gunicorn.py "bench.bare_app:create_app()"`` - one POST route that reads the
body and answers 200, nothing else (no signature, no JSON, no Redis). Whatever the full path costs
above this is Bottega's own work.
"""

from __future__ import annotations

from flask import Flask, Response, request

from bench.baseline import app_with_health


def create_app() -> Flask:
    app = app_with_health(__name__)

    @app.post("/webhook")
    def receive() -> Response:
        request.get_data(cache=False)
        return Response("EVENT_RECEIVED", 200, mimetype="text/plain")

    return app
