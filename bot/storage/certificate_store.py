"""Issued certificates in Redis: one hash per certificate, found by code, by PDF token or by learner.

Keys come from ``bot.storage.keys`` (``certificate_key``, ``certificate_token_key``, ``certificate_learner_key``);
they never expire: a certificate must verify for as long as someone may hold the paper.
The three keys live in different hash slots (sharded: ``bot.storage.keys.shard_of``), so ``save`` writes the
record first and its two pointers after it: a pointer never names a missing record, and a crash between
leaves a record nobody points at (harmless; the learner's next request issues one). Readers check that the
record matches the pointer. Keys written before the shards are read as a fallback.

``revoke`` (erasing a learner: ``bot.privacy``) replaces the record by a tombstone that keeps only the
code and when it was revoked — no name, no learner id — and drops the token (the PDF is gone): ``/verify``
then says "revoked" rather than "not found", so whoever holds the paper learns it no longer stands.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis

from bot.certificates.model import Certificate, normalize_code, token_valid
from bot.storage.encoding import hash_fields, text
from bot.storage.keys import (
    CERTIFICATE_PREFIX,
    certificate_key,
    certificate_learner_key,
    certificate_record_pattern,
    certificate_token_key,
    legacy_certificate_keys,
)

REVOKED_FIELD = "revoked_ms"  # the only field besides ``code`` of a revoked certificate's hash
_FIELDS = ("code", "token", "learner_id", "name", "business_name", "issued_ms", "score_percent", "lang")


def to_hash(cert: Certificate) -> dict[str, str]:
    """The Redis hash of a certificate: every field as a string."""
    return {name: str(getattr(cert, name)) for name in _FIELDS}


def from_hash(raw: Mapping[bytes | str, bytes | str]) -> Certificate | None:
    """The certificate in a hash read back from Redis, or None if empty or incomplete."""
    values = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
              for k, v in raw.items()}
    if any(name not in values for name in _FIELDS):
        return None
    try:
        issued_ms, score = int(values["issued_ms"]), int(values["score_percent"])
    except ValueError:
        return None
    return Certificate(code=values["code"], token=values["token"], learner_id=values["learner_id"],
                       name=values["name"], business_name=values["business_name"], issued_ms=issued_ms,
                       score_percent=score, lang=values["lang"])


def save(client: redis.Redis, cert: Certificate) -> None:
    """Store ``cert``, then its token and learner indexes (the module docstring says why in that order).

    ``cert.code`` must be canonical (as ``new_code`` makes it). New codes have 60 random bits: among
    100,000 certificates the chance that a new one repeats an old code is about 1 in 10^13; a caller
    that wants certainty checks ``by_code`` first.
    """
    if normalize_code(cert.code) != cert.code:
        raise ValueError(f"certificate code {cert.code!r} is not canonical; expected BTG-XXXX-XXXX-XXXX "
                         "from bot.certificates.model.new_code()")
    if not token_valid(cert.token):
        raise ValueError("certificate token has the wrong shape; make it with bot.certificates.model.new_token()")
    client.hset(certificate_key(cert.code), mapping=hash_fields(to_hash(cert)))  # the record first
    pipe = client.pipeline(transaction=False)
    pipe.set(certificate_token_key(cert.token), cert.code)
    pipe.set(certificate_learner_key(cert.learner_id), cert.code)
    pipe.execute()


def by_code(client: redis.Redis, code: str) -> Certificate | None:
    """The certificate with this code as a person typed it (any case, spaces or dashes), or None."""
    canonical = normalize_code(code)
    if canonical is None:
        return None  # not even the shape of a code: no round trip
    return from_hash(client.hgetall(certificate_key(canonical))
                     or client.hgetall(legacy_certificate_keys("code", canonical)))


def lookup(client: redis.Redis, code: str) -> Certificate | int | None:
    """``by_code`` that also tells a revoked code: the certificate, the revocation time (ms), or None."""
    canonical = normalize_code(code)
    if canonical is None:
        return None
    raw = client.hgetall(certificate_key(canonical)) or client.hgetall(legacy_certificate_keys("code", canonical))
    revoked = {text(name): text(value) for name, value in raw.items()}.get(REVOKED_FIELD)
    if revoked is not None:
        return int(revoked or 0)
    return from_hash(raw)


def codes_of(client: redis.Redis, learner_id: str, *, scan: bool = True,
             record_keys: list[str] | None = None) -> list[str]:
    """The codes of every certificate issued to ``learner_id``: the latest by its pointer; with ``scan``,
    also older ones, found by reading every certificate record (few: one per graduate) — those under
    ``record_keys`` when the caller already listed them, else found by a SCAN."""
    codes = []
    latest = client.get(certificate_learner_key(learner_id)) or \
        client.get(legacy_certificate_keys("learner", learner_id))
    if latest is not None:
        codes.append(text(latest))
    if scan:
        keys = record_keys if record_keys is not None else \
            [text(key) for key in client.scan_iter(match=certificate_record_pattern(), count=1000)]
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, "learner_id", "code")
        for owner, code in pipe.execute():
            if text(owner) == learner_id and text(code) and text(code) not in codes:
                codes.append(text(code))
    return codes


def is_record_key(key: str) -> bool:
    """``key`` is a certificate record (``certificate_key``), as a caller scanning every key meets it."""
    return key.startswith(f"{CERTIFICATE_PREFIX}:") and ":code:" in key


def revoke(client: redis.Redis, code: str, *, now_ms: int) -> bool:
    """Revoke the certificate ``code``: its token goes first (the PDF is gone), then the record becomes
    ``{code, revoked_ms}`` (one MULTI/EXEC on the record's slot), then the learner pointer goes; the same for
    keys written before the shards. False if there is no such certificate (or it was revoked already)."""
    cert = by_code(client, code)
    if cert is None:
        return False
    client.delete(certificate_token_key(cert.token))
    client.delete(legacy_certificate_keys("token", cert.token))
    pipe = client.pipeline(transaction=True)
    pipe.delete(certificate_key(cert.code))
    pipe.hset(certificate_key(cert.code), mapping={"code": cert.code, REVOKED_FIELD: str(now_ms)})
    pipe.execute()
    client.delete(legacy_certificate_keys("code", cert.code))
    for pointer in (certificate_learner_key(cert.learner_id), legacy_certificate_keys("learner", cert.learner_id)):
        if text(client.get(pointer)) == cert.code:
            client.delete(pointer)
    return True


def by_token(client: redis.Redis, token: str) -> Certificate | None:
    """The certificate whose PDF is at ``/certificates/<token>.pdf``, or None."""
    if not token_valid(token):
        return None
    code = client.get(certificate_token_key(token)) or client.get(legacy_certificate_keys("token", token))
    if code is None:
        return None
    cert = by_code(client, code.decode() if isinstance(code, bytes) else code)
    return cert if cert is not None and cert.token == token else None


def by_learner(client: redis.Redis, learner_id: str) -> Certificate | None:
    """The latest certificate issued to ``learner_id``, or None (to re-send it rather than issue another)."""
    code = client.get(certificate_learner_key(learner_id)) or client.get(legacy_certificate_keys("learner", learner_id))
    if code is None:
        return None
    return by_code(client, code.decode() if isinstance(code, bytes) else code)
