"""Webhook security: the payload signature and the verify token. Pure functions, no I/O.

Contract:

* ``signature_valid(secret, raw_body, header_value)`` is True only when ``header_value`` is exactly
  ``sha256=<64 hex digits>`` and the digits equal HMAC-SHA256(secret, raw_body). It checks the raw
  request bytes as received: Meta signs its escaped-unicode JSON, so re-serialised JSON would not
  match. It fails closed: an empty secret, a missing or malformed header, the legacy
  ``sha1=`` form or a body that is not bytes all give False, never an exception.
* ``verify_token_valid(expected, given)`` compares the GET handshake token in constant time; an empty
  expected token never matches (a deployment without one must not accept any).
* ``sign(secret, raw_body)`` returns the full header value Meta would send; the tests, the simulator
  and the benchmark use it to build signed requests.

Both comparisons go through ``hmac.compare_digest`` on bytes, so their time does not depend on how
many leading characters match.
"""

from __future__ import annotations

import hashlib
import hmac
import re

SIGNATURE_HEADER = "X-Hub-Signature-256"
SIGNATURE_PREFIX = "sha256="

# Meta sends lowercase hex; accepting either case costs nothing, the digest itself is what counts.
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


def sign(secret: str, raw_body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value for ``raw_body``: ``sha256=`` + lowercase hex HMAC-SHA256.

    Raises ValueError for an empty secret: a signature made with no key proves nothing, and
    ``signature_valid`` would reject it anyway.
    """
    if not secret:
        raise ValueError("cannot sign with an empty secret; pass the Meta app secret")
    return SIGNATURE_PREFIX + _hex_digest(secret, bytes(raw_body))


def signature_valid(secret: str, raw_body: bytes, header_value: str | None) -> bool:
    """True when ``header_value`` is a correct ``sha256=<hex>`` signature of the raw body bytes."""
    if not secret or not isinstance(header_value, str):
        return False
    if not isinstance(raw_body, bytes | bytearray | memoryview):
        return False
    given_hex = _hex_part(header_value)
    if given_hex is None:
        return False
    expected_hex = _hex_digest(secret, bytes(raw_body))
    return hmac.compare_digest(expected_hex.encode("ascii"), given_hex.lower().encode("ascii"))


def verify_token_valid(expected: str, given: str | None) -> bool:
    """True when the handshake's ``hub.verify_token`` equals our token; never for an empty token."""
    if not expected or not isinstance(given, str):
        return False
    # Encode first: compare_digest refuses non-ASCII str, and a token may contain any character.
    return hmac.compare_digest(_utf8(expected), _utf8(given))


def _hex_part(header_value: str) -> str | None:
    """The 64 hex digits after ``sha256=``, or None for any other shape (``sha1=...`` included)."""
    if not header_value.startswith(SIGNATURE_PREFIX):
        return None
    digits = header_value[len(SIGNATURE_PREFIX) :]
    if _HEX_DIGEST.fullmatch(digits) is None:
        return None
    return digits


def _hex_digest(secret: str, raw_body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()


def _utf8(text: str) -> bytes:
    # surrogatepass: values decoded with surrogateescape (environment, query strings) still encode.
    return text.encode("utf-8", "surrogatepass")
