"""The operable parts that need no processes: the metrics folder's clean-up, JSON log lines, request ids, and
the sample Grafana dashboard naming only metrics that exist."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys

from config import logs, meters, metrics
from config.settings import PROJECT_ROOT


def test_preparing_the_metrics_folder_removes_the_files_of_dead_processes_only(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = tmp_path / "metrics"
    folder.mkdir()
    live_file = folder / f"counter_{os.getpid()}.db"
    dead_files = [folder / f"counter_{dead.pid}.db", folder / f"histogram_{dead.pid}.db",
                  folder / f"gauge_livesum_{dead.pid}.db"]
    for file in (live_file, *dead_files):
        file.write_bytes(b"\0" * 8)
    metrics.prepare(folder)
    assert live_file.exists()
    assert not any(file.exists() for file in dead_files)
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(folder)
    del os.environ["PROMETHEUS_MULTIPROC_DIR"]  # this test process counts in its own memory


def test_a_json_log_line_carries_the_request_id_and_no_more_than_the_message():
    record = logging.LogRecord("bottega.webhook", logging.INFO, __file__, 1, "webhook %s: %s", ("whatsapp", "x=1"),
                               None)
    token = logs.request_id.set("trace-1")
    try:
        logs._RequestId().filter(record)
    finally:
        logs.request_id.reset(token)
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["request_id"] == "trace-1" and line["message"] == "webhook whatsapp: x=1"
    assert line["level"] == "INFO" and line["logger"] == "bottega.webhook"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])


def test_a_callers_request_id_is_kept_only_when_it_is_a_plain_token():
    assert logs.new_request_id("abc-123_X.y") == "abc-123_X.y"
    for hostile in ("a b", "x" * 65, "<script>", "", None, "é"):
        assert re.fullmatch(r"[0-9a-f]{16}", logs.new_request_id(hostile))


def test_the_sample_dashboard_charts_only_metrics_bottega_exposes():
    dashboard = json.loads((PROJECT_ROOT / "docs" / "grafana-dashboard.json").read_text())
    exposed = {metric.describe()[0].name for metric in vars(meters).values()
               if hasattr(metric, "describe") and hasattr(metric, "_name")}
    exposed |= {"bottega_timers_due", "bottega_broker_queue_depth"}  # read when scraped (bot.web.metrics)
    charted = {re.sub(r"_(total|bucket|count|sum)$", "", name)
               for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"bottega_[a-z_]+", target["expr"])}
    assert charted and charted <= exposed, charted - exposed
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert all(f"`{name}" in readme for name in exposed)  # the operator's page names each
