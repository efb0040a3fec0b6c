"""The end-to-end benchmark's inline-send baseline: answer each message inside the webhook request.

``gunicorn -c config/gunicorn.py "bench.inline_app:create_app()"`` - what a minimal bot does (pywa's
default shape): check the signature, parse the body, POST one text reply to the Graph API with a
keep-alive ``requests.Session`` per process, then answer 200. No Redis, no queue, no retry, no
ordering, no read receipt: what it does not do is what Bottega's durable path costs on top.
Reads ``META_APP_SECRET``, ``GRAPH_API_URL``, ``WHATSAPP_TOKEN`` from the environment (bench only).
"""

from __future__ import annotations

import json
import os

import requests
from flask import Flask, Response

from bench.baseline import app_with_health, signed_body


def create_app() -> Flask:
    app = app_with_health(__name__)
    secret = os.environ["META_APP_SECRET"].encode()
    base = os.environ["GRAPH_API_URL"].rstrip("/") + "/v25.0"
    headers = {"Authorization": f"Bearer {os.environ['WHATSAPP_TOKEN']}"}
    session = requests.Session()  # gunicorn's gevent worker patched the sockets: greenlets share its pool
    session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64))

    @app.post("/webhook")
    def receive() -> Response:
        raw = signed_body(secret)
        if raw is None:
            return Response("forbidden", 403)
        value = json.loads(raw)["entry"][0]["changes"][0]["value"]
        for message in value.get("messages", ()):
            reply = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": f"+{message['from']}",
                     "type": "text", "text": {"body": "Ciao! Benvenuto."}}
            answer = session.post(f"{base}/{value['metadata']['phone_number_id']}/messages", json=reply,
                                  headers=headers, timeout=10)
            answer.raise_for_status()
        return Response("EVENT_RECEIVED", 200, mimetype="text/plain")

    return app
