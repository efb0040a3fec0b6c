"""Logging for every process: one line per record, at the level LOG_LEVEL sets (``Settings.log_level``),
as one JSON object (``LOG_FORMAT=json``, the default: what a log shipper reads) or as plain text.

Every line carries the request id of the webhook it comes from (``request_id``): the web app sets it for
each request (the caller's ``X-Request-Id`` when it is a plain token, else a new one, and answers with
it), the job queue puts it on every job it enqueues, the worker sets it while it runs that job — so one
id follows a message from the webhook through the ``deliver`` job to the Graph API call. Lines outside
any request carry ``-``.

Log lines carry learner references (``bot.model.privacy.learner_ref``), event kinds and counts — never
phone numbers, user ids, message texts, tokens or job arguments.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import time

FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s [%(request_id)s]: %(message)s"
NO_REQUEST = "-"
_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,64}")

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default=NO_REQUEST)


def new_request_id(offered: str | None = None) -> str:
    """The caller's id when it is a plain token (letters, digits, ``._-``, at most 64), else a new one."""
    if offered and _TOKEN.fullmatch(offered):
        return offered
    return secrets.token_hex(8)


class _RequestId(logging.Filter):
    """Puts the current request id on every record (handlers' filters see records of every logger)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ms), level, pid, logger, request id, message, and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z",
                "level": record.levelname, "pid": record.process, "logger": record.name,
                "request_id": getattr(record, "request_id", NO_REQUEST), "message": record.getMessage()}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


_configured = False  # once per process


def configure_logging(level: str = "", log_format: str = "json") -> None:
    """One handler on the root logger, at ``level`` (empty: INFO, or the level a host set up first), in
    ``log_format``. A host's handlers (Dramatiq's CLI) keep their level unless LOG_LEVEL says otherwise and
    get our format, so every line of a process reads the same."""
    global _configured
    if _configured:
        return
    root = logging.getLogger()
    level = level.upper()
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(FORMAT)
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
        root.setLevel(level or "INFO")
    elif level:
        root.setLevel(level)
    for handler in root.handlers:
        if type(handler) is logging.StreamHandler:  # ours or the host's; not a test runner's capture
            handler.setFormatter(formatter)
        handler.addFilter(_RequestId())
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)  # it logs every callback at INFO
    logging.getLogger("flask-limiter").setLevel(logging.WARNING)  # its INFO line names the client's address
    logging.getLogger("pika").setLevel(logging.WARNING)  # RabbitMQ's client: a line per connection step
    _configured = True
