"""The webhook through Flask's test client: real signed bodies, real Redis, state and outbox checked."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from bot import channels
from bot.channels import parsing as inbound
from bot.channels.instagram.dev import text_payload as instagram_text_payload
from bot.channels.messenger.dev import text_payload as messenger_text_payload
from bot.channels.signature import sign
from bot.channels.whatsapp.dev import text_payload as whatsapp_text_payload
from bot.dev import embedded_redis
from bot.model.events import EventKind
from bot.storage.keys import LearnerPart, learner_key
from bot.tutor.progress import Progress
from webhooks import create_app

SECRET = "test-app-secret"
PHONE = "393331112222"
LID = f"wa:{PHONE}"
CAP_BYTES = 3 * 1024 * 1024  # Settings.max_body_bytes: Meta's webhook payload cap
HSTS = "max-age=31536000; includeSubDomains"


@pytest.fixture
def client(settings, redis_client, notified):
    app = create_app(settings, redis_client=redis_client, notify=notified)
    return app.test_client()


def post(client, payload: dict | bytes, *, secret: str = SECRET, signature: str | None = None):
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if signature is None:
        headers["X-Hub-Signature-256"] = sign(secret, raw)
    elif signature:
        headers["X-Hub-Signature-256"] = signature
    return client.post("/webhook", data=raw, headers=headers)


def post_chunked(client, raw: bytes, *, secret: str = SECRET):
    """POST ``raw`` as a WSGI server hands over a ``Transfer-Encoding: chunked`` body: no Content-Length,
    and ``wsgi.input_terminated`` set (gunicorn and werkzeug's server both do) because the server ends
    the stream itself."""
    environ = EnvironBuilder(path="/webhook", method="POST", data=raw, headers={
        "Content-Type": "application/json", "Transfer-Encoding": "chunked",
        "X-Hub-Signature-256": sign(secret, raw)}).get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    return client.open(Request(environ))


def sized(n_bytes: int, body: str = "ciao") -> bytes:
    """A well-formed WhatsApp text message padded with JSON whitespace to exactly ``n_bytes``."""
    raw = json.dumps(text(body)).encode()
    return raw + b" " * (n_bytes - len(raw))


def text(body: str, phone: str = PHONE) -> dict:
    return whatsapp_text_payload(body, phone, "100000000000001")


def progress(redis_client, lid: str = LID) -> Progress | None:
    return Progress.from_hash(redis_client.hgetall(learner_key(lid, LearnerPart.PROGRESS)))


def learner_keys(redis_client) -> list[bytes]:
    """Every key of every learner (the course release keys are not a learner's)."""
    return list(redis_client.scan_iter(match="bottega:{*}:*"))


def outbox(redis_client, lid: str = LID) -> list[dict]:
    return [json.loads(raw) for raw in redis_client.lrange(learner_key(lid, LearnerPart.OUTBOX), 0, -1)]


# -- handshake --------------------------------------------------------------------------------------
def test_handshake_echoes_the_challenge_with_the_right_token(client):
    answer = client.get("/webhook?hub.mode=subscribe&hub.verify_token=test-verify-token&hub.challenge=1158201444")
    assert answer.status_code == 200 and answer.get_data(as_text=True) == "1158201444"


def test_the_handshake_echo_is_never_sniffed_as_html_and_asks_for_https(client):
    answer = client.get("/webhook?hub.mode=subscribe&hub.verify_token=test-verify-token"
                        "&hub.challenge=%3Cscript%3Ealert(1)%3C/script%3E")
    assert answer.status_code == 200 and answer.mimetype == "text/plain"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"  # the echoed text is the caller's
    assert answer.headers["Strict-Transport-Security"] == HSTS


@pytest.mark.parametrize("query", [
    "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
    "hub.mode=unsubscribe&hub.verify_token=test-verify-token&hub.challenge=1",
    "hub.challenge=1",
])
def test_handshake_refuses_anything_else(client, query):
    assert client.get(f"/webhook?{query}").status_code == 403


# -- signatures and bad bodies ------------------------------------------------------------------------
def receipt(redis_client, lid: str = LID) -> dict | None:
    raw = redis_client.get(learner_key(lid, LearnerPart.RECEIPT))
    return json.loads(raw) if raw else None


def test_a_signed_message_advances_state_and_queues_replies_and_its_read_receipt(client, redis_client, notified):
    message = text("ciao")
    assert post(client, message).status_code == 200
    stored = progress(redis_client)
    assert stored is not None and stored.rev == 1 and stored.phone == PHONE
    items = outbox(redis_client)
    assert items[0]["body"]["to"] == f"+{PHONE}"
    assert all(item["sender_id"] == "100000000000001" for item in items)
    wamid = message["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert receipt(redis_client)["body"] == {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
    assert notified == [LID]


@pytest.mark.parametrize("signature", ["", "sha256=" + "0" * 64, "sha1=abc", "sha256=nothex"])
def test_forged_or_missing_signature_is_403_and_nothing_is_processed(client, redis_client, signature):
    assert post(client, text("ciao"), signature=signature).status_code == 403
    assert learner_keys(redis_client) == []


def test_a_body_signed_with_another_secret_is_403(client, redis_client):
    assert post(client, text("ciao"), secret="someone-else").status_code == 403
    assert learner_keys(redis_client) == []


def test_each_product_is_checked_against_its_own_app_secret(redis_client, settings, notified):
    from dataclasses import replace

    split = replace(settings, whatsapp_app_secret="wa-secret", messenger_app_secret="ms-secret")
    client = create_app(split, redis_client=redis_client, notify=notified).test_client()
    assert post(client, text("ciao"), secret="ms-secret").status_code == 403
    assert post(client, text("ciao"), secret="wa-secret").status_code == 200
    page = messenger_text_payload("ciao", "7001", "200000000000002")
    assert post(client, page, secret="wa-secret").status_code == 403
    assert post(client, page, secret="ms-secret").status_code == 200


def test_instagram_is_checked_against_its_own_app_secret_and_defaults_to_the_meta_one(redis_client, settings,
                                                                                    notified):
    from dataclasses import replace

    direct = instagram_text_payload("ciao", "5100000000000009", "17841400000000001")
    assert post(create_app(settings, redis_client=redis_client, notify=notified).test_client(), direct).status_code \
        == 200  # META_APP_SECRET signs it: no Instagram variable needed
    split = replace(settings, instagram_app_secret="ig-secret", messenger_app_secret="ms-secret")
    client = create_app(split, redis_client=redis_client, notify=notified).test_client()
    assert post(client, direct, secret="ms-secret").status_code == 403
    assert post(client, instagram_text_payload("ciao", "5100000000000009", "17841400000000001"),
                secret="ig-secret").status_code == 200
    assert progress(redis_client, "ig:5100000000000009").rev == 2
    assert notified == ["ig:5100000000000009"] * 2


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b"[1, 2]", b"\"text\""])
def test_malformed_bodies_are_400(client, redis_client, raw):
    assert post(client, raw).status_code == 400
    assert learner_keys(redis_client) == []


def test_bodies_over_metas_3mb_cap_are_413(client, redis_client):
    payload = text("x" * (3 * 1024 * 1024 + 10))
    assert post(client, payload).status_code == 413
    assert learner_keys(redis_client) == []


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_signed_json_nested_thousands_deep_is_400_like_any_malformed_body(client, redis_client, depth):
    # json.loads raises RecursionError on these; a 500 would make Meta redeliver them for days
    for raw in (b'{"a":' * depth + b"1" + b"}" * depth, b"[" * depth + b"]" * depth):
        answer = post(client, raw)
        assert answer.status_code == 400, answer.status_code
    assert learner_keys(redis_client) == []


@pytest.mark.parametrize("size_bytes", [CAP_BYTES + 1, CAP_BYTES + 100 * 1024])
def test_chunked_bodies_over_the_cap_are_413_not_a_signature_failure(client, redis_client, caplog, size_bytes):
    # werkzeug used to stop reading a chunked body at the cap without a word: the signature then failed (403)
    answer = post_chunked(client, sized(size_bytes))
    assert answer.status_code == 413
    assert "invalid signature" not in caplog.text
    assert learner_keys(redis_client) == []


def test_a_body_of_exactly_the_cap_is_read_whole_whatever_its_framing(client, redis_client):
    assert post(client, sized(CAP_BYTES, "ciao")).status_code == 200
    assert post_chunked(client, sized(CAP_BYTES, "menu")).status_code == 200
    stored = progress(redis_client)
    assert stored is not None and stored.rev == 2  # both were verified, parsed and handled


def test_a_small_chunked_body_is_handled_like_any_other(client, redis_client, notified):
    assert post_chunked(client, json.dumps(text("ciao")).encode()).status_code == 200
    assert progress(redis_client) is not None and notified == [LID]


@pytest.mark.parametrize("payload", [
    {"object": "permissions", "entry": []},
    {"object": "instagram", "entry": [{"id": "17841400000000001", "changes": [{"field": "comments", "value": {}}]}]},
    {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "account_update", "value": {}}]}]},
    {"object": "page", "entry": [{"id": "1", "messaging": [{"unknown": True}]}]},
    {"hello": "world"},
])
def test_signed_bodies_we_do_not_understand_are_200_and_skipped(client, redis_client, payload):
    assert post(client, payload).status_code == 200
    assert learner_keys(redis_client) == []


