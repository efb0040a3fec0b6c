"""Admins: a name, a role and an argon2id password hash, kept in Redis (``bot.storage.keys.admin_user_key``).

argon2-cffi's ``PasswordHasher`` defaults are argon2id with RFC 9106's low-memory parameters (64 MiB,
3 passes): the OWASP first choice, in C, ~50 ms a check. A hash made with older parameters is upgraded
at the next sign-in (``check_needs_rehash``). ``version`` grows whenever the password changes or the
admin is removed, and a session cookie carries the version it was made under: the old cookies stop
working at once.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from enum import IntEnum

import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bot.storage.encoding import hash_fields, text
from bot.storage.keys import ADMIN_USERS_KEY, admin_user_key

MIN_PASSWORD_CHARS = 12
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,31}")
_HASHER = PasswordHasher()
# checked against when the name is unknown, so that a wrong name costs as long as a wrong password
_DUMMY_HASH = _HASHER.hash("no such admin: the time of a real check")


class Role(IntEnum):
    """What an admin may do; each role may do what the ones below it may."""

    VIEWER = 1  # read the console and the analytics
    EDITOR = 2  # publish releases, reset a learner's module, broadcast
    OWNER = 3  # export and erase learners, see phone numbers, manage admins

    @classmethod
    def named(cls, name: str) -> Role:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise UserError(f"unknown role {name!r}; use viewer, editor or owner") from None

    @property
    def label(self) -> str:
        return self.name.lower()


class UserError(ValueError):
    """A name, role or password that cannot be used; the message says what to do instead."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AdminUser:
    name: str
    role: Role
    version: int  # of the password: a session made under another version is void
    created_ms: int = 0

    def may(self, role: Role) -> bool:
        return self.role >= role


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise UserError(f"admin name {name!r}: use 2-32 lowercase letters, digits, '.', '_' or '-'")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    return password


class Users:
    def __init__(self, client: redis.Redis):
        self.client = client

    def add(self, name: str, role: Role, password: str, *, now_ms: int | None = None) -> AdminUser:
        """A new admin; ``UserError`` if the name is taken or the name or password will not do."""
        check_name(name)
        check_password(password)
        key = admin_user_key(name)
        created = now_ms if now_ms is not None else int(time.time() * 1000)
        fields = {"name": name, "role": role.label, "hash": _HASHER.hash(password), "version": "1",
                  "created_ms": str(created)}
        if not self.client.hsetnx(key, "name", name):
            raise UserError(f"there is already an admin named {name!r}")
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(key, mapping=hash_fields(fields))
        pipe.sadd(ADMIN_USERS_KEY, name)
        pipe.execute()
        return AdminUser(name=name, role=role, version=1, created_ms=created)

    def get(self, name: str) -> AdminUser | None:
        if not name or not _NAME.fullmatch(name):
            return None
        return _user(self.client.hgetall(admin_user_key(name)))

    def every(self) -> list[AdminUser]:
        names = sorted(text(name) for name in self.client.smembers(ADMIN_USERS_KEY))
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(admin_user_key(name))
        return [user for user in (_user(raw) for raw in pipe.execute()) if user is not None]

    def authenticate(self, name: str, password: str) -> AdminUser | None:
        """The admin if ``password`` is theirs, else None (always one argon2 check, known name or not)."""
        raw = self.client.hgetall(admin_user_key(name)) if _NAME.fullmatch(name or "") else {}
        user = _user(raw)
        stored = text(raw.get(b"hash")) if user else _DUMMY_HASH
        try:
            _HASHER.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if user is None:
            return None
        if _HASHER.check_needs_rehash(stored):
            self.client.hset(admin_user_key(name), "hash", _HASHER.hash(password))
        return user

    def set_role(self, name: str, role: Role) -> None:
        if self.get(name) is None:
            raise UserError(f"no admin named {name!r}")
        self.client.hset(admin_user_key(name), "role", role.label)

    def set_password(self, name: str, password: str) -> None:
        check_password(password)
        if self.get(name) is None:
            raise UserError(f"no admin named {name!r}")
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(admin_user_key(name), "hash", _HASHER.hash(password))
        pipe.hincrby(admin_user_key(name), "version", 1)
        pipe.execute()

    def remove(self, name: str) -> bool:
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(admin_user_key(name))
        pipe.srem(ADMIN_USERS_KEY, name)
        return bool(pipe.execute()[0])

    def owners(self) -> int:
        return sum(1 for user in self.every() if user.role is Role.OWNER)


def _user(raw: dict) -> AdminUser | None:
    values = {text(k): text(v) for k, v in raw.items()}
    if not values.get("hash") or not values.get("name"):
        return None
    try:
        return AdminUser(name=values["name"], role=Role.named(values.get("role", "")),
                         version=int(values.get("version") or 1), created_ms=int(values.get("created_ms") or 0))
    except (UserError, ValueError):
        return None
