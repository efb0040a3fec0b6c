"""The console's long actions, run by the worker: a broadcast's dry run and send, an Open Day's dry run and announce.

Each reads every learner's record (53 s for 100,000 on a loaded box, bench/README.md). Inside a web request that
work would stall the gevent worker's loop — Meta's webhooks on the same process waiting for their acks — and past
gunicorn's 30 s heartbeat the process would be killed mid-request. So the request only checks the form (CSRF,
role, query, message), writes a small record here and enqueues a ``console_job`` on the bulk queue (learners'
replies go first); the worker runs it (``bot.console.job_runner``: the code the CLI runs), counting the learners
read into the record, and the console's job page reloads itself until the record says done, then shows the
result as the request used to.

A record is one hash, ``bot.storage.keys.admin_job_key`` (its own slot), kept ``JOB_TTL_SECONDS`` after its last
change. It names no learner: the audience's form fields, the counts and costs, never a recipient's id.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import redis

from bot.storage.encoding import hash_fields, text
from bot.storage.keys import admin_job_key

JOB_TTL_SECONDS = 24 * 3_600  # a job's record (and so its page) lives this long after its last change
JOB_ID_HEX_CHARS = 16
NOT_QUEUED = "The worker's queue could not be reached: nothing was done. Try again."


class JobKind(str, Enum):
    BROADCAST_DRY_RUN = "broadcast.dry_run"
    BROADCAST_SEND = "broadcast.send"  # the dry run again, then the start if the audience is the one shown
    OPEN_DAY_DRY_RUN = "open_day.dry_run"
    OPEN_DAY_ANNOUNCE = "open_day.announce"


class JobStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class SendOutcome(str, Enum):
    """How a ``broadcast.send`` job ended (``JobStatus.DONE``)."""

    STARTED = "started"
    CHANGED = "changed"  # the audience is not the dry run's any more: nothing started (the console's 409)
    EMPTY = "empty"  # nobody to send it to: nothing started


@dataclass(frozen=True, kw_only=True, slots=True)
class ConsoleJob:
    job_id: str
    kind: JobKind
    who: str  # the admin who asked
    target: str  # the broadcast's message id, or the Open Day's id
    query: str  # a broadcast's audience (``Query.to_json``)
    form: tuple[tuple[str, str], ...]  # the form's fields (not its token): the page echoes them
    expected: int  # a send: the recipients the dry run showed
    status: JobStatus
    read: int  # learners read so far
    outcome: str = ""  # a send: a SendOutcome value
    result: str = ""  # JSON: a plan's summary, an announcement's counts
    broadcast_id: str = ""  # a send that started
    error: str = ""  # why it failed, for the admin
    created_ms: int = 0

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.FAILED)


def valid_job_id(job_id: str) -> bool:
    return len(job_id) == JOB_ID_HEX_CHARS and all(c in "0123456789abcdef" for c in job_id)


class Jobs:
    """The records of the console's jobs, on Redis."""

    def __init__(self, client: redis.Redis, *, ttl_seconds: int = JOB_TTL_SECONDS):
        self.client = client
        self.ttl_seconds = ttl_seconds

    def create(self, kind: JobKind, *, who: str, target: str, query: str = "",
               form: list[tuple[str, str]] | None = None, expected: int = 0) -> str:
        """Record a new queued job; its id (then ``hand_over`` it to the worker)."""
        job_id = secrets.token_hex(JOB_ID_HEX_CHARS // 2)
        self._write(job_id, {"kind": kind.value, "who": who, "target": target, "query": query,
                             "form": json.dumps(form or []), "expected": str(expected),
                             "status": JobStatus.QUEUED.value, "read": "0",
                             "created_ms": str(int(time.time() * 1000))})
        return job_id

    def hand_over(self, job_id: str, enqueue: Callable[[str], None]) -> None:
        """Put the job on the worker's queue (``enqueue``: ``JobQueue.console_job``)."""
        try:
            enqueue(job_id)
        except Exception:
            self.fail(job_id, NOT_QUEUED)  # its page says so rather than waiting a day
            raise

    def get(self, job_id: str) -> ConsoleJob | None:
        """The job, or None (no such id, or its record expired)."""
        if not valid_job_id(job_id):
            return None
        raw: dict[bytes, bytes] = self.client.hgetall(admin_job_key(job_id))  # type: ignore[assignment]
        if not raw:
            return None
        values = {text(k): text(v) for k, v in raw.items()}
        return ConsoleJob(job_id=job_id, kind=JobKind(values["kind"]), who=values.get("who", ""),
                          target=values.get("target", ""), query=values.get("query", ""),
                          form=tuple((str(name), str(value)) for name, value in json.loads(values.get("form") or "[]")),
                          expected=int(values.get("expected") or 0), status=JobStatus(values["status"]),
                          read=int(values.get("read") or 0), outcome=values.get("outcome", ""),
                          result=values.get("result", ""), broadcast_id=values.get("broadcast_id", ""),
                          error=values.get("error", ""), created_ms=int(values.get("created_ms") or 0))

    def running(self, job_id: str) -> None:
        self._write(job_id, {"status": JobStatus.RUNNING.value})

    def count(self, job_id: str, read: int) -> None:
        """The learners read so far (the job page's counter)."""
        self._write(job_id, {"read": str(read)})

    def finish(self, job_id: str, *, result: str, outcome: str = "", broadcast_id: str = "") -> None:
        self._write(job_id, {"status": JobStatus.DONE.value, "result": result, "outcome": outcome,
                             "broadcast_id": broadcast_id})

    def fail(self, job_id: str, error: str) -> None:
        self._write(job_id, {"status": JobStatus.FAILED.value, "error": error})

    def _write(self, job_id: str, fields: dict[str, str]) -> None:
        key = admin_job_key(job_id)
        pipe = self.client.pipeline(transaction=True)  # one key: atomic on a Redis Cluster too
        pipe.hset(key, mapping=hash_fields(fields))
        pipe.expire(key, self.ttl_seconds)
        pipe.execute()