# -- exactly once ---------------------------------------------------------------------------------------
def test_a_redelivered_message_changes_nothing_and_sends_nothing(client, redis_client, notified):
    payload = text("ciao")
    assert post(client, payload).status_code == 200
    before_progress, before_outbox = progress(redis_client), outbox(redis_client)
    redis_client.delete(learner_key(LID, LearnerPart.OUTBOX))  # the worker sent them meanwhile
    for _ in range(3):
        assert post(client, payload).status_code == 200
    assert progress(redis_client) == before_progress
    assert outbox(redis_client) == []
    # the welcome waited to be sent; its last bubble carries the language question's buttons (fewer, fuller messages)
    assert before_outbox and before_outbox[-1]["body"]["type"] == "interactive" and notified == [LID]


def test_a_redelivery_after_a_crash_before_notify_notifies_again(client, redis_client, notified):
    payload = text("ciao")
    post(client, payload)
    notified.clear()  # as if the process died after the commit and before the enqueue
    assert post(client, payload).status_code == 200
    assert notified == [LID]  # replies still in the outbox: the sender is woken again


def test_twenty_concurrent_messages_of_one_learner_lose_nothing_and_do_not_interleave(client, redis_client):
    post(client, text("ciao"))
    welcome = outbox(redis_client)
    payloads = [text("aiuto") for _ in range(20)]  # each turn answers: help text + the question again
    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(lambda p: post(client, p).status_code, payloads))
    assert codes == [200] * 20
    stored = progress(redis_client)
    assert stored is not None and stored.rev == 21  # every message committed exactly once
    items = outbox(redis_client)
    # the welcome stays; of the 20 help answers (ephemeral) only the last turn's is still waiting, whole
    assert [item["id"] for item in items[:len(welcome)]] == [item["id"] for item in welcome]
    latest = items[len(welcome):]
    # the help text and the question again, in one bubble that carries the question's buttons
    assert [item.get("ephemeral") for item in latest] == [True]
    assert "aiuto" in json.dumps(latest[0]["body"]) and latest[0]["body"]["type"] == "interactive"
    wamids = {p["entry"][0]["changes"][0]["value"]["messages"][0]["id"] for p in payloads}
    assert receipt(redis_client)["body"]["message_id"] in wamids  # one receipt: the latest message only


