"""``bottega broadcast ...``: the terminal's face of ``Broadcasts`` (the admin console's pages are another).

    bottega broadcast plan --message news [QUERY]     the dry run: recipients by channel and window state, cost
    bottega broadcast send --message news [QUERY] [--yes]   plan, start, and follow with a progress bar
    bottega broadcast follow ID | report ID | pause ID | resume ID | cancel ID | list

QUERY: --channel whatsapp --lang it --business bar --done m1_contatto --not-done m2_pagina
--checkup-level none --active-within 30 --inactive-for 7 --rsvp EVENT[:seated,waiting] --reminders on|off
(each list flag may be repeated). Ctrl-C while following a send pauses the broadcast (``resume`` goes on
from its cursor); the workers do the sending, so closing the terminal stops nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

from bot.broadcasts.audience import Query
from bot.broadcasts.service import BroadcastError, BroadcastProgress, Broadcasts

FOLLOW_EVERY_SECONDS = 0.5
RATE_WINDOW_SECONDS = 5.0
BAR_WIDTH = 24


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["plan", "send", "follow", "report", "pause", "resume", "cancel", "list"])
    parser.add_argument("broadcast_id", nargs="?", default="", help="follow/report/pause/resume/cancel: its id")
    parser.add_argument("--message", default="", help="plan/send: the id of a message in flows/broadcasts.yaml")
    parser.add_argument("--yes", action="store_true", help="send: start without asking")
    query = parser.add_argument_group("audience (plan, send); a list flag may be repeated")
    query.add_argument("--channel", action="append", default=[], help="whatsapp, messenger, instagram")
    query.add_argument("--lang", action="append", default=[], help="it, en")
    query.add_argument("--business", action="append", default=[], help="a business type id of course.yaml")
    query.add_argument("--done", action="append", default=[], help="finished this module")
    query.add_argument("--not-done", action="append", default=[], help="has not finished this module")
    query.add_argument("--checkup-level", action="append", default=[], help="the last check-up's level; 'none'")
    query.add_argument("--active-within", type=int, default=None, help="wrote in the last N days")
    query.add_argument("--inactive-for", type=int, default=None, help="has not written for N days")
    query.add_argument("--rsvp", default="",
                       help="EVENT[:seated,waiting,missed,maybe,invited,declined] an Open Day's RSVP (default: seated)")
    query.add_argument("--reminders", choices=["on", "off"], default=None, help="chose reminders, or not")


def query_of(args: argparse.Namespace) -> Query:
    event, _, states = str(args.rsvp).partition(":")
    return Query(channels=tuple(args.channel), languages=tuple(args.lang), business=tuple(args.business),
                 modules_done=tuple(args.done), modules_not_done=tuple(args.not_done),
                 checkup_levels=tuple(args.checkup_level), active_within_days=args.active_within,
                 inactive_for_days=args.inactive_for, rsvp_event=event,
                 rsvp_states=tuple(s for s in states.split(",") if s),
                 reminders=None if args.reminders is None else args.reminders == "on")


def run(args: argparse.Namespace, broadcasts: Broadcasts, *, out: TextIO | None = None,
        ask: Callable[[str], str] = input) -> int:
    try:
        return _run(args, broadcasts, out or sys.stdout, ask)
    except BroadcastError as error:
        print(f"bottega broadcast: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, broadcasts: Broadcasts, out: TextIO, ask: Callable[[str], str]) -> int:
    action, broadcast_id = args.action, args.broadcast_id
    if action in ("plan", "send"):
        if not args.message:
            raise BroadcastError("say which message: --message ID (an id of flows/broadcasts.yaml)")
        query = query_of(args)
        plan = broadcasts.dry_run(query, args.message)
        for line in plan.lines():
            print(line, file=out)
        if action == "plan":
            return 0
        if not plan.recipients:
            print("nobody to send it to: nothing started", file=out)
            return 1
        if not args.yes and ask(f"send to {len(plan.recipients)} learners? [y/N] ").strip().lower() not in ("y", "yes"):
            print("not started", file=out)
            return 1
        broadcast_id = broadcasts.start(query, args.message, plan=plan)
        print(f"broadcast {broadcast_id} started; the workers send it (Ctrl-C pauses it)", file=out)
        return follow(broadcasts, broadcast_id, out)
    if action == "list":
        for item in broadcasts.every():
            print(f"{item.broadcast_id}  {item.status:<9} {item.message:<12} {item.settled}/{item.total} settled, "
                  f"sent {item.sent}, failed {item.failed}", file=out)
        return 0
    if not broadcast_id:
        raise BroadcastError(f"`bottega broadcast {action}` needs the broadcast's id (`bottega broadcast list`)")
    if action == "follow":
        return follow(broadcasts, broadcast_id, out)
    if action == "report":
        for line in broadcasts.report(broadcast_id).lines():
            print(line, file=out)
        return 0
    change = {"pause": broadcasts.pause, "resume": broadcasts.resume, "cancel": broadcasts.cancel}[action]
    changed = change(broadcast_id)
    state = broadcasts.progress(broadcast_id).status
    print(f"broadcast {broadcast_id}: {state}" + ("" if changed else f" (it was not in a state to {action})"), file=out)
    return 0 if changed else 1


def follow(broadcasts: Broadcasts, broadcast_id: str, out: TextIO) -> int:
    """A progress bar until the broadcast is done or cancelled; Ctrl-C pauses it. Then the report."""
    samples: deque[tuple[float, int]] = deque()
    try:
        while True:
            progress = broadcasts.progress(broadcast_id)
            now = time.monotonic()
            samples.append((now, progress.settled))
            while samples and now - samples[0][0] > RATE_WINDOW_SECONDS:
                samples.popleft()
            print("\r" + bar(progress, samples), end="", file=out, flush=True)
            if progress.finished or progress.status == "paused":
                break
            time.sleep(FOLLOW_EVERY_SECONDS)
    except KeyboardInterrupt:
        broadcasts.pause(broadcast_id)
        print(f"\npaused; `bottega broadcast resume {broadcast_id}` goes on from where it stopped", file=out)
        return 130
    print(file=out)
    for line in broadcasts.report(broadcast_id).lines():
        print(line, file=out)
    return 0


def bar(progress: BroadcastProgress, samples: deque[tuple[float, int]]) -> str:
    total = max(progress.total, 1)
    done = progress.settled
    filled = int(BAR_WIDTH * done / total)
    rate = 0.0
    if len(samples) >= 2 and samples[-1][0] > samples[0][0]:
        rate = (samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0])
    left = progress.total - done
    eta = f"{int(left / rate) // 60}m{int(left / rate) % 60:02d}s" if rate > 0 and left > 0 else "-"
    return (f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {100 * done // total:3d}% {done}/{progress.total} "
            f"sent {progress.sent} failed {progress.failed} skipped {progress.skipped} | {rate:.1f}/s ETA {eta} "
            f"({progress.status})")
