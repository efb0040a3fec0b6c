"""Golden conversations (``flows/tests/*.yaml``): replay a learner's turns and check what Bottega says.

Unlike the flow readers, this is a tool that does I/O: it talks through ``bot.dev.chat.Chat`` (the real
Dispatcher, Redis store, engine and channel renderer) on a real Redis. The format::

    name: "Module 1 in Italian, all answers right"
    channels: [whatsapp, messenger]   # optional, default every channel: replayed once per channel
    user: "3933300"                   # optional: the learner id's prefix (digits); every replay appends
                                      # random digits, so each one meets a brand-new learner
    turns:
      - send: ciao                    # the learner writes text (a number like "2" is read by Bottega)
        expect:
          contains: ["Sono Bottega"]  # fragments that must appear somewhere in this turn's replies
          choices: [Italiano, English]  # exactly the option titles of the turn's last message with options
      - tap: Italiano                 # tap the option on screen whose title is exactly this
      - tap: 2                        # or the 2nd option on screen
      - tap_old: Iniziamo             # tap an earlier message's button that is no longer on screen
      - tap_any: ["Sì", "Non mi serve"]  # tap the first title of this list that is on screen (a
                                      # check-up's questions come in a random order per learner)
      - media: image                  # image | audio | video | document | sticker | location
      - wait: 1200                    # let seconds pass on Bottega's clock: due timers fire (check-up)
      - tap: 1                        # ``repeat: 22`` does the action 22 times; ``expect`` checks all replies
        repeat: 22
        expect:
          text: "exact text of one reply message"
          not_contains: ["Giusto"]    # fragments that must not appear in this turn's replies

A turn does exactly one of ``send``, ``tap``, ``tap_any``, ``tap_old``, ``media``, ``wait``; ``expect`` is optional (its
keys: ``contains``, ``not_contains``, ``text``, ``choices``; ``choices: []`` means no options;
``silent: true``: no answer at all). A
fragment or ``contains`` may be one string or a list. Tapping something not on screen is a failure.

* ``read_transcript(path) -> Transcript``; a malformed file raises ``TranscriptError`` whose
  problems name file, line, column and fix (``bot.flows.problems.Problem``).
* ``run_transcript(path, *, client, course, settings) -> list[TranscriptResult]``: one per channel;
  a result's ``failures`` are readable: turn number and line, what was sent, expected vs. the
  messages of that turn (a unified diff for ``text``).
* ``main(paths, *, flows_dir=None, out=sys.stdout) -> int``: ``bottega flows test``; prints
  ``PASS name [channel]`` / ``FAIL name [channel]`` with the failures and a summary; 0 if all pass.
"""

from __future__ import annotations

import difflib
import io
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import yaml

from bot import channels
from bot.channels.body_checks import Shown
from bot.dev.chat import Chat
from bot.flows.problems import Problem
from bot.flows.yaml_reader import NodeReader
from bot.model.errors import ToolError
from bot.model.events import Channel, EventKind

if TYPE_CHECKING:
    import redis

    from bot.flows.spec import Course
    from config.settings import Settings

ACTIONS = ("send", "tap", "tap_any", "tap_old", "media", "wait")
EXPECT_KEYS = ("contains", "not_contains", "text", "choices", "silent")
MEDIA_KINDS = ("image", "audio", "video", "document", "sticker", "location")
RANDOM_DIGITS = 8


@dataclass(frozen=True, kw_only=True, slots=True)
class Expect:
    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    text: str | None = None
    choices: tuple[str, ...] | None = None
    silent: bool = False  # Bottega answers nothing to this turn


@dataclass(frozen=True, kw_only=True, slots=True)
class Turn:
    action: str  # one of ACTIONS
    value: str | int | tuple[str, ...]  # the text, the option title (or 1-based number), the titles, the media kind
    expect: Expect
    line: int  # 1-based, in the transcript file
    repeat: int = 1  # the action is done this many times; ``expect`` is checked on all their replies

    def __str__(self) -> str:
        return f"{self.action}: {self.value!r}" + (f" ×{self.repeat}" if self.repeat > 1 else "")


