"""The processes a benchmark run starts, and how it stops them: each in its own process group.

``Processes.stop_all()`` runs in the orchestrator's ``finally`` (also on Ctrl-C and SIGTERM), so no
gunicorn, load generator or Redis outlives the run. CPU time is read from ``/proc`` (Linux), so the
report can say where the CPU went during a phase.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
STOP_GRACE_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_by_process() -> dict[int, tuple[str, int, float]]:
    """Every live process: pid -> (command name, process group, user + system CPU seconds)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, tail = (entry / "stat").read_text().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        fields = tail.split()  # after "pid (comm)": state ppid pgrp ...; utime, stime are 12th and 13th
        found[int(entry.name)] = (head.partition("(")[2], int(fields[2]),
                                  (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S)
    return found


def cpu_seconds_by_pid(pgid: int) -> dict[int, float]:
    """User + system CPU seconds of each live process in process group ``pgid``."""
    return {pid: seconds for pid, (_, group, seconds) in cpu_by_process().items() if group == pgid}


def busiest_others(before: dict[int, tuple[str, int, float]], after: dict[int, tuple[str, int, float]],
                   ours: set[int], top: int = 3) -> list[tuple[str, float]]:
    """The processes outside the process groups ``ours`` that used most CPU between two snapshots."""
    spent: dict[str, float] = {}
    for pid, (name, group, seconds) in after.items():
        if group in ours or pid == os.getpid():
            continue
        used = seconds - before.get(pid, (name, group, 0.0))[2]
        if used > 0:
            spent[name] = spent.get(name, 0.0) + used
    return sorted(spent.items(), key=lambda kv: -kv[1])[:top]


def cpu_seconds_of_group(pgid: int) -> float:
    return sum(cpu_seconds_by_pid(pgid).values())


def machine_cpu_seconds() -> dict[str, float]:
    """CPU seconds all cores spent since boot, by kind (``/proc/stat``): ``tasks`` (user, nice,
    system: what per-process figures add up to), ``irq`` (irq + softirq, e.g. loopback packets,
    charged to no process), ``steal`` (taken by the hypervisor)."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return {"tasks": (user + nice + system) / CLOCK_TICKS_PER_S, "irq": (irq + softirq) / CLOCK_TICKS_PER_S,
            "steal": steal / CLOCK_TICKS_PER_S}


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot."""
    return sum(machine_cpu_seconds().values())


class Processes:
    """Every process this run started, so that one call stops them all."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], *, env: dict[str, str], cwd: Path, log: Path | None = None,
              capture: bool = False) -> subprocess.Popen[bytes]:
        out = subprocess.PIPE if capture else (open(log, "ab") if log else subprocess.DEVNULL)  # noqa: SIM115
        try:
            process = subprocess.Popen(args, cwd=cwd, env=env, stdout=out,
                                       stderr=subprocess.PIPE if capture else subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            if not capture and log:
                out.close()  # type: ignore[union-attr]
        self.started.append(process)
        return process

    def run(self, args: list[str], *, env: dict[str, str], cwd: Path, timeout: float) -> tuple[str, str]:
        """Run to completion (killed with its group after ``timeout`` s); returns (stdout, stderr)."""
        process = self.start(args, env=env, cwd=cwd, capture=True)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(process)
            raise RuntimeError(f"{args[0]} did not finish within {timeout:.0f} s") from None
        self.started.remove(process)
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:3])} exited with {process.returncode}: {err.decode()[-2000:]}")
        return out.decode(), err.decode()

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        """SIGTERM to the process group, SIGKILL after STOP_GRACE_SECONDS; forget the process."""
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # workers a dying master left in its group
        if process in self.started:
            self.started.remove(process)

    def stop_all(self) -> None:
        for process in reversed(self.started):
            self.stop(process)
        self.started.clear()


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    with requests.Session() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}; see {log}:\n"
                                   f"{log.read_text(errors='replace')[-3000:]}")
            try:
                if session.get(url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s; see {log}")
