"""The end-to-end benchmark's skeleton turn: the least a turn on Bottega's stack can cost, durable and answered.

Issue 13 §1 asks for as many learners answered per second as the inline send, which keeps nothing and sends
one message. This skeleton does only what every turn of Bottega's must, on the same stack (Flask under the
Procfile's gunicorn, Dramatiq on Redis, redis-py, urllib3), in the cheapest shape there is:

* web (``gunicorn -c config/gunicorn.py "bench.skeleton:create_app()"``): check the signature, parse with
  Bottega's channel parsers, enqueue one Dramatiq message per learner message - kept in Redis before the
  200 (acknowledge first) - and answer;
* worker (``dramatiq bench.skeleton``): per message, one read of the learner's record (HGETALL), one Lua
  write (the new state and the outbox item, atomically, as a commit must), then the read receipt and the
  reply through a urllib3 pool - two Graph calls, as Bottega makes for a new learner.

No engine, no flows, no dedup, no ordering, no pacing, no retries, no analytics: each would cost more. So
what this skeleton answers per second bounds what any Bottega could answer on these cores.
Environment (bench only): ``META_APP_SECRET``, ``SKELETON_REDIS_URL``, ``GRAPH_API_URL``, ``WHATSAPP_TOKEN``,
``WHATSAPP_PHONE_NUMBER_ID``.
"""

from __future__ import annotations

import json
import os
import threading

import dramatiq
import redis
import urllib3
from dramatiq.brokers.redis import RedisBroker
from flask import Flask, Response

from bench.baseline import app_with_health, signed_body
from bot.channels import parsing

QUEUE = "skeleton"
_COMMIT = """
redis.call('HSET', KEYS[1], 'rev', ARGV[1], 'step', ARGV[2], 'last', ARGV[3])
redis.call('RPUSH', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[2], 86400000)
return redis.call('LLEN', KEYS[2])
"""

dramatiq.set_broker(RedisBroker(url=os.environ["SKELETON_REDIS_URL"]))


class _Process:
    """What one worker process shares between its threads: the Redis pool, the script, the HTTP pool."""

    def __init__(self) -> None:
        self.client = redis.Redis.from_url(os.environ["SKELETON_REDIS_URL"])
        self.commit = self.client.register_script(_COMMIT)
        self.http = urllib3.PoolManager(maxsize=16)
        self.url = (f"{os.environ['GRAPH_API_URL'].rstrip('/')}/v25.0/"
                    f"{os.environ['WHATSAPP_PHONE_NUMBER_ID']}/messages")
        self.headers = {"Authorization": f"Bearer {os.environ['WHATSAPP_TOKEN']}",
                        "Content-Type": "application/json"}

    def post(self, body: dict) -> None:
        answer = self.http.request("POST", self.url, body=json.dumps(body).encode(), headers=self.headers,
                                   timeout=10)
        if answer.status != 200:
            raise RuntimeError(f"the Graph API answered {answer.status}")


_process: _Process | None = None
_lock = threading.Lock()


def _resources() -> _Process:
    global _process
    with _lock:
        if _process is None:
            _process = _Process()
        return _process


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def turn(user: str, message_id: str) -> None:
    own = _resources()
    key = f"skeleton:{user}"
    record = own.client.hgetall(key)  # the load
    rev = int(record.get(b"rev", 0))
    reply = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": f"+{user}", "type": "text",
             "text": {"body": "Ciao! Benvenuto."}}
    own.commit(keys=[key, f"{key}:outbox"], args=[rev + 1, "welcome", message_id, json.dumps(reply)])
    own.post({"messaging_product": "whatsapp", "status": "read", "message_id": message_id})
    own.post(reply)


def create_app() -> Flask:
    app = app_with_health(__name__)
    secret = os.environ["META_APP_SECRET"].encode()

    @app.post("/webhook")
    def receive() -> Response:
        raw = signed_body(secret)
        if raw is None:
            return Response("forbidden", 403)
        for event in parsing.parse(json.loads(raw)).events:
            turn.send(event.user_id, event.message_id)
        return Response("EVENT_RECEIVED", 200, mimetype="text/plain")

    return app
