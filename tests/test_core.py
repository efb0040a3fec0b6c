"""Rules of the house that a test can check: keys keep their format, settings refuse to start without
secrets. (The layers and the core's no-I/O rule are import-linter contracts in pyproject.toml, run by
`make test`.)"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from bot.model.errors import ConfigError
from bot.storage.keys import LearnerPart, global_key, learner_id_of, learner_key, learner_key_pattern
from config.settings import PROJECT_ROOT, Settings


def test_learner_keys_keep_their_format_and_share_one_hash_slot():
    assert learner_key("wa:393331112222", LearnerPart.PROGRESS) == "bottega:{wa:393331112222}:progress"
    assert learner_key("ms:7001", LearnerPart.OUTBOX) == "bottega:{ms:7001}:outbox"
    assert learner_key("wa:IT.123", LearnerPart.TIMERS) == "bottega:{wa:IT.123}:timers"
    tags = {learner_key("wa:1", part).split("}")[0] for part in LearnerPart}
    assert tags == {"bottega:{wa:1"}  # every part of one learner: one hash tag, one slot
    assert learner_key_pattern(LearnerPart.SEEN) == "bottega:{*}:seen"
    assert learner_id_of(b"bottega:{wa:1}:seen") == "wa:1"
    assert global_key("course:live") == "bottega:course:live"
    with pytest.raises(ValueError):
        learner_key("wa:{1}", LearnerPart.SEEN)


def test_production_refuses_to_start_without_secrets_and_names_each_one():
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"WHATSAPP_TOKEN": "x"})
    message = str(error.value)
    for name in ("META_APP_SECRET", "META_VERIFY_TOKEN", "WHATSAPP_PHONE_NUMBER_ID", "MESSENGER_PAGE_TOKEN"):
        assert name in message
    assert "WHATSAPP_TOKEN:" not in message  # the one that was set is not listed


def test_secrets_never_appear_in_the_settings_repr():
    settings = Settings.from_env({"BOTTEGA_ENV": "dev", "META_APP_SECRET": "very-secret-value",
                                  "WHATSAPP_TOKEN": "token-value"})
    assert "very-secret-value" not in repr(settings) and "token-value" not in repr(settings)


@pytest.mark.parametrize("version", ["v20.0", "v19.0", "25"])
def test_expired_or_malformed_graph_versions_are_refused(version):
    with pytest.raises(ConfigError):
        Settings.from_env({"BOTTEGA_ENV": "dev", "GRAPH_API_VERSION": version})


def test_dev_mode_starts_without_any_secret():
    settings = Settings.from_env({"BOTTEGA_ENV": "dev"})
    assert settings.dev and settings.graph_api_version >= "v25.0"


STRUCTURED_SAMPLES = {"QUIET_HOURS": "22:30-07:00", "WHATSAPP_PRICES": "utility=0.05,marketing=0.1",
                      "DEFAULT_TIME_ZONE": "Europe/London", "BROKER_URL": "amqp://guest:guest@127.0.0.1:5672",
                      "LOG_FORMAT": "json",  # dev's default is text
                      "CONSOLE_SECRET_KEY": "a-console-secret-of-at-least-32-characters"}  # knobs with a shape


def _sample(default, env=""):
    """A value for a knob that differs from its default, written as it would be in the environment."""
    if env in STRUCTURED_SAMPLES:
        return STRUCTURED_SAMPLES[env], STRUCTURED_SAMPLES[env]
    if isinstance(default, bool):
        return ("off", False) if default else ("on", True)
    if isinstance(default, Path):
        return "/srv/bottega/elsewhere", Path("/srv/bottega/elsewhere")
    if isinstance(default, float):
        return str(default + 1.5), default + 1.5
    if isinstance(default, int):
        return str(default + 7), default + 7
    return "custom-value", "custom-value"


KNOBS = [knob for knob in fields(Settings) if knob.name not in ("env", "log_level", "graph_api_version")]


@pytest.mark.parametrize("knob", KNOBS, ids=[knob.metadata["env"] for knob in KNOBS])
def test_every_knob_is_read_from_its_environment_variable(knob):
    raw, expected = _sample(knob.default, knob.metadata["env"])
    settings = Settings.from_env({"BOTTEGA_ENV": "dev", knob.metadata["env"]: raw})
    assert getattr(settings, knob.name) == expected
    assert getattr(Settings.from_env({"BOTTEGA_ENV": "dev"}), knob.name) != expected


def test_numbers_that_are_not_numbers_or_are_negative_are_refused_with_the_fix():
    with pytest.raises(ConfigError, match=r"SEND_TIMEOUT_SECONDS='ten' is not a number; set it like"):
        Settings.from_env({"BOTTEGA_ENV": "dev", "SEND_TIMEOUT_SECONDS": "ten"})
    with pytest.raises(ConfigError, match=r"OUTBOX_MAX_ITEMS=-1 is negative"):
        Settings.from_env({"BOTTEGA_ENV": "dev", "OUTBOX_MAX_ITEMS": "-1"})
    with pytest.raises(ConfigError, match=r"LOG_LEVEL='loud' is not a level"):
        Settings.from_env({"BOTTEGA_ENV": "dev", "LOG_LEVEL": "loud"})


@pytest.mark.parametrize(("env", "value", "message"), [
    ("QUIET_HOURS", "9pm-8am", "is not a span like 21:00-08:00"),
    ("WHATSAPP_PRICES", "utility:0.03", "is not category=price"),
    ("WHATSAPP_PRICES", "texts=0.01", "unknown category 'texts'"),
    ("DEFAULT_TIME_ZONE", "Mars/Olympus", "is not a time zone"),
])
def test_proactive_knobs_with_a_shape_are_refused_with_the_fix(env, value, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"BOTTEGA_ENV": "dev", env: value})


def test_gunicorns_config_reads_its_knobs_through_the_settings_without_needing_secrets():
    env = {"PORT": "9123", "BIND_HOST": "127.0.0.2", "WEB_CONCURRENCY": "3", "WEB_CONNECTIONS": "77",
           "LOG_LEVEL": "warning", "PATH": os.environ.get("PATH", "")}
    done = subprocess.run([sys.executable, "-c", "import config.gunicorn as g; "
                           "print(g.bind, g.workers, g.worker_connections, g.loglevel)"],
                          env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.split() == ["127.0.0.2:9123", "3", "77", "warning"], done.stderr


def test_the_readme_documents_every_knob():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Configuration"):readme.index("## Deploying")]
    missing = [knob.metadata["env"] for knob in fields(Settings) if f"`{knob.metadata['env']}`" not in table]
    assert missing == []


PRODUCTION = {"META_APP_SECRET": "app-secret", "META_VERIFY_TOKEN": "verify", "WHATSAPP_TOKEN": "wa-token",
              "WHATSAPP_PHONE_NUMBER_ID": "100000000000001", "MESSENGER_PAGE_TOKEN": "page-token"}


def test_instagram_needs_no_new_variable_and_each_one_can_be_set_apart():
    settings = Settings.from_env(PRODUCTION)  # production, as deployed before Instagram: it still starts
    assert (settings.instagram_app_secret, settings.instagram_page_token) == ("app-secret", "page-token")
    apart = Settings.from_env({**PRODUCTION, "INSTAGRAM_APP_SECRET": "ig-secret", "INSTAGRAM_PAGE_TOKEN": "ig-token"})
    assert (apart.instagram_app_secret, apart.instagram_page_token) == ("ig-secret", "ig-token")
    assert (apart.messenger_app_secret, apart.messenger_page_token) == ("app-secret", "page-token")
    assert "ig-secret" not in repr(apart) and "ig-token" not in repr(apart)
    dev = Settings.from_env({"BOTTEGA_ENV": "dev"})
    assert dev.instagram_app_secret and dev.instagram_page_token
