"""The end-to-end benchmark's durable-acknowledgement floor: keep the event, then answer 200.

``gunicorn -c config/gunicorn.py "bench.durable_ack_app:create_app()"`` - what any webhook must do before
it may tell Meta 200 without risking the message (docs/intake.md): check the signature, parse the body
with Bottega's own channel parsers, and keep it in Redis (one round trip: RPUSH onto a list, capped). No
turn, no queue, no reply. Its acks/s next to the bare endpoint's is the ceiling an acknowledge-first
intake could reach. Reads ``META_APP_SECRET`` and ``DURABLE_ACK_REDIS_URL`` from the environment (bench only).
"""

from __future__ import annotations

import json
import os

import redis
from flask import Flask, Response

from bench.baseline import app_with_health, signed_body
from bot.channels import parsing

KEPT = 100_000  # events kept on the list (the bench's phases post fewer)


def create_app() -> Flask:
    app = app_with_health(__name__)
    secret = os.environ["META_APP_SECRET"].encode()
    client = redis.Redis.from_url(os.environ["DURABLE_ACK_REDIS_URL"])

    @app.post("/webhook")
    def receive() -> Response:
        raw = signed_body(secret)
        if raw is None:
            return Response("forbidden", 403)
        parsed = parsing.parse(json.loads(raw))
        if parsed.events:
            pipe = client.pipeline(transaction=False)
            pipe.rpush("bench:intake", raw)
            pipe.ltrim("bench:intake", -KEPT, -1)
            pipe.execute()
        return Response("EVENT_RECEIVED", 200, mimetype="text/plain")

    return app
