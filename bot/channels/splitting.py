"""Split a long text into parts that each fit a channel's length limit. Pure functions, no I/O.

Contract of ``split_text(text, limit)``:

* every part is non-empty, has no leading/trailing whitespace and has ``len(part) <= limit``;
* parts are contiguous pieces of ``text.strip()`` in order: nothing is dropped, reworded or
  re-spaced inside a part, only the whitespace at a cut disappears;
* cuts are made, in order of preference, between paragraphs (a blank line), between lines,
  after a sentence (``. ! ? …``, optionally followed by a closing quote or bracket, then
  whitespace), between words; a word is cut only when it alone is longer than ``limit``, and then
  never inside an emoji sequence (ZWJ, skin-tone modifier, variation selector, flag pair) or
  before a combining accent;
* parts are packed greedily: each takes as many whole pieces as fit, and a coarser boundary wins
  over a fuller part (a paragraph that does not fit starts a new part rather than being cut
  to top up the previous one).

Limits count Python characters (code points). Meta documents its limits in "characters" without
naming the unit; an emoji such as 👍🏽 is 2 code points here (and 4 UTF-16 units in a browser), so
keep lessons well under the limits rather than at them.
"""

from __future__ import annotations

import re
import unicodedata

# Separators, coarsest first. Each one is the whitespace between two pieces.
_PARAGRAPH = re.compile(r"[ \t]*\n[ \t]*\n\s*")
_LINE = re.compile(r"[ \t]*\n\s*")
# After . ! ? or … (plus an optional closing quote/bracket). "(?<!\d\.)" keeps numbered items such as
# "1. Titolo" and "nel 2024. Poi" together: a digit before the full stop is rarely a sentence end
# worth cutting at, and never one worth splitting a list marker from its item.
_SENTENCE = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"'»”’)\]]))(?<!\d\.)\s+")
_WORD = re.compile(r"\s+")
_SEPARATORS = (_PARAGRAPH, _LINE, _SENTENCE, _WORD)

_ZWJ = "\u200d"


def split_text(text: str, limit: int) -> list[str]:
    """Cut ``text`` into the fewest parts of at most ``limit`` characters; ``[]`` for blank text."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1 character, got {limit}")
    stripped = text.strip()
    if not stripped:
        return []
    return _split(stripped, limit, level=0)


def split_keeping_tail(text: str, *, limit: int, tail_limit: int) -> list[str]:
    """Like ``split_text(text, limit)``, but the last part is at most ``tail_limit`` characters.

    For a message whose last part carries buttons with a tighter body limit (WhatsApp: 1024 for
    reply buttons against 4096 for plain text): the tail is the last part of ``split_text(text,
    tail_limit)``, and what comes before it is split at ``limit``.
    """
    tail_parts = split_text(text, tail_limit)
    if len(tail_parts) <= 1:
        return tail_parts
    stripped = text.strip()
    tail = tail_parts[-1]
    head = stripped[: len(stripped) - len(tail)]  # parts are contiguous, so the tail is a suffix
    return [*split_text(head, limit), tail]


def _split(text: str, limit: int, *, level: int) -> list[str]:
    """Split stripped ``text`` using separators from ``_SEPARATORS[level]`` on down."""
    if len(text) <= limit:
        return [text]
    if level == len(_SEPARATORS):
        return _cut_word(text, limit)
    parts: list[str] = []
    current = ""  # the part being filled, possibly ending in a separator
    for piece, separator in _pieces(text, _SEPARATORS[level]):
        if len(current) + len(piece) <= limit:
            current += piece + separator
            continue
        if current.strip():
            parts.append(current.rstrip())
        current = ""
        if len(piece) > limit:
            sub = _split(piece, limit, level=level + 1)
            parts.extend(sub[:-1])
            piece = sub[-1]
        current = piece + separator
    if current.strip():
        parts.append(current.rstrip())
    return parts


def _pieces(text: str, separator: re.Pattern[str]) -> list[tuple[str, str]]:
    """``text`` as (piece, separator after it) pairs; the last separator is ``""``."""
    pieces: list[tuple[str, str]] = []
    start = 0
    for match in separator.finditer(text):
        if match.start() > start:
            pieces.append((text[start : match.start()], match.group()))
        start = match.end()
    pieces.append((text[start:], ""))
    return pieces


def _cut_word(word: str, limit: int) -> list[str]:
    """Cut one over-long word into chunks of at most ``limit``, never inside a grapheme we know of."""
    chunks: list[str] = []
    while len(word) > limit:
        cut = limit
        while cut > 1 and _joined(word, cut):
            cut -= 1
        if _joined(word, cut):  # a single cluster longer than the limit: cut it after all
            cut = limit
        chunks.append(word[:cut])
        word = word[cut:]
    if word:
        chunks.append(word)
    return chunks


def _joined(text: str, cut: int) -> bool:
    """True if cutting ``text`` before index ``cut`` would split a visible character."""
    before, after = text[cut - 1], text[cut]
    if before == _ZWJ or after == _ZWJ:
        return True
    if unicodedata.combining(after) or 0xFE00 <= ord(after) <= 0xFE0F:  # accents, variation selectors
        return True
    if 0x1F3FB <= ord(after) <= 0x1F3FF:  # skin-tone modifiers
        return True
    if _is_regional_indicator(before) and _is_regional_indicator(after):
        run = 0  # flags are pairs of regional indicators: cut only after an even number of them
        while cut - 1 - run >= 0 and _is_regional_indicator(text[cut - 1 - run]):
            run += 1
        return run % 2 == 1
    return False


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF
