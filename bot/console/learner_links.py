"""Links to one learner's console page that name them without a look-up and without showing who they are.

A learner id holds a phone number, and URLs reach access logs and browser histories, so a page's URL
carries the id encrypted and authenticated (Fernet: AES-128-CBC + HMAC-SHA256, from the cryptography
package) under a key derived from CONSOLE_SECRET_KEY (HKDF-SHA256). Opening it costs one decryption —
no scan of 100,000 learners — and a link stops working after ``LINK_HOURS`` or when the secret changes.
The 12-character ``learner_ref`` from the logs is accepted too (found by a scan: slower, but it is what a
log line gives an admin).
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

LINK_HOURS = 24
_INFO = b"bottega console learner links"


class LearnerLinks:
    def __init__(self, secret: str, *, hours: float = LINK_HOURS):
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self._ttl = int(hours * 3600)

    def link(self, learner_id: str) -> str:
        return self._fernet.encrypt(learner_id.encode()).decode()

    def learner(self, link: str) -> str | None:
        """The learner id inside ``link``, or None (forged, from another secret, or expired)."""
        try:
            return self._fernet.decrypt(link.encode(), ttl=self._ttl).decode()
        except (InvalidToken, ValueError, UnicodeError):
            return None
