"""The public edge of the web app (issue 7), each finding with its regression test.

* ``/verify/CODE`` and ``/certificates/TOKEN.pdf`` are rate-limited per client on the app's own Redis
  (429 with a short plain-text body and Retry-After), keyed on the address werkzeug's ProxyFix trusts;
* every answer carries HSTS and ``X-Content-Type-Options: nosniff``;
* a webhook body over the cap is 413 whatever its framing, through the real gunicorn process too.

Real Redis and real HTTP: Flask's test client, and the Procfile's web process (``procfile`` tests).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from bot.certificates.model import Certificate, new_code, new_token
from bot.channels.signature import sign
from bot.channels.whatsapp.dev import text_payload as whatsapp_text_payload
from bot.dev import embedded_redis
from bot.model.client_address import counted_client
from bot.model.errors import ConfigError
from bot.storage import certificate_store
from config.settings import Settings
from tests.service import PHONE_NUMBER_ID, Service, free_port
from tests.service import SECRET as SERVICE_SECRET
from webhooks import create_app

SECRET = "test-app-secret"  # the settings fixture's META_APP_SECRET
HSTS = "max-age=31536000; includeSubDomains"
VERIFY_PER_MINUTE = 10  # the limits README promises
PDF_PER_MINUTE = 60
CAP_BYTES = 3 * 1024 * 1024  # Settings.max_body_bytes
VISITOR = "192.0.2.10"  # documentation addresses (RFC 5737 / RFC 3849): only ever strings in a WSGI environ
PROXY = "192.0.2.1"


def app_client(settings: Settings, redis_client: redis.Redis, **changes):
    app = create_app(replace(settings, **changes), redis_client=redis_client, notify=lambda learner_id: None)
    return app.test_client()


@pytest.fixture
def client(settings, redis_client):
    return app_client(settings, redis_client)


def saved(redis_client: redis.Redis) -> Certificate:
    cert = Certificate(code=new_code(), token=new_token(), learner_id="wa:393331112222", name="Nicolò Bianchi",
                       business_name="Panificio Città Alta", issued_ms=1_795_777_200_000, score_percent=85)
    certificate_store.save(redis_client, cert)
    return cert


def get(client, path: str, *, address: str = VISITOR, forwarded: str | None = None):
    """GET ``path`` from the socket peer ``address``, optionally with an X-Forwarded-For header."""
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.get(path, environ_base={"REMOTE_ADDR": address}, headers=headers)


def wrong_codes(count: int) -> list[str]:
    return [f"/verify/{new_code()}" for _ in range(count)]


def whatsapp_body(text: str = "ciao") -> bytes:
    return json.dumps(whatsapp_text_payload(text, "393331112222", PHONE_NUMBER_ID)).encode()


def padded(size_bytes: int) -> bytes:
    """A well-formed webhook body padded with JSON whitespace to exactly ``size_bytes``."""
    raw = whatsapp_body()
    return raw + b" " * (size_bytes - len(raw))


# -- rate limits on the certificate pages -----------------------------------------------------------
def test_verify_is_limited_per_client_with_a_short_plain_429_and_retry_after(client, redis_client):
    cert = saved(redis_client)
    assert [get(client, path).status_code for path in wrong_codes(VERIFY_PER_MINUTE - 1)] == [404] * 9
    assert get(client, f"/verify/{cert.code}").status_code == 200  # the 10th lookup
    refused = get(client, f"/verify/{cert.code}")  # a genuine code too: the budget is the client's
    body = refused.get_data(as_text=True)
    assert refused.status_code == 429
    assert refused.mimetype == "text/plain" and len(body) < 200 and "Nicolò" not in body
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert get(client, f"/verify/{cert.code}", address="198.51.100.20").status_code == 200  # someone else


def test_pdf_downloads_are_limited_per_client_on_their_own_budget(client, redis_client):
    cert = saved(redis_client)
    unknown = [get(client, f"/certificates/{new_token()}.pdf").status_code for _ in range(PDF_PER_MINUTE)]
    assert unknown == [404] * PDF_PER_MINUTE
    refused = get(client, f"/certificates/{cert.token}.pdf")
    assert refused.status_code == 429 and refused.mimetype == "text/plain"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert get(client, f"/certificates/{cert.token}.pdf", address="198.51.100.20").status_code == 200
    assert get(client, f"/verify/{cert.code}").status_code == 200  # the verify page counts apart


def test_the_webhook_and_the_health_check_are_not_limited(client, redis_client):
    raw = b"{}"  # signed and well-formed, nothing to do: 200
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(SECRET, raw)}
    for _ in range(3 * VERIFY_PER_MINUTE):
        assert client.post("/webhook", data=raw, headers=headers).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_counters_live_in_the_apps_redis_under_one_prefix_and_expire(client, redis_client):
    get(client, f"/verify/{new_code()}")
    get(client, f"/certificates/{new_token()}.pdf")
    keys = [key.decode() for key in redis_client.scan_iter()]
    counters = [key for key in keys if key.startswith("bottega:ratelimit:")]
    assert len(counters) >= 2
    assert all(0 < redis_client.ttl(key) <= 24 * 3600 for key in counters)
    assert not [key for key in keys if key.startswith("LIMITS")]  # the library's default prefix


def test_every_web_process_on_the_same_redis_shares_one_budget(settings, redis_client):
    first, second = app_client(settings, redis_client), app_client(settings, redis_client)  # two gunicorn workers
    answers = [get(first if n % 2 else second, path).status_code
               for n, path in enumerate(wrong_codes(VERIFY_PER_MINUTE))]
    assert answers == [404] * VERIFY_PER_MINUTE
    assert get(first, f"/verify/{new_code()}").status_code == 429
    assert get(second, f"/verify/{new_code()}").status_code == 429


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_the_limiter_works_on_redis_and_unix_socket_urls(settings, tmp_path: Path, kind):
    server = embedded_redis.start(tmp_path / kind, port=free_port() if kind == "tcp" else 0, persist=False)
    assert server.url.startswith("redis://" if kind == "tcp" else "unix://")  # unix:// is dev mode's
    app = create_app(replace(settings, redis_url=server.url), notify=lambda learner_id: None)  # its own client
    direct = redis.Redis.from_url(server.url)
    try:
        client = app.test_client()
        answers = [get(client, path).status_code for path in wrong_codes(VERIFY_PER_MINUTE + 1)]
        assert answers == [404] * VERIFY_PER_MINUTE + [429]
        assert direct.keys("bottega:ratelimit:*")
    finally:
        direct.close()
        app.extensions["bottega"]["redis"].close()
        server.stop()


def test_with_redis_down_the_pages_answer_503_not_500_and_recover(settings, tmp_path: Path):
    server = embedded_redis.start(tmp_path / "restartable", port=0)
    store = redis.Redis.from_url(server.url, socket_timeout=2, socket_connect_timeout=1)
    client = app_client(settings, store)
    try:
        cert = saved(store)
        assert get(client, f"/verify/{cert.code}").status_code == 200
        server.stop()
        for path in (f"/verify/{cert.code}", f"/certificates/{cert.token}.pdf", f"/verify/{cert.code}"):
            answer = get(client, path)
            assert answer.status_code == 503 and answer.headers["Retry-After"] == "5", path
        server = embedded_redis.start(tmp_path / "restartable", port=0)  # same data directory
        assert get(client, f"/verify/{cert.code}").status_code == 200
    finally:
        store.close()
        server.stop()


def test_a_refusal_logs_no_client_address(client, redis_client, caplog):
    caplog.set_level(logging.DEBUG)
    for path in wrong_codes(VERIFY_PER_MINUTE + 1):
        answer = get(client, path)
    assert answer.status_code == 429
    assert VISITOR not in caplog.text


# -- who the client is: the socket peer, or what trusted proxies forwarded -------------------------
def test_trusted_proxies_is_read_from_the_environment_and_checked(redis_url):
    base = {"BOTTEGA_ENV": "dev", "REDIS_URL": redis_url}
    assert Settings.from_env(base).trusted_proxies == 0
    assert Settings.from_env({**base, "TRUSTED_PROXIES": "2"}).trusted_proxies == 2
    for wrong in ("-1", "two"):
        with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
            Settings.from_env({**base, "TRUSTED_PROXIES": wrong})


def test_without_trusted_proxies_a_forged_x_forwarded_for_buys_nothing(client, redis_client):
    answers = [get(client, path, forwarded=f"203.0.113.{n}").status_code
               for n, path in enumerate(wrong_codes(VERIFY_PER_MINUTE + 1))]
    assert answers == [404] * VERIFY_PER_MINUTE + [429]  # all of them are VISITOR


def test_behind_one_trusted_proxy_each_forwarded_visitor_has_a_budget(settings, redis_client):
    client = app_client(settings, redis_client, trusted_proxies=1)
    answers = [get(client, path, address=PROXY, forwarded="203.0.113.7").status_code
               for path in wrong_codes(VERIFY_PER_MINUTE + 1)]
    assert answers == [404] * VERIFY_PER_MINUTE + [429]
    assert get(client, f"/verify/{new_code()}", address=PROXY, forwarded="203.0.113.8").status_code == 404
    # a visitor who writes their own X-Forwarded-For is still the address the proxy appended
    forged = get(client, f"/verify/{new_code()}", address=PROXY, forwarded="198.51.100.99, 203.0.113.7")
    assert forged.status_code == 429


def test_an_ipv6_visitor_is_one_client_across_its_whole_64(client, redis_client):
    # one subscriber gets a /64 and a host may take any address in it: counting addresses would let it
    # rotate through 2**64 budgets
    answers = [get(client, path, address=f"2001:db8:1:2::{n + 1:x}").status_code
               for n, path in enumerate(wrong_codes(VERIFY_PER_MINUTE + 1))]
    assert answers == [404] * VERIFY_PER_MINUTE + [429]
    assert get(client, f"/verify/{new_code()}", address="2001:db8:1:3::1").status_code == 404


@pytest.mark.parametrize(("remote_addr", "counted"), [
    ("192.0.2.10", "192.0.2.10"),
    ("2001:db8:1:2::7", "2001:db8:1:2::/64"),  # the same unit for the console's sign-in failures
    ("::ffff:192.0.2.10", "192.0.2.10"),  # a dual-stack socket's IPv4 peer is that IPv4 client
    ("not-an-address", "not-an-address"),
    ("", "unknown"),  # never empty: Flask-Limiter skips a limit with an empty key
    (None, "unknown"),
])
def test_a_client_is_counted_by_its_address_and_an_ipv6_one_by_its_64(remote_addr, counted):
    assert counted_client(remote_addr) == counted


# -- security headers on every answer ----------------------------------------------------------------
def test_every_answer_carries_hsts_and_nosniff(client, redis_client):
    cert = saved(redis_client)

    def signed(raw: bytes):
        return client.post("/webhook", data=raw, headers={"Content-Type": "application/json",
                                                          "X-Hub-Signature-256": sign(SECRET, raw)})

    answers = {
        "handshake 200": client.get("/webhook?hub.mode=subscribe&hub.verify_token=test-verify-token"
                                    "&hub.challenge=1"),
        "handshake 403": client.get("/webhook?hub.mode=subscribe"),
        "webhook 200": signed(b"{}"),
        "webhook 403": client.post("/webhook", data=b"{}"),
        "webhook 400": signed(b"{not json"),
        "webhook 413": signed(b" " * (CAP_BYTES + 1)),
        "health 200": client.get("/healthz"),
        "unknown path 404": client.get("/nowhere"),
        "wrong method 405": client.put("/healthz"),
        "verify 200": get(client, f"/verify/{cert.code}"),
        "pdf 200": get(client, f"/certificates/{cert.token}.pdf"),
        "pdf 404": get(client, f"/certificates/{new_token()}.pdf"),
    }
    for path in wrong_codes(VERIFY_PER_MINUTE):
        answers["verify 429"] = get(client, path)
    for name, answer in answers.items():
        assert str(answer.status_code) in name, (name, answer.status_code)
        assert answer.headers.getlist("Strict-Transport-Security") == [HSTS], name
        assert answer.headers.getlist("X-Content-Type-Options") == ["nosniff"], name


def test_the_certificate_pages_keep_their_own_stricter_headers(client, redis_client):
    cert = saved(redis_client)
    for answer in (get(client, f"/verify/{cert.code}"), get(client, f"/certificates/{cert.token}.pdf")):
        assert answer.headers["X-Robots-Tag"] == "noindex, nofollow"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        assert answer.headers["Cache-Control"] == "private, no-cache"
    page = get(client, f"/verify/{cert.code}")
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")


# -- the real gunicorn process -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The Procfile's web process on a redis:// URL, as deployed behind one reverse proxy."""
    service = Service(tmp_path_factory.mktemp("web-edge"))
    service.env["TRUSTED_PROXIES"] = "1"
    try:
        service.start("web")
        yield service
    finally:
        service.close()