def status_payload(phone: str) -> dict:
    payload = text("ciao", phone)
    value = payload["entry"][0]["changes"][0]["value"]
    del value["messages"], value["contacts"]
    value["statuses"] = [{"id": "wamid.X", "status": "failed", "timestamp": "1700000000",
                          "recipient_id": phone, "errors": [{"code": 131047, "title": "Re-engagement"}]}]
    return payload


def test_statuses_are_recorded_for_a_known_learner_and_never_answered(client, redis_client, notified):
    post(client, text("ciao"))
    redis_client.delete(learner_key(LID, LearnerPart.OUTBOX))
    notified.clear()
    assert post(client, status_payload(PHONE)).status_code == 200
    delivery = redis_client.hgetall(learner_key(LID, LearnerPart.DELIVERY))
    assert delivery[b"last_status"] == b"failed" and delivery[b"last_status_error_code"] == b"131047"
    assert outbox(redis_client) == [] and notified == []


def test_a_status_for_someone_we_do_not_know_writes_no_key(client, redis_client, notified):
    assert post(client, status_payload("393339990000")).status_code == 200
    assert learner_keys(redis_client) == [] and notified == []


# -- Redis down -------------------------------------------------------------------------------------------
def test_redis_down_is_503_and_the_redelivery_is_handled_once_redis_is_back(settings, tmp_path: Path, notified):
    server = embedded_redis.start(tmp_path / "restartable", port=0)
    client = redis.Redis.from_url(server.url, socket_timeout=2, socket_connect_timeout=1)
    app = create_app(settings, redis_client=client, notify=notified).test_client()
    try:
        assert post(app, text("ciao")).status_code == 200
        server.stop()
        payload = text("1")
        assert post(app, payload).status_code == 503
        server = embedded_redis.start(tmp_path / "restartable", port=0)  # same data directory
        assert progress(client) is not None and progress(client).rev == 1  # survived the restart
        assert post(app, payload).status_code == 200
        assert post(app, payload).status_code == 200  # and a second redelivery is a duplicate
        assert progress(client).rev == 2
    finally:
        client.close()
        server.stop()


