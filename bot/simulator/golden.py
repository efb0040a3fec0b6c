""""Save as golden conversation": one phone's session as a transcript ``bottega flows test`` replays.

The format is ``bot/dev/transcripts.py``'s: each thing the learner did is a turn (``send``, ``tap``, or
``tap_old`` for a button of an older message; a move of the test clock is ``wait``), and what Bottega
answered becomes its ``expect``: the first line of the first answer (``contains``) and the titles of
the last message that offered choices (``choices``), read through the channel's ``describe`` exactly as
the replay reads them. The replay meets a brand-new learner on the same channel, on the working flows
folder.

Honest about timing: replies are sent asynchronously, so a turn taken while its predecessor's replies
were still waiting in the outbox (``Entry.settled`` false) cannot say which replies were whose; the
turn before it is then written without ``expect``, with a comment saying why.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.simulator.phones import Line, PhoneView
from bot.simulator.session import Action

FRAGMENT_CHARS = 60  # a ``contains`` fragment: the start of the first answer's first line


@dataclass(frozen=True, kw_only=True, slots=True)
class Golden:
    name: str
    turns: int
    text: str  # the YAML


def transcript(view: PhoneView, *, name: str, session: str) -> Golden:
    """The transcript of ``view``'s learner; ``ValueError`` if they did nothing yet."""
    turns: list[dict[str, Any]] = []
    unsure: list[int] = []  # turn numbers written without expect
    current: dict[str, Any] | None = None
    answers: list[Line] = []
    for line in view.lines:
        if line.entry is None:
            answers.append(line)
            continue
        if current is not None:
            if line.entry.settled:
                _expect(view, current, answers)
            else:
                unsure.append(len(turns) + 1)
            turns.append(current)
        current, answers = _turn(line), []
    if current is None:
        raise ValueError("this learner did nothing yet: write or tap something first")
    _expect(view, current, answers)
    turns.append(current)
    document = {"name": name, "channels": [view.parts.channel.name], "turns": turns}
    header = [f"# Recorded in the simulator (session {session}, {view.parts.title}) on "
              f"{time.strftime('%Y-%m-%d %H:%M')}.",
              "# Replay: bottega flows test <this file>. Expectations are the first line of each answer and the",
              "# choices offered; edit them freely."]
    if unsure:
        numbers = ", ".join(str(number) for number in unsure)
        header.append(f"# Turns {numbers} (counting from 1): the learner acted before their replies had all "
                      "arrived, so they have no expect.")
    body = yaml.dump(document, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=120)
    return Golden(name=name, turns=len(turns), text="\n".join(header) + "\n" + body)


class _Dumper(yaml.SafeDumper):
    """Block style, except lists of words, which read best on one line: ``choices: [Italiano, English]``."""


def _list(dumper: yaml.SafeDumper, items: list[Any]) -> yaml.Node:
    words = all(isinstance(item, str) for item in items)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=words)


_Dumper.add_representer(list, _list)


def _turn(line: Line) -> dict[str, Any]:
    entry = line.entry
    assert entry is not None
    if entry.action == Action.CLOCK:
        seconds = entry.seconds
        return {"wait": int(seconds) if float(seconds).is_integer() else seconds}
    if entry.action == Action.TAP:
        return {"tap" if entry.latest else "tap_old": entry.text}
    return {"send": entry.text}


def _expect(view: PhoneView, turn: dict[str, Any], answers: list[Line]) -> None:
    shown = [view.parts.describe(line.body) for line in answers if line.bubble is not None]
    shown = [item for item in shown if item.text or item.options]
    if not shown:
        return
    expect: dict[str, Any] = {}
    first = next((item.text.strip().splitlines()[0] for item in shown if item.text.strip()), "")
    fragment = _fragment(first)
    if fragment:
        expect["contains"] = [fragment]
    offered = next((item.options for item in reversed(shown) if item.options), ())
    if offered:
        expect["choices"] = [title for _, title in offered]
    if expect:
        turn["expect"] = expect


def _fragment(line: str) -> str:
    """The start of ``line``, cut at a word boundary within ``FRAGMENT_CHARS`` (still an exact substring)."""
    line = line.strip()
    if len(line) <= FRAGMENT_CHARS:
        return line
    cut = line[:FRAGMENT_CHARS]
    return cut[:cut.rfind(" ")].rstrip() if " " in cut else cut


def file_name(name: str, folder: Path) -> Path:
    """A new file in ``folder`` named after ``name`` (never an existing one)."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:60] or "simulator"
    path, number = folder / f"{slug}.yaml", 2
    while path.exists():
        path, number = folder / f"{slug}_{number}.yaml", number + 1
    return path
