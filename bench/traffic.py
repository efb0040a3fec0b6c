"""The benchmark's inbound traffic: signed WhatsApp webhooks from learners going through module 1.

Message ``n`` of the stream belongs to learner ``n % learners`` and is that learner's turn
``n // learners``, so a learner's messages are spread ``learners`` requests apart and arrive in
order. Each learner says "ciao" first, picks Italian and a business type, opens module 1 from the
menu and goes through it, tapping buttons and list rows (interactive ``button_reply`` /
``list_reply``) or typing numbers as a phone user would; after the summary they write "menu" and
start the module again. Every message has its own wamid, shaped like Meta's.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator

from bot.channels.signature import sign
from bot.channels.whatsapp.dev import text_payload as whatsapp_text_payload

SECRET = "bench-app-secret"
VERIFY_TOKEN = "bench-verify-token"
PHONE_NUMBER_ID = "100000000000001"
LEARNERS = 500

# ("text", body) is typed; ("button" | "list", id, title) is a reply button or a list row tapped.
SCRIPT: tuple[tuple[str, ...], ...] = (
    ("text", "ciao"),  # a new learner: welcome + language question
    ("button", "sys:lang:it", "Italiano"),  # -> what business do you run?
    ("text", "1"),  # the first business type -> the menu
    ("list", "sys:module:m1_contatto", "Contatto clienti"),  # the menu is a list -> module 1 intro
    ("button", "c:m1_contatto:intro:go", "Iniziamo"),  # -> lesson 1
    ("text", "1"),  # "Fatto ✅" -> lesson 2
    ("button", "c:m1_contatto:lesson_2:later", "Lo faccio dopo"),  # -> lesson 3
    ("text", "2"),  # "Lo faccio dopo" -> quiz question 1
    ("button", "c:m1_contatto:q1:a", "A) In contatto"),  # right answer -> question 2
    ("text", "2"),  # B) -> question 3
    ("button", "c:m1_contatto:q3:quick", "Risposte rapide"),  # -> question 4
    ("text", "2"),  # B) -> summary, module done
    ("text", "ricomincia"),  # a global word: start the course again?
    ("button", "sys:yes", "Sì"),  # -> progress reset, the menu
    ("list", "sys:module:m1_contatto", "Contatto clienti"),  # module 1 again, from its intro
)
MODULE_1_TURNS = 12  # SCRIPT[:12]: from "ciao" to module 1's summary
REPEAT_FROM = 4  # after the script, learners go round module 1 again from here


def phone(learner: int) -> str:
    return f"39333{1_000_000 + learner:07d}"


def wamid() -> str:
    """A fresh id as long as Meta's (``wamid.`` + 52 base64 characters)."""
    return "wamid.HBgM" + base64.b64encode(os.urandom(36)).decode()


def turn_of(n: int, learners: int) -> tuple[int, tuple[str, ...]]:
    learner, turn = n % learners, n // learners
    if turn >= len(SCRIPT):
        turn = REPEAT_FROM + (turn - REPEAT_FROM) % (len(SCRIPT) - REPEAT_FROM)
    return learner, SCRIPT[turn]


def payload(learner: int, action: tuple[str, ...]) -> dict:
    body = whatsapp_text_payload(action[1], phone(learner), PHONE_NUMBER_ID)
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    message["id"] = wamid()
    message["timestamp"] = str(int(time.time()))
    if action[0] != "text":
        kind = f"{action[0]}_reply"  # button_reply | list_reply
        del message["text"]
        message["type"] = "interactive"
        message["interactive"] = {"type": kind, kind: {"id": action[1], "title": action[2]}}
    return body


def signed_bodies(start: int, count: int, learners: int = LEARNERS) -> Iterator[tuple[str, bytes]]:
    """``(X-Hub-Signature-256 value, raw body)`` for stream messages ``start .. start + count - 1``."""
    for n in range(start, start + count):
        raw = json.dumps(payload(*turn_of(n, learners))).encode()
        yield sign(SECRET, raw), raw


def write_requests(path: os.PathLike | str, start: int, count: int, learners: int = LEARNERS) -> None:
    """One request per line, ``signature<TAB>body``: what ``loadgen.py`` and ``wrk_post.lua`` read."""
    with open(path, "wb") as out:
        for signature, raw in signed_bodies(start, count, learners):
            out.write(signature.encode() + b"\t" + raw + b"\n")
