"""How Bottega reads what a learner types: case, accents and punctuation ignored. No I/O."""

from __future__ import annotations

import re
import unicodedata

_NUMBER = re.compile(r"[0-9]{1,3}")  # an option typed by its number: ASCII digits ("፩".isdigit() is True too)


def normalise(text: str) -> str:
    """Lowercase, without accents, punctuation or extra spaces: ' Aiùto!! ' -> 'aiuto'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", plain).split())


def option_number(words: str) -> int:
    """The option number a learner typed ("2" -> 2), or 0 when ``words`` is not a small ASCII number."""
    return int(words) if _NUMBER.fullmatch(words) else 0
