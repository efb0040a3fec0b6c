"""The Graph API send call: one keep-alive urllib3 pool with timeouts, and Meta's errors sorted by code.

urllib3, not ``requests`` (which runs on it): a send is the worker's hot path, and ``requests`` spends
about 40 % more CPU per call on top (``bench/README.md``, "End to end": 0.40-0.43 ms against
0.62-0.70 ms with ``trust_env=False``, 0.74-0.82 ms as it was, measured against the fake Graph API),
much of it merging settings and re-reading proxy variables from the environment on every call.

``GraphClient.send(channel, sender_id, body)`` POSTs ``body`` (a rendered Graph API request body)
to ``{graph_base}/{sender_id}/messages`` and returns the id Meta accepted it under (WhatsApp
``messages[0].id``, Messenger ``message_id``; ``""`` for a mark-read or sender action, which get
no id). Accepted means accepted, not delivered (docs/platform.md §6).

Every failure is a ``GraphError``; what to do next is decided by Meta's ``error.code``, never by
the HTTP status (docs/platform.md §10), except when no Meta error body came back::

    GraphError                 .code (Meta's error.code, or a negative LocalCode), .transient,
    |                          .http_status, .retry_after_seconds(attempt)
    +-- GraphTransportError    no answer: connect/read timeout, refused/reset connection (transient)
    +-- GraphApiError          Meta answered with an error: transient iff the code is in
    |                          TRANSIENT_CODES; a 5xx/429/408 without a readable error body is
    |                          transient, any other status without one is permanent
    +-- GraphBadResponse       a 2xx we cannot read (no message id): permanent, since the message
    |                          was probably accepted and sending it again would duplicate it
    +-- GraphRequestError      we never sent it: unknown channel, no token, a body that is not
                               JSON, an invalid URL (permanent)

A timed-out call may still have been accepted by Meta; retrying it is at-least-once delivery.
Messages name what was expected, what came and what to do. They never contain the request body,
the token or Meta's free-text message (which can quote the recipient); that text is kept on
``GraphApiError.meta_message`` for code that wants it, out of log lines.

A ``GraphClient`` is used by one thread at a time (the worker keeps one per thread). The outbox sends
through any ``Sender``: a sandbox learner's messages go to ``bot.delivery.sandbox``'s recorder instead,
which answers through ``read_answer`` exactly as Meta's answers are read here.
"""

from __future__ import annotations

import json
from enum import IntEnum
from typing import Any, Protocol

import urllib3
from urllib3.exceptions import HTTPError, LocationValueError, NewConnectionError, ProtocolError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from bot import channels
from bot.channels.parts import ChannelParts
from bot.model.errors import DeliveryError
from config.settings import Settings

#: Meta codes worth retrying (docs/platform.md §10): throughput and pair rate limits, temporary
#: service errors, account maintenance, and the Graph/Messenger rate limits.
TRANSIENT_CODES = frozenset({130429, 131056, 131000, 131016, 131057, 133004, 1, 2, 4, 32, 613, 80007})
PAIR_RATE_LIMIT_CODE = 131056  # Meta: retry after 4^X seconds, X = 0, 1, 2, ...
TRANSIENT_STATUSES_WITHOUT_BODY = frozenset({408, 429})  # plus every 5xx


class LocalCode(IntEnum):
    """Codes for failures that carry no Meta ``error.code``; negative so they never clash."""

    NO_RESPONSE = -1  # timeout or connection error
    HTTP_STATUS_ONLY = -2  # an HTTP error without a readable Meta error body
    BAD_RESPONSE = -3  # a 2xx whose body has no message id
    NOT_SENT = -4  # refused before sending: unknown channel, missing token


