"""The course certificate: its record and its codes. No I/O.

A learner who finished every module and passed the final check-up gets a ``Certificate``. It has two
secrets of different strength:

* ``code`` (``BTG-7K4M-Q9XR-H2W8``) is printed on the PDF and typed by people who want to check it at
  ``/verify/CODE``; 12 symbols from a 32-symbol alphabet without 0/O/1/I = 60 random bits. Codes issued
  before issue 7 have two groups (``BTG-7K4M-Q9XR``, 40 bits) and keep verifying: someone may hold the
  paper. 40 bits were too few for a public page: among 100,000 certificates one blind guess in 11
  million hits, and at the 859 guesses/s measured from one client that is 6-7 names a day; with 60 bits
  it is one in 10^13 guesses, and the page is rate-limited per client besides.
* ``token`` (43 URL-safe characters, 256 random bits) names the PDF at ``/certificates/TOKEN.pdf``:
  that URL is handed to the Graph API as a document link and must not be guessable.

The PDF is ``bot.certificates.pdf``, the verification page ``bot.certificates.page``; storage is
``bot.storage.certificate_store``; the HTTP routes are ``bot.web.certificates``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

CODE_PREFIX = "BTG"
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # 32 symbols: no 0/O, no 1/I
CODE_GROUPS = 3
CODE_GROUP_CHARS = 4  # 3 x 4 symbols x 5 bits = 60 random bits
LEGACY_CODE_GROUPS = 2  # codes issued until issue 7 (40 bits): never made again, found forever
TOKEN_BYTES = 32  # 256 random bits, 43 URL-safe characters
TIME_ZONE = ZoneInfo("Europe/Rome")  # the date printed is the learners' calendar day

_CODE_RE = re.compile(
    rf"{CODE_PREFIX}((?:[{CODE_ALPHABET}]{{{CODE_GROUP_CHARS}}}){{{LEGACY_CODE_GROUPS},{CODE_GROUPS}}})")
_TOKEN_RE = re.compile(rf"[A-Za-z0-9_-]{{{(TOKEN_BYTES * 4 + 2) // 3}}}")
_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December")


@dataclass(frozen=True, kw_only=True, slots=True)
class Certificate:
    """One issued certificate. ``name`` and ``business_name`` are what the learner typed (untrusted).

    ``issued_ms`` is a Unix time in milliseconds; ``score_percent`` the check-up score, 0-100;
    ``lang`` is ``"it"`` or ``"en"`` (anything else prints in Italian).
    """

    code: str
    token: str
    learner_id: str
    name: str
    business_name: str
    issued_ms: int
    score_percent: int
    lang: str = "it"


def new_code() -> str:
    """A fresh verification code, ``BTG-XXXX-XXXX-XXXX``, 60 bits from ``secrets``."""
    groups = ("".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUP_CHARS))
              for _ in range(CODE_GROUPS))
    return "-".join((CODE_PREFIX, *groups))


def new_token() -> str:
    """A fresh PDF token: 256 random bits, URL-safe base64 without padding (43 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def normalize_code(text: str) -> str | None:
    """The canonical ``BTG-XXXX-XXXX-XXXX`` for what someone typed, or None if it cannot be a code.

    Case, spaces and dashes do not matter: ``" btg 7k4m-q9xr-h2w8 "`` -> ``"BTG-7K4M-Q9XR-H2W8"``.
    The two-group codes issued before (``BTG-7K4M-Q9XR``) are read the same way.
    """
    compact = re.sub(r"[\s\-]+", "", text or "").upper()
    match = _CODE_RE.fullmatch(compact)
    if not match:
        return None
    body = match.group(1)
    groups = (body[i:i + CODE_GROUP_CHARS] for i in range(0, len(body), CODE_GROUP_CHARS))
    return "-".join((CODE_PREFIX, *groups))


def token_valid(token: str) -> bool:
    """Whether ``token`` has the shape ``new_token`` makes (checked before any lookup)."""
    return bool(_TOKEN_RE.fullmatch(token or ""))


def pdf_path(cert: Certificate) -> str:
    """Where the app serves the PDF: ``/certificates/<token>.pdf`` (prefix the public base URL)."""
    return f"/certificates/{cert.token}.pdf"


def verify_path(code: str) -> str:
    """The public verification page: ``/verify/BTG-XXXX-XXXX-XXXX``."""
    return f"/verify/{code}"


def issued_date(cert: Certificate, lang: str | None = None) -> str:
    """The issue day in Rome: ``27/11/2026`` in Italian, ``27 November 2026`` in English."""
    day = datetime.fromtimestamp(cert.issued_ms / 1000, tz=TIME_ZONE).date()
    if (lang or cert.lang) == "en":
        return f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}"
    return day.strftime("%d/%m/%Y")
