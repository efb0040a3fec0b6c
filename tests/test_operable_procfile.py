"""Operable: /metrics, /healthz, /readyz and JSON logs with a request id, through the real Procfile processes.

The metrics a conversation moves are counted in two kinds of processes (gunicorn's web processes, Dramatiq's
worker processes) and read from one web process's /metrics: prometheus_client's multiprocess files of the box.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from bot.channels.whatsapp import WHATSAPP
from tests.service import Phone, Service

pytestmark = pytest.mark.procfile


@pytest.fixture
def service(tmp_path) -> Iterator[Service]:
    svc = Service(tmp_path, extra_env={"LOG_LEVEL": "DEBUG"})
    try:
        svc.start()
        yield svc
    finally:
        svc.close()


def scrape(service: Service) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    answer = requests.get(f"{service.url}/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: dict, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(value for (sample, sample_labels), value in samples.items()
               if sample == name and set(labels.items()) <= set(sample_labels))


def wait_until(condition, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def json_lines(path: Path) -> list[dict]:
    lines = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if raw.startswith("{"):  # ours; gunicorn's and Dramatiq's masters write their own few lines
            lines.append(json.loads(raw))
    return lines


def test_a_conversation_moves_the_counters_of_web_and_worker_on_one_metrics_page(service):
    before = scrape(service)
    assert total(before, "bottega_webhooks_total") == 0
    phone = Phone(service, WHATSAPP, "393330000301")
    phone.send("ciao")
    phone.wait_turn()
    phone.tap("Italiano")
    phone.wait_turn()
    assert service.post(b'{"object":"whatsapp_business_account","entry":[]}', secret="forged").status_code == 403
    graph_calls = len(phone.calls())

    def moved():
        samples = scrape(service)
        return samples if total(samples, "bottega_sends_total", result="sent") >= graph_calls else None

    samples = wait_until(moved, "the worker's sends on the web's /metrics")
    # the web processes' counters
    assert total(samples, "bottega_webhooks_total", result="ok") == 2
    assert total(samples, "bottega_webhooks_total", result="forged") == 1
    assert total(samples, "bottega_events_total", handled="processed") == 2
    assert total(samples, "bottega_turn_seconds_count", kind="text") == 1
    assert total(samples, "bottega_turn_seconds_count", kind="choice") == 1
    assert total(samples, "bottega_turn_seconds_count") >= 2
    assert total(samples, "bottega_outbox_length_count") >= 2
    # the worker processes' counters, on the same page
    assert total(samples, "bottega_sends_total", channel="whatsapp", result="sent", code="") == graph_calls
    assert total(samples, "bottega_send_seconds_count", channel="whatsapp") == graph_calls
    assert total(samples, "bottega_jobs_total", actor="deliver", result="ok") >= 1
    # read from the shared state when scraped
    assert ("bottega_timers_due", ()) in samples
    assert ("bottega_broker_queue_depth", (("queue", "default"), ("state", "ready"))) in samples
    assert ("bottega_broker_queue_depth", (("queue", "bulk"), ("state", "delayed"))) in samples

    # a failing Graph API shows as transient sends and retries, by Meta's code
    service.graph.configure(fail_every=1, fail_status=500, fail_code=2)
    phone.tap("Panificio")
    failing = wait_until(lambda: (s := scrape(service)) and total(s, "bottega_send_retries_total", code="2") and s,
                         "a transient send counted")
    assert total(failing, "bottega_sends_total", result="transient", code="2") >= 1
    service.graph.configure(fail_every=0)
    phone.wait_turn(timeout=60)


def test_one_request_id_follows_a_message_from_the_webhook_through_the_job_to_the_send(service):
    phone = Phone(service, WHATSAPP, "393330000302")
    raw = json.dumps(phone._payload(text="ciao")).encode()
    from bot.channels.signature import sign
    from tests.service import SECRET

    answer = service.session.post(f"{service.url}/webhook", data=raw, timeout=10, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": sign(SECRET, raw), "X-Request-Id": "trace-302"})
    assert answer.status_code == 200
    assert answer.headers["X-Request-Id"] == "trace-302"
    phone.wait_turn()
    web = wait_until(lambda: [line for line in json_lines(service.workdir / "web.log")
                              if line.get("request_id") == "trace-302"], "the webhook's log line")
    assert any(line["message"].startswith("webhook whatsapp:") for line in web)
    sends = wait_until(lambda: [line for line in json_lines(service.workdir / "worker.log")
                                if line.get("request_id") == "trace-302"
                                and line["message"] == "graph send whatsapp: sent"], "the sends' log lines")
    assert len(sends) == len(phone.calls())
    for line in json_lines(service.workdir / "worker.log") + json_lines(service.workdir / "web.log"):
        assert {"time", "level", "pid", "logger", "request_id", "message"} <= set(line)
    # a caller's id that is not a plain token is replaced, not echoed into our logs
    hostile = requests.get(f"{service.url}/healthz", headers={"X-Request-Id": "a b;c=<x>"}, timeout=5)
    assert hostile.headers["X-Request-Id"] != "a b;c=<x>" and len(hostile.headers["X-Request-Id"]) == 16
    # no phone number in any log line, JSON or not
    for name in ("web.log", "worker.log"):
        assert phone.user not in (service.workdir / name).read_text(encoding="utf-8", errors="replace")


def test_healthz_says_alive_and_readyz_says_503_while_redis_is_down(service):
    assert requests.get(f"{service.url}/healthz", timeout=5).status_code == 200
    assert requests.get(f"{service.url}/readyz", timeout=5).status_code == 200
    service.redis.stop()
    down = requests.get(f"{service.url}/readyz", timeout=15)
    assert down.status_code == 503 and "redis" in down.text
    assert requests.get(f"{service.url}/healthz", timeout=5).status_code == 200  # alive: do not restart it
    service.restart_redis()
    wait_until(lambda: requests.get(f"{service.url}/readyz", timeout=15).status_code == 200, "ready again")