class GraphError(DeliveryError):
    """A send that did not return a message id. ``transient``: the same call may succeed later."""

    def __init__(self, message: str, *, code: int, transient: bool, http_status: int | None = None) -> None:
        super().__init__(message)
        self.code = int(code)  # a plain int: hiredis packs exact ints only, not IntEnum members
        self.transient = transient
        self.http_status = http_status

    def retry_after_seconds(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (``attempt`` = failures so far - 1, from 0).

        Exponential from 1 s: 1, 2, 4, 8...; the pair rate limit (131056) uses Meta's 4^attempt:
        1, 4, 16, 64... Uncapped: the caller applies ``send_max_backoff_seconds``.
        """
        base = 4 if self.code == PAIR_RATE_LIMIT_CODE else 2
        return float(base ** min(max(attempt, 0), 30))


class GraphTransportError(GraphError):
    """No HTTP answer (timeout, refused or reset connection); always transient."""


class GraphApiError(GraphError):
    """Meta answered with an error (or an error status without a readable body)."""

    def __init__(self, message: str, *, code: int, transient: bool, http_status: int | None = None,
                 meta_message: str = "", fbtrace_id: str = "") -> None:
        super().__init__(message, code=code, transient=transient, http_status=http_status)
        self.meta_message = meta_message  # may quote the recipient: never log it
        self.fbtrace_id = fbtrace_id  # what Meta support asks for


class GraphBadResponse(GraphError):
    """A success status whose body we cannot read; permanent (the message was probably accepted)."""


class GraphRequestError(GraphError):
    """The call was not made: the arguments or the configuration are wrong; permanent."""


_ADVICE: dict[int, str] = {
    0: "the access token was refused: set a valid system-user token",
    100: "Meta refused a parameter: fix the renderer that built this body (or the sender id)",
    131008: "a required parameter is missing: fix the renderer that built this body",
    131009: "a parameter value is invalid: fix the renderer that built this body",
    131026: "the recipient cannot receive WhatsApp messages: do not retry, mark the contact",
    131047: "more than 24 hours since the learner last wrote: send an approved template or wait",
    131048: "spam rate limit: stop bulk sends and check the number's quality rating",
    131049: "marketing per-user limit: wait at least 24 hours before another marketing template",
    131050: "the learner stopped marketing messages: honour the opt-out",
    130403: "the business blocked this user: do not retry",
    551: "this person isn't available right now (blocked or messages off): do not retry",
    1545041: "the Messenger window is closed or the person is unreachable: wait for the learner",
}


def advice(channel: str, code: int) -> str:
    """What to do about Meta's error ``code`` on ``channel`` (a name): the advice every send failure carries."""
    return _advice(channels.parts_for(channel), code, code in TRANSIENT_CODES)


def _advice(kind: ChannelParts, code: int, transient: bool) -> str:
    if code == 190:
        return f"the access token is invalid or expired: set {kind.token_variable} to a valid, non-expiring token"
    if code == 10:
        return f"the token lacks a permission: give {kind.token_variable} {kind.token_permissions}"
    if code in _ADVICE:
        return _ADVICE[code]
    if 200 <= code <= 299 or code == 3:
        return "a permission is missing: check the app's permissions and the token's scopes"
    if 132000 <= code <= 132999:
        return "the template was refused: check its name, language and parameters in WhatsApp Manager"
    if transient:
        return "temporary: the outbox retries it with backoff"
    return "permanent: the outbox drops this message; see docs/platform.md §10 for the code"


class Sender(Protocol):
    def send(self, channel: str, sender_id: str, body: dict[str, Any]) -> str:
        """Send one message body; Meta's message id ("" for mark-read/sender actions); ``GraphError`` on failure."""
        ...


class GraphClient:
    """Sends Graph API message calls for one thread. Timeouts: (connect, read) = send_timeout_seconds each.

    A call therefore lasts at most about ``2 * send_timeout_seconds`` (the read timeout bounds each
    wait for bytes, which for Meta's small answers is the whole answer). No retries and no redirects
    inside a call: the outbox decides what a failure means.
    """

    def __init__(self, settings: Settings) -> None:
        self._base = settings.graph_base()
        self._settings = settings
        self.timeout_seconds = (settings.send_timeout_seconds, settings.send_timeout_seconds)
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=1, retries=False,
            timeout=urllib3.Timeout(connect=settings.send_timeout_seconds, read=settings.send_timeout_seconds))

    def close(self) -> None:
        self._pool.clear()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, channel: str, sender_id: str, body: dict[str, Any]) -> str:
        """POST one message body; return Meta's message id ("" for mark-read/sender actions).

        Raises ``GraphError`` (see the module docstring) for every failure.
        """
        try:
            kind = channels.parts_for(channel)
        except channels.UnknownChannel as unknown:
            raise GraphRequestError(f"{unknown}: fix the outbox item's producer", code=LocalCode.NOT_SENT,
                                    transient=False) from None
        token = getattr(self._settings, kind.token_setting)
        if not token or not sender_id:
            what = f"set {kind.token_variable}" if not token else "give the outbox item a sender_id"
            raise GraphRequestError(f"cannot send on {kind.channel}: no token or no sender id; {what}",
                                    code=LocalCode.NOT_SENT, transient=False)
        url = f"{self._base}/{kind.send_path(sender_id)}"
        try:
            raw = json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:  # NaN, or something JSON cannot hold
            raise GraphRequestError(
                f"could not build the {kind.channel} send request ({type(exc).__name__}: the body is not JSON): "
                "fix the outbox item", code=LocalCode.NOT_SENT, transient=False) from None
        try:
            response = self._pool.request("POST", url, body=raw, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        except NewConnectionError as exc:  # before the timeouts: urllib3 makes it a kind of connect timeout
            raise _unreachable(kind, exc) from None
        except Urllib3Timeout:
            raise GraphTransportError(
                f"expected a {kind.channel} send answer within {self.timeout_seconds[1]} s, got none "
                "(timeout; Meta may still have accepted it): retrying with backoff",
                code=LocalCode.NO_RESPONSE, transient=True) from None
        except (LocationValueError, ValueError) as exc:  # an invalid URL (GRAPH_API_URL, a sender id)
            raise GraphRequestError(
                f"could not build the {kind.channel} send request ({type(exc).__name__}): fix the outbox "
                "item or GRAPH_API_URL", code=LocalCode.NOT_SENT, transient=False) from None
        except (ProtocolError, HTTPError, OSError) as exc:  # reset, refused, closed mid-answer
            raise _unreachable(kind, exc) from None
        return _read_answer(kind, response.status, _json_or_none(response.data))


def _unreachable(kind: ChannelParts, exc: BaseException) -> GraphTransportError:
    return GraphTransportError(
        f"could not reach the Graph API for a {kind.channel} send ({type(exc).__name__}): "
        "retrying with backoff; check GRAPH_API_URL and the network if it persists",
        code=LocalCode.NO_RESPONSE, transient=True)


def _json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def read_answer(channel: str, status: int, data: Any) -> str:
    """Meta's answer (HTTP ``status``, JSON ``data``) to a send on ``channel``: the accepted message id, or
    the ``GraphError`` it means (raised)."""
    return _read_answer(channels.parts_for(channel), status, data)


def _read_answer(kind: ChannelParts, status: int, data: Any) -> str:
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), int):
        raise _api_error(kind, status, error)
    if status >= 300:
        transient = status >= 500 or status in TRANSIENT_STATUSES_WITHOUT_BODY
        raise GraphApiError(
            f"expected a Meta error body with HTTP {status} from a {kind.channel} send, got none "
            f"(a proxy or an outage?): {'retrying with backoff' if transient else 'dropping it'}",
            code=LocalCode.HTTP_STATUS_ONLY, transient=transient, http_status=status)
    message_id = kind.accepted_id(data)
    if message_id is None:
        shape = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise GraphBadResponse(
            f"expected a message id in the {kind.channel} send answer (HTTP {status}), got {shape}: "
            "not resending (it was probably accepted); check the Graph API version",
            code=LocalCode.BAD_RESPONSE, transient=False, http_status=status)
    return message_id


def _api_error(kind: ChannelParts, status: int, error: dict[str, Any]) -> GraphApiError:
    code: int = error["code"]
    transient = code in TRANSIENT_CODES
    meta_type, meta_message, trace = (_text(error, "type"), _text(error, "message"), _text(error, "fbtrace_id"))
    return GraphApiError(
        f"Meta refused a {kind.channel} send with error code {code} ({meta_type or 'no type'}, "
        f"HTTP {status}, fbtrace_id {trace or '-'}): {_advice(kind, code, transient)}",
        code=code, transient=transient, http_status=status, meta_message=meta_message, fbtrace_id=trace)


def _text(error: dict[str, Any], key: str) -> str:
    value = error.get(key)
    return value if isinstance(value, str) else ""