# -- every recorded inbound kind, signed, through Flask --------------------------------------------------
FIXTURES = sorted(path for parts in channels.every() for path in parts.dev.fixtures.glob("*.json"))


def restamped(raw: bytes) -> bytes:
    """A recorded body with every time set to now (recorded times are older than the dedup window)."""
    now = time.time()

    def walk(node: object) -> object:
        if isinstance(node, dict):
            out = {key: walk(value) for key, value in node.items()}
            if isinstance(node.get("timestamp"), str):  # WhatsApp: seconds, as a string
                out["timestamp"] = str(int(now))
            elif isinstance(node.get("timestamp"), int):  # Messenger: milliseconds
                out["timestamp"] = int(now * 1000)
            if isinstance(node.get("time"), int):
                out["time"] = int(now * 1000)
            return out
        return [walk(item) for item in node] if isinstance(node, list) else node

    return json.dumps(walk(json.loads(raw))).encode()


@pytest.mark.parametrize("path", FIXTURES, ids=[f"{p.parent.parent.name}/{p.stem}" for p in FIXTURES])
def test_every_recorded_inbound_kind_is_accepted_and_has_its_effect(client, redis_client, notified, path):
    raw = restamped(path.read_bytes())
    events = inbound.parse(json.loads(raw)).events
    assert post(client, raw).status_code == 200
    for event in events:
        lid = event.learner_id
        if event.kind.from_learner:
            assert progress(redis_client, lid) is not None, event
            assert lid in notified
        elif event.kind is EventKind.STATUS:  # kept for learners we know, nothing for anyone else
            known = progress(redis_client, lid) is not None
            assert (redis_client.hget(learner_key(lid, LearnerPart.DELIVERY), "last_status") is not None) is known
        else:
            assert progress(redis_client, lid) is None or any(
                e.learner_id == lid and e.kind not in (EventKind.IGNORE, EventKind.STATUS) for e in events)


def test_an_unexpected_error_in_one_event_is_logged_and_never_answers_5xx(settings, redis_client, caplog):
    def broken_notify(learner_id: str) -> None:
        raise RuntimeError(f"boom for {learner_id}")  # a bug after the commit, with PII in its message

    client = create_app(settings, redis_client=redis_client, notify=broken_notify).test_client()
    payload = text("ciao")
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"].append({**value["messages"][0], "id": "wamid.second", "text": {"body": "menu"}})
    assert post(client, payload).status_code == 200
    stored = progress(redis_client)
    assert stored is not None and stored.rev == 2  # both events were committed despite the failures
    assert "event skipped after RuntimeError" in caplog.text
    assert PHONE not in caplog.text  # the exception's message (with the phone) is not logged


def test_with_a_release_live_a_broken_flows_folder_is_logged_and_the_live_course_keeps_serving(
        settings, redis_client, notified, tmp_path, caplog):
    import shutil
    from dataclasses import replace

    from config.settings import PROJECT_ROOT

    create_app(settings, redis_client=redis_client, notify=notified)  # publishes the good folder: release 1
    broken = tmp_path / "flows"
    shutil.copytree(PROJECT_ROOT / "flows", broken)
    (broken / "m1_contatto.yaml").write_text((broken / "m1_contatto.yaml").read_text().replace(
        "next: lesson_2", "next: lesson_nowhere", 1))
    client = create_app(replace(settings, flows_dir=broken), redis_client=redis_client, notify=notified).test_client()
    assert "m1_contatto.yaml" in caplog.text and "lesson_nowhere" in caplog.text
    assert post(client, text("ciao")).status_code == 200
    assert "Sono Bottega" in json.dumps(outbox(redis_client), ensure_ascii=False)
