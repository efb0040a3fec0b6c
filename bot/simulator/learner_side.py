"""The learner's side of a simulated phone: build the webhook body Meta would post, sign it on the server and
post it to the app's real ``/webhook`` — so the simulator goes through exactly what a learner's message goes
through (signature check, parse, dispatch, commit, worker, Graph API). The app secret never leaves the
server; the browser only says what the learner wrote or tapped. In production (``sandbox``) it signs only
bodies from sandbox learners (``bot.model.sandbox``): a body from any other user id is refused before it is
signed, so the simulator can never speak as a real person.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import redis
import requests

from bot.channels.bubbles import Choice
from bot.channels.parts import ChannelParts
from bot.channels.signature import sign
from bot.model.errors import BottegaError
from bot.model.sandbox import is_sandbox
from bot.simulator.outbound import Outbound
from bot.simulator.session import Action, Entry, SessionLog, learner_id, learner_user
from bot.storage.keys import LearnerPart, learner_key
from config.settings import Settings

WEBHOOK_TIMEOUT_SECONDS = 10.0


class WebhookRefused(BottegaError):
    """The app's own /webhook did not answer 200 to a signed body."""


class NotSandbox(BottegaError):
    """A production simulator was asked to sign a body from a user who is not a sandbox learner."""


def write(parts: ChannelParts, text: str, **context: Any) -> Entry:
    """The learner writes ``text``."""
    return _act(parts, Entry(action=Action.SEND, channel=parts.channel.name, text=text),
                lambda user, reply_from, now: parts.dev.text_payload(text, user, reply_from, at_ms=now), **context)


def tap(parts: ChannelParts, choice: Choice, *, latest: bool, **context: Any) -> Entry:
    """The learner taps ``choice`` (``latest``: it was on the newest message offering choices)."""
    entry = Entry(action=Action.TAP, channel=parts.channel.name, text=choice.title, option_id=choice.id, latest=latest)
    return _act(parts, entry, lambda user, reply_from, now: parts.dev.tap_choice(choice, user, reply_from, at_ms=now),
                **context)


Build = Callable[[str, str, int], dict[str, Any]]  # (user, reply_from, now ms) -> the webhook body


def _act(parts: ChannelParts, entry: Entry, build: Build, *, settings: Settings, client: redis.Redis, log: SessionLog,
         outbound: Outbound, now_ms: int, webhook_url: str, sandbox: bool = False) -> Entry:
    user = learner_user(parts, log.session, sandbox=sandbox)
    settled = client.llen(learner_key(learner_id(parts, log.session, sandbox=sandbox), LearnerPart.OUTBOX)) == 0
    calls_before = len(outbound.calls())
    payload = build(user, parts.dev.reply_from(settings), now_ms)
    events, _ = parts.parse(payload)
    entry = replace(entry, message_ids=tuple(e.message_id for e in events if e.message_id),
                    calls_before=calls_before, settled=settled, at_ms=now_ms)
    post_signed(parts, payload, settings=settings, webhook_url=webhook_url, sandbox=sandbox)
    log.append(entry)
    return entry


def post_signed(parts: ChannelParts, payload: dict[str, Any], *, settings: Settings, webhook_url: str,
                sandbox: bool = False) -> None:
    """Sign ``payload`` with the channel's app secret and post it; ``sandbox``: only a sandbox learner's."""
    if sandbox:
        events, _ = parts.parse(payload)
        if not events or not all(is_sandbox(event.learner_id) for event in events):
            raise NotSandbox("refused: the simulator here speaks only as its sandbox learners "
                             "(user ids 0000 followed by the session's digits), never as a real user")
    raw = json.dumps(payload).encode()
    secret = getattr(settings, parts.app_secret_setting)
    try:
        answer = requests.post(webhook_url, data=raw, timeout=WEBHOOK_TIMEOUT_SECONDS, headers={
            "Content-Type": "application/json", "X-Hub-Signature-256": sign(secret, raw)})
    except requests.RequestException as error:
        raise WebhookRefused(f"could not reach {webhook_url} ({type(error).__name__})") from None
    if answer.status_code != 200:
        raise WebhookRefused(f"{webhook_url} answered {answer.status_code}: {answer.text.strip()[:200]}")
