"""Logging for every process: one line per record, at the level LOG_LEVEL sets (``Settings.log_level``).

Log lines carry learner references (``bot.model.privacy.learner_ref``), event kinds and counts — never
phone numbers, user ids, message texts, tokens or job arguments.
"""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"


_configured = False  # once per process


def configure_logging(level: str = "") -> None:
    """One handler on the root logger, at ``level`` (empty: INFO, or the level a host set up first)."""
    global _configured
    if _configured:
        return
    root = logging.getLogger()
    level = level.upper()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
        root.setLevel(level or "INFO")
    elif level:  # a host that set up logging first (Dramatiq's CLI, with or without --verbose) keeps its
        root.setLevel(level)  # level unless LOG_LEVEL says otherwise
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)  # it logs every callback at INFO
    logging.getLogger("flask-limiter").setLevel(logging.WARNING)  # its INFO line names the client's address
    _configured = True