@dataclass(frozen=True, kw_only=True, slots=True)
class Transcript:
    name: str
    channels: tuple[Channel, ...]
    user: str
    turns: tuple[Turn, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class TranscriptResult:
    name: str
    channel: Channel
    source: str
    failures: tuple[str, ...] = ()  # one readable block per failed turn

    @property
    def passed(self) -> bool:
        return not self.failures


class TranscriptError(ToolError):
    """The transcript file is malformed; ``problems`` name file, line and column of each mistake."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.line, p.column))
        super().__init__("\n".join(str(problem) for problem in self.problems))


# --- reading -----------------------------------------------------------------------------------


def read_transcript(path: Path | str) -> Transcript:
    reader = NodeReader(str(path))
    root = reader.compose(Path(path).read_text(encoding="utf-8"))
    if root is None and not reader.problems:
        reader.problem(None, "the transcript is empty", "write 'name:' and 'turns:' (see bot/transcripts.py)")
    fields = reader.mapping(root, where="the transcript", required=("name", "turns"),
                            optional=("channels", "user")) if root is not None else None
    name, user, played_on, turns = "", "", tuple(parts.channel for parts in channels.every()), []
    if fields:
        if "name" in fields:
            name = reader.scalar(fields["name"], where="name") or ""
        if "user" in fields:
            user = reader.scalar(fields["user"], where="user") or ""
            if user and not user.isdigit():
                reader.problem(fields["user"], f"user '{user}' is not all digits", "write digits, like \"3933300\"")
        if "channels" in fields:
            played_on = tuple(_channels(reader, fields["channels"]))
        for node in (reader.sequence(fields["turns"], where="turns") or []) if "turns" in fields else []:
            turn = _turn(reader, node)
            if turn is not None:
                turns.append(turn)
        if "turns" in fields and not turns and not reader.problems:
            reader.problem(fields["turns"], "the transcript has no turns", "add '- send: ciao'")
    if reader.problems:
        raise TranscriptError(reader.problems)
    return Transcript(name=name, channels=played_on, user=user, turns=tuple(turns))


def _channels(reader: NodeReader, node: yaml.Node) -> list[Channel]:
    named = {parts.channel.name: parts.channel for parts in channels.every()}
    found = []
    for item in reader.sequence(node, where="channels") or []:
        value = reader.scalar(item, where="a channel")
        if value in named:
            found.append(named[value])
        elif value is not None:
            reader.problem(item, f"unknown channel '{value}'", f"use one of: {', '.join(named)}")
    return found


def _turn(reader: NodeReader, node: yaml.Node) -> Turn | None:
    fields = reader.mapping(node, where="a turn", optional=(*ACTIONS, "expect", "repeat"))
    if fields is None:
        return None
    actions = [name for name in ACTIONS if name in fields]
    if len(actions) != 1:
        found = " and ".join(actions) or "none of them"
        reader.problem(node, f"a turn does exactly one of {', '.join(ACTIONS)}; this one has {found}",
                       "split it into turns, one action each")
        return None
    action, value_node = actions[0], fields[actions[0]]
    expect = _expect(reader, fields["expect"]) if "expect" in fields else Expect()
    repeat = reader.integer(fields["repeat"], where="repeat", minimum=1) if "repeat" in fields else 1
    if action == "tap_any":
        titles = _strings(reader, value_node, "tap_any", single=False)
        if not titles:
            reader.problem(value_node, "tap_any lists no title", "write tap_any: [\"Sì\", \"Non mi serve\"]")
        return Turn(action=action, value=titles, expect=expect, line=node.start_mark.line + 1, repeat=repeat or 1)
    value: str | int | None = reader.scalar(value_node, where=action)
    if value is None:
        return None
    if action == "tap" and value_node.tag == "tag:yaml.org,2002:int":
        value = int(value)
        if value < 1:
            reader.problem(value_node, f"tap: {value} is not an option number", "options count from 1")
    elif action == "wait" and not str(value).replace(".", "", 1).isdigit():
        reader.problem(value_node, f"wait: {value} is not a number of seconds", "write e.g. wait: 600")
    elif action == "media" and value not in MEDIA_KINDS:
        reader.problem(value_node, f"unknown media '{value}'", f"use one of: {', '.join(MEDIA_KINDS)}")
    elif not str(value).strip():
        reader.problem(value_node, f"{action} is empty", "write what the learner sends")
    return Turn(action=action, value=value, expect=expect, line=node.start_mark.line + 1, repeat=repeat or 1)


def _expect(reader: NodeReader, node: yaml.Node) -> Expect:
    fields = reader.mapping(node, where="expect", optional=EXPECT_KEYS) or {}
    text = reader.scalar(fields["text"], where="expect text") if "text" in fields else None
    choices = _strings(reader, fields["choices"], "expect choices", single=False) if "choices" in fields else None
    silent = reader.scalar(fields["silent"], where="expect silent") if "silent" in fields else "false"
    if silent not in ("true", "false"):
        reader.problem(fields["silent"], f"expect silent is {silent!r}", "write silent: true (or leave it out)")
    return Expect(contains=_strings(reader, fields.get("contains"), "expect contains"),
                  not_contains=_strings(reader, fields.get("not_contains"), "expect not_contains"),
                  text=text.strip() if text is not None else None, choices=choices, silent=silent == "true")


def _strings(reader: NodeReader, node: yaml.Node | None, where: str, single: bool = True) -> tuple[str, ...]:
    if node is None:
        return ()
    one = single and isinstance(node, yaml.ScalarNode)
    items = [node] if one else reader.sequence(node, where=where) or []
    values = (reader.scalar(item, where=f"an item of {where}") for item in items)
    return tuple(value for value in values if value is not None)


# --- replaying ---------------------------------------------------------------------------------


class _TurnFailed(Exception):
    """The turn's action could not be done (e.g. tapping an option that is not on screen)."""


def run_transcript(path: Path | str, *, client: redis.Redis, course: Course,
                   settings: Settings) -> list[TranscriptResult]:
    """Replay the transcript once per channel, each time as a new learner; raise ``TranscriptError``."""
    transcript = read_transcript(path)
    results = []
    for channel in transcript.channels:
        suffix = f"{uuid.uuid4().int % 10**RANDOM_DIGITS:0{RANDOM_DIGITS}d}"
        user = (transcript.user or channels.parts_for(channel).dev.transcript_user) + suffix
        chat = Chat(client=client, course=course, settings=settings, channel=channel, user_id=user,
                    out=io.StringIO())
        failures: list[str] = []
        for number, turn in enumerate(transcript.turns, start=1):
            start = len(chat.transcript)
            heading = f"turn {number} (line {turn.line}), {turn}"
            try:
                _act(chat, turn)
            except Exception as error:  # the action was impossible, or Bottega itself failed (a renderer's ValueError)
                crash = "" if isinstance(error, _TurnFailed) else f"Bottega raised {type(error).__name__}: "
                failures.append(f"{heading}\n  {crash}{error}\n  (the replay stops here)")
                break
            problems = _check(turn.expect, chat.transcript[start:])
            if problems:
                failures.append("\n".join([heading, *problems, *_listing(chat.transcript[start:])]))
        results.append(TranscriptResult(name=transcript.name, channel=channel, source=str(path),
                                        failures=tuple(failures)))
    return results


def _act(chat: Chat, turn: Turn) -> None:
    for _ in range(turn.repeat):
        _act_once(chat, turn)


def _act_once(chat: Chat, turn: Turn) -> None:
    on_screen = chat.shown_options
    if turn.action == "wait":
        chat.advance(float(str(turn.value)))
    elif turn.action == "send":
        chat.send(kind=EventKind.TEXT, text=str(turn.value))
    elif turn.action == "media":
        chat.send(kind=EventKind.MEDIA)  # the engine answers every media kind alike
    elif turn.action == "tap" and isinstance(turn.value, int):
        if turn.value > len(on_screen):
            raise _TurnFailed(f"there is no option {turn.value}; on screen: {_titles(on_screen)}")
        chat.send(kind=EventKind.CHOICE, payload=on_screen[turn.value - 1][0], text=on_screen[turn.value - 1][1])
    elif turn.action == "tap_any":
        assert isinstance(turn.value, tuple)
        by_title = {title: option_id for option_id, title in on_screen}
        title = next((title for title in turn.value if title in by_title), None)
        if title is None:
            raise _TurnFailed(f"none of {list(turn.value)} is on screen; the options are {_titles(on_screen)}")
        chat.send(kind=EventKind.CHOICE, payload=by_title[title], text=title)
    elif turn.action == "tap":
        for option_id, title in on_screen:
            if title == turn.value:
                chat.send(kind=EventKind.CHOICE, payload=option_id, text=title)
                return
        raise _TurnFailed(f"{turn.value!r} is not on screen; the options are {_titles(on_screen)}")
    else:  # tap_old: the most recent earlier button with that title that is no longer on screen
        current = {option_id for option_id, _ in on_screen}
        for shown in reversed(chat.transcript):
            for option_id, title in shown.options:
                if title == turn.value and option_id not in current:
                    chat.send(kind=EventKind.CHOICE, payload=option_id, text=title)
                    return
        raise _TurnFailed(f"no earlier message offered {turn.value!r} (apart from the options on screen)")


def _check(expect: Expect, messages: list[Shown]) -> list[str]:
    joined = "\n".join(shown.text for shown in messages)
    problems = [f"  expected to contain: {fragment!r}" for fragment in expect.contains if fragment not in joined]
    problems += [f"  expected NOT to contain: {fragment!r}" for fragment in expect.not_contains
                 if fragment in joined]
    if expect.text is not None and expect.text not in [shown.text.strip() for shown in messages]:
        problems.append(f"  expected a message with exactly this text:\n{_diff(expect.text, messages)}")
    if expect.silent and messages:
        problems.append(f"  expected no answer, got {len(messages)} message(s)")
    if expect.choices is not None:
        offered = next((shown.options for shown in reversed(messages) if shown.options), ())
        titles = [title for _, title in offered]
        if titles != list(expect.choices):
            problems.append(f"  expected choices: {list(expect.choices)}\n  offered choices:  {titles}")
    return problems


def _diff(expected: str, messages: list[Shown]) -> str:
    if not messages:
        return "    (this turn had no messages)"
    closest = max(messages, key=lambda shown: difflib.SequenceMatcher(None, expected, shown.text.strip()).ratio())
    lines = difflib.unified_diff(expected.splitlines(), closest.text.strip().splitlines(),
                                 fromfile="expected", tofile=f"actual (message {messages.index(closest) + 1})",
                                 lineterm="")
    return "\n".join("    " + line for line in lines)


def _listing(messages: list[Shown]) -> list[str]:
    lines = ["  messages of this turn:"] if messages else ["  (this turn had no messages)"]
    for number, shown in enumerate(messages, start=1):
        text_lines = shown.text.splitlines() or [""]
        lines.append(f"    [{number}] {text_lines[0]}")
        lines += [f"        {line}".rstrip() for line in text_lines[1:]]
        if shown.options:
            lines.append(f"        options: {' | '.join(_titles(shown.options))}")
    return lines


def _titles(options: tuple[tuple[str, str], ...]) -> list[str]:
    return [title for _, title in options]


# --- bottega flows test ------------------------------------------------------------------------


def transcript_files(paths: list[str | Path]) -> list[Path]:
    """The ``*.yaml`` files named, or found (recursively, sorted) in the folders named."""
    files: list[Path] = []
    for path in map(Path, paths):
        files.extend(sorted(path.rglob("*.yaml")) if path.is_dir() else [path])
    return files


def main(paths: list[str | Path] | None = None, *, flows_dir: Path | None = None, out: TextIO = sys.stdout) -> int:
    """Replay every transcript in ``paths`` (default ``<flows>/tests``); 0 if all pass, 1 otherwise.

    The course is loaded from ``flows_dir`` (default ``$BOTTEGA_FLOWS_DIR`` or ``flows/``). The replayed
    learners live in an embedded redis-server of their own, in a temporary folder, stopped at the end —
    never in ``$REDIS_URL``, where they would count as real learners (``flows diff``, statistics).
    """
    import redis

    from bot.dev import embedded_redis
    from bot.flows.loader import load_course
    from bot.flows.problems import FlowError
    from config.settings import Settings

    flows_dir = Path(flows_dir or Settings.from_env(dev_default=True).flows_dir)
    try:
        course = load_course(flows_dir)
    except FlowError as error:
        print(f"the course in {flows_dir} does not load; run 'bottega flows check' first:\n{error}", file=out)
        return 1
    files = transcript_files(list(paths) if paths else [flows_dir / "tests"])
    if not files:
        print(f"no transcripts found in {', '.join(map(str, paths or [flows_dir / 'tests']))}", file=out)
        return 1
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="bottega-flows-test-") as workdir:
        server = embedded_redis.start(Path(workdir), persist=False)
        url = server.url
        client = redis.Redis.from_url(url)
        try:
            settings = Settings.from_env({"BOTTEGA_ENV": "dev", "REDIS_URL": url})
            for path in files:
                try:
                    results = run_transcript(path, client=client, course=course, settings=settings)
                except (TranscriptError, OSError) as error:
                    failed += 1
                    print(f"FAIL {path} (malformed)\n{error}", file=out)
                    continue
                for result in results:
                    passed, failed = passed + result.passed, failed + (not result.passed)
                    print(f"{'PASS' if result.passed else 'FAIL'} {result.name} [{result.channel}]", file=out)
                    for failure in result.failures:
                        print(f"  {result.source}: {failure}".replace("\n", "\n  "), file=out)
        finally:
            client.close()
            server.stop()  # we started it, we stop it
    print(f"{passed} passed, {failed} failed", file=out)
    return 0 if failed == 0 else 1
