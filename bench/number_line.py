"""Learners waiting for the sending number's bucket: a line, not a herd (issue 13 §2).

Run: ``.venv/bin/python bench/number_line.py [--learners 300] [--rate 20] [--wake-ms 1000 200]`` (about a
minute per setting). For each ``WORKER_WAKE_MS`` setting it starts the real Procfile processes
(``tests/service.py``: gunicorn web + Dramatiq worker, embedded Redis, the fake Graph API enforcing the
number's throughput at ``--rate`` with a one-second burst, 130429 past it), sets the worker's bucket to the
same rate, and has ``--learners`` new learners say "ciao" at once (16 threads), far faster than the number may
answer. It prints, per setting: how long until every learner got their reply, against the ideal (learners /
rate); ``deliver`` jobs run per learner (the worker's DEBUG line per job: 1 is a drain that never waited,
each retry adds one); the worker's CPU per learner (its process group, from /proc); refusals at the fake.

Before the line (main at 950755d, run from a worktree of it), every waiter was told the same ~1/rate and came
back together: 10 jobs and 48 ms of worker CPU per learner at 300 learners against 20/s (bench/README.md).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import cpu_seconds_of_group  # noqa: E402
from bot import channels  # noqa: E402
from tests.service import Phone, Service  # noqa: E402

THREADS = 16


def run(learners: int, rate: float, wake_ms: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bottega-number-line-") as folder:
        work = Path(folder)
        service = Service(work, extra_env={"WHATSAPP_MESSAGES_PER_SECOND": repr(rate), "LOG_LEVEL": "DEBUG",
                                           "WORKER_WAKE_MS": str(wake_ms)})
        try:
            service.start()
            service.graph.configure(throughput_per_second=rate, throughput_burst_seconds=1.0)
            phones = [Phone(service, channels.named("whatsapp"), f"39334{n:07d}") for n in range(learners)]
            worker = service.processes["worker"].pid
            cpu_before = cpu_seconds_of_group(worker)
            started = time.monotonic()
            with ThreadPoolExecutor(THREADS) as pool:
                list(pool.map(lambda phone: phone.send("ciao"), phones))

            def replies() -> int:
                return sum(1 for call in service.graph.calls() if call["body"].get("status") != "read")

            while replies() < learners and time.monotonic() - started < 600:
                time.sleep(0.1)
            answered_s = time.monotonic() - started
            time.sleep(1.0)
            cpu = cpu_seconds_of_group(worker) - cpu_before
            jobs = (work / "worker.log").read_text(errors="replace").count("deliver learner=")
            return {"answered_s": answered_s, "replies": replies(), "jobs": jobs / learners,
                    "cpu_ms": cpu * 1000 / learners, "refused": len(service.graph.rejected())}
        finally:
            service.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0, help="the number's messages per second")
    parser.add_argument("--wake-ms", type=int, nargs="+", default=[1000, 200],
                        help="WORKER_WAKE_MS settings to compare (1000: Dramatiq's default)")
    args = parser.parse_args(argv)
    ideal = args.learners / args.rate
    print(f"# {args.learners} new learners at once against a number of {args.rate:g} msg/s "
          f"(ideal: every reply in {ideal:.1f} s)")
    print("| WORKER_WAKE_MS | every learner answered, s | / ideal | deliver jobs per learner | "
          "worker CPU ms per learner | refusals (130429) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for wake_ms in args.wake_ms:
        figures = run(args.learners, args.rate, wake_ms)
        print(f"| {wake_ms} | {figures['answered_s']:.1f} | {figures['answered_s'] / ideal:.2f} | "
              f"{figures['jobs']:.2f} | {figures['cpu_ms']:.1f} | {figures['refused']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
