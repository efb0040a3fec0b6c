"""Prometheus metrics of every process (prometheus_client, its multiprocess mode).

prometheus_client is the reference Python client; its multiprocess mode keeps each process's values in
small memory-mapped files, so gunicorn's forked web processes and Dramatiq's worker processes count into
one set that any of them can expose. The folder is ``Settings.metrics_path`` (``PROMETHEUS_MULTIPROC_DIR``,
default ``<BOTTEGA_VAR_DIR>/metrics``): one per box. A process group that starts (gunicorn's master,
each Dramatiq worker process) calls ``prepare`` first: it exports the folder for prometheus_client and
removes the files of processes that are no longer alive (a former run's), so the box's counters start
from what its live processes counted. Every web process's ``/metrics`` shows the box's totals (web and
worker); a worker-only box serves the same on ``METRICS_PORT``. Scrape one target per box.

What is counted here lives in the processes; what is a fact of the shared state (timers due now, the
broker's queue depth) is read from Redis or the broker when scraped (``bot.web.metrics``).

Import this module only after ``prepare`` (or in a process that exposes nothing: tests, `bottega chat`),
since prometheus_client chooses where values live when it is first imported.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from config.settings import export_metrics_dir

_PID_FILE = re.compile(r"_(\d+)\.db$")


def prepare(path: Path) -> None:
    """Export ``path`` for prometheus_client and remove the files of processes that are gone."""
    export_metrics_dir(path)
    for file in path.glob("*.db"):
        match = _PID_FILE.search(file.name)
        if match and not _alive(int(match.group(1))):
            file.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def process_gone(pid: int, path: Path) -> None:
    """gunicorn's ``child_exit``: drop the live gauges of a web process that exited (its counters stay)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(path))



def serve(port: int) -> bool:
    """The box's metrics over HTTP on ``port`` (``METRICS_PORT``, a box that runs no web process); False
    when another process of the box serves it already."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    try:
        start_http_server(port, registry=registry)
    except OSError:
        return False
    return True
