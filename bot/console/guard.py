"""Who is asking, and may they: the session cookie, CSRF tokens, sign-in rate limiting, roles, headers.

Sessions are Flask's signed cookies (itsdangerous, HMAC-SHA1 over CONSOLE_SECRET_KEY-derived keys):
``Secure``, ``HttpOnly``, ``SameSite=Strict``, lasting ``console_session_hours``. The cookie holds the
admin's name, the version of their password it was made under and a CSRF token; every request reads the
admin back from Redis (one HGETALL), so a removed admin or a changed password ends old sessions at once
and a role change applies to the next click.

Every POST of the console — sign-in included — must carry the session's CSRF token in the form field
``csrf_token``; without it: 400, nothing done. The token is compared in constant time.

Sign-in: wrong passwords are counted per client address and per admin name in one-minute windows in
Redis (every web process shares the count); once either count reaches
``console_login_failures_per_minute`` (10), further attempts in that minute are refused (429) before any
password is checked — the 11th wrong password within a minute is refused.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from typing import Any

import redis
from flask import Response, abort, g, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from redis.cluster import RedisCluster

from bot.console.users import AdminUser, Role, Users
from bot.model.client_address import counted_client
from bot.storage import pipelined_script
from bot.storage.keys import admin_login_failures_key

View = Callable[..., ResponseReturnValue]
CSRF_FIELD = "csrf_token"
LOGIN_WINDOW_SECONDS = 60
SESSION_NAME, SESSION_VERSION, SESSION_CSRF = "admin", "version", "csrf"
# no inline script or style anywhere in the console: its one stylesheet is a file
CONSOLE_POLICY = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
                  "frame-ancestors 'none'; base-uri 'none'")
HTML_HEADERS = {"Content-Security-Policy": CONSOLE_POLICY, "X-Frame-Options": "DENY",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}


def csrf_token() -> str:
    """This session's CSRF token (made on first use; the sign-in page makes one before anyone signs in)."""
    token = session.get(SESSION_CSRF)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[SESSION_CSRF] = token
    return token


def csrf_valid() -> bool:
    expected = session.get(SESSION_CSRF)
    sent = request.form.get(CSRF_FIELD, "")
    return isinstance(expected, str) and bool(expected) and hmac.compare_digest(expected.encode(), sent.encode())


def current_user(users: Users) -> AdminUser | None:
    """The signed-in admin, read from Redis once per request; None when the session is void."""
    if "console_user" in g:
        cached: AdminUser | None = g.console_user
        return cached
    user = users.get(str(session.get(SESSION_NAME, "")))
    if user is not None and session.get(SESSION_VERSION) != user.version:
        user = None
    g.console_user = user
    return user


def sign_in(user: AdminUser) -> None:
    session.clear()  # a fresh session (and CSRF token) at every sign-in: no fixation
    session.permanent = True
    session[SESSION_NAME] = user.name
    session[SESSION_VERSION] = user.version
    csrf_token()


def sign_out() -> None:
    session.clear()


def require(users: Users, role: Role) -> Callable[[View], View]:
    """A view decorator: signed in (else to the sign-in page), the CSRF token on a POST (else 400), and at
    least ``role`` (else 403)."""
    def decorate(view: View) -> View:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            user = current_user(users)
            if user is None:
                return redirect(url_for("console.login", next=request.full_path.rstrip("?")), 303)
            if request.method == "POST" and not csrf_valid():
                abort(400, description="This form has expired or did not come from the console: reload the "
                                       "page and try again.")
            if not user.may(role):
                abort(403, description=f"This needs the {role.label} role; you are {user.role.label}.")
            return view(*args, **kwargs)
        return guarded
    return decorate


# One more wrong password in the window that the first one opened (a counter never lives without its TTL).
_COUNT_FAILURE = """
local count = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


class LoginLimiter:
    """Wrong passwords per client address and per admin name, in one-minute windows, in Redis."""

    def __init__(self, client: redis.Redis, limit: int):
        self.client, self.limit = client, limit
        self._count = client.register_script(_COUNT_FAILURE)

    @staticmethod
    def subjects(name: str) -> list[str]:
        """The counters a sign-in as ``name`` adds to: its client's address (behind TRUSTED_PROXIES, what
        ProxyFix read; an IPv6 client by its /64) and the name's."""
        address = counted_client(request.remote_addr)
        return [admin_login_failures_key(f"addr:{address}"), admin_login_failures_key(f"name:{name[:64]}")]

    def refused(self, name: str) -> bool:
        pipe = self.client.pipeline(transaction=False)  # not MGET: the keys may live in two hash slots
        for key in self.subjects(name):
            pipe.get(key)
        return any(int(count or 0) >= self.limit for count in pipe.execute())

    def failed(self, name: str) -> None:
        if isinstance(self.client, RedisCluster):  # its pipeline cannot load a script a node lacks (NOSCRIPT)
            for key in self.subjects(name):
                self._count(keys=[key], args=[LOGIN_WINDOW_SECONDS])
            return
        pipe = self.client.pipeline(transaction=False)
        queued = [(pipelined_script.queue(pipe, self._count, [key], [LOGIN_WINDOW_SECONDS]), key)
                  for key in self.subjects(name)]  # one key per script: each may live in its own hash slot
        results = pipe.execute(raise_on_error=False)
        pipelined_script.raise_errors(results, but=[index for index, _ in queued])
        for index, key in queued:
            pipelined_script.settle(results, index, self._count, [key], [LOGIN_WINDOW_SECONDS])


def add_headers(response: Response) -> Response:
    for name, value in HTML_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