def in_chunks(raw: bytes, chunk_bytes: int = 64 * 1024) -> Iterator[bytes]:
    """A generator body: requests sends it with Transfer-Encoding: chunked and no Content-Length."""
    for start in range(0, len(raw), chunk_bytes):
        yield raw[start:start + chunk_bytes]


def post_to(service: Service, body, raw: bytes):
    return service.session.post(f"{service.url}/webhook", data=body, timeout=30, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": sign(SERVICE_SECRET, raw)})


@pytest.mark.procfile
def test_gunicorn_answers_413_to_a_chunked_body_over_the_cap(web):
    raw = padded(CAP_BYTES + 100 * 1024)  # the adversarial run's 3.1 MB
    answer = post_to(web, in_chunks(raw), raw)
    assert answer.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in answer.request.headers
    assert answer.status_code == 413


@pytest.mark.procfile
def test_gunicorn_reads_a_chunked_body_within_the_cap_whole(web):
    for raw in (whatsapp_body(), padded(CAP_BYTES)):
        answer = post_to(web, in_chunks(raw), raw)
        assert answer.request.headers.get("Transfer-Encoding") == "chunked"
        assert answer.status_code == 200, answer.text


@pytest.mark.procfile
def test_gunicorn_answers_400_to_signed_json_nested_too_deep(web):
    raw = b'{"a":' * 5000 + b"1" + b"}" * 5000
    assert post_to(web, raw, raw).status_code == 400


@pytest.mark.procfile
def test_gunicorn_sends_hsts_and_nosniff_with_the_handshake_echo(web):
    answer = web.session.get(f"{web.url}/webhook", timeout=10, params={
        "hub.mode": "subscribe", "hub.verify_token": "e2e-verify", "hub.challenge": "<b>1</b>"})
    assert answer.status_code == 200 and answer.text == "<b>1</b>"
    assert answer.headers["Strict-Transport-Security"] == HSTS
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.procfile
def test_gunicorn_workers_share_one_budget_per_forwarded_visitor(web):
    def lookup(visitor: str):
        return web.session.get(f"{web.url}/verify/{new_code()}", timeout=10,
                               headers={"X-Forwarded-For": visitor})

    answers = [lookup("203.0.113.50").status_code for _ in range(VERIFY_PER_MINUTE)]
    assert answers == [404] * VERIFY_PER_MINUTE
    refused = lookup("203.0.113.50")
    assert refused.status_code == 429 and refused.headers["Content-Type"].startswith("text/plain")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert lookup("203.0.113.51").status_code == 404
