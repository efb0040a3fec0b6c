"""bot.channels.parsing: every recorded body in bot/channels/<name>/fixtures parses to exactly the events
pinned here.

Then the odd shapes: specific malformed items are skipped with a note while the rest of the batch is
read, and a mutation sweep replaces every node of every fixture by null, wrong types, huge numbers or
a canary string (and deletes it) to show that ``parse`` never raises and never copies user data into
its notes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import pytest

from bot import channels
from bot.channels.instagram import INSTAGRAM as IG_CHANNEL
from bot.channels.messenger import MESSENGER as MS_CHANNEL
from bot.channels.parsing import ParseResult, parse
from bot.channels.whatsapp import WHATSAPP as WA_CHANNEL
from bot.model.events import Channel, EventKind, InboundEvent, Referral

NUMBER_ID = "100000000000001"
PAGE = "200000000000002"

TEXT, CHOICE, MEDIA = EventKind.TEXT, EventKind.CHOICE, EventKind.MEDIA
STATUS, IGNORE = EventKind.STATUS, EventKind.IGNORE
UNREADABLE, IDENTITY, PREFERENCE = EventKind.UNREADABLE, EventKind.IDENTITY, EventKind.PREFERENCE


def load(relative: str) -> dict[str, Any]:
    """A recorded body, named ``<channel>/<kind>.json``: from that channel's fixtures folder."""
    folder, name = relative.split("/", 1)
    return json.loads((channels.parts_for(folder).dev.fixtures / name).read_text(encoding="utf-8"))


# --- WhatsApp expectations ------------------------------------------------------------------------

LUCIA_BSUID, LUCIA_PHONE = "IT.13491208655302741918", "393331234567"
MARCO_PHONE = "393479876543"
ANNA_BSUID = "IT.88234109876543210987"

LUCIA = {"user_id": LUCIA_BSUID, "phone": LUCIA_PHONE, "bsuid": LUCIA_BSUID, "profile_name": "Lucia Bianchi"}
MARCO = {"user_id": MARCO_PHONE, "phone": MARCO_PHONE, "profile_name": "Marco Rossi"}
ANNA = {"user_id": ANNA_BSUID, "phone": "", "bsuid": ANNA_BSUID, "profile_name": "Anna"}
TO_LUCIA = {"user_id": LUCIA_BSUID, "phone": LUCIA_PHONE, "bsuid": LUCIA_BSUID}  # statuses carry no name
TO_MARCO = {"user_id": MARCO_PHONE, "phone": MARCO_PHONE}
TO_ANNA = {"user_id": ANNA_BSUID, "phone": "", "bsuid": ANNA_BSUID}
MARCO_NEW_PHONE = "393479870000"


def wamid(tag: str) -> str:
    """An inbound message id as written by the fixtures."""
    return f"wamid.HBgMMzkzMzMxMjM0NTY3FQIAEhggQTNGQzE0RDI4{tag}AA=="


def our_wamid(tag: str) -> str:
    """The id of a message we sent, as the fixtures' statuses and contexts write it."""
    return f"wamid.HBgMMzkzMzMxMjM0NTY3FQIAERgSMDlCRkU5{tag}AA=="


def wa(kind: EventKind, message_id: str, seconds: int, who: dict[str, str], **fields: Any) -> InboundEvent:
    return InboundEvent(
        channel=WA_CHANNEL,
        kind=kind,
        reply_from=NUMBER_ID,
        message_id=message_id,
        timestamp_ms=seconds * 1000,
        **who,
        **fields,
    )


CTWA_CLID = "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMv-_zfUQ2a"
SHORTLINK = {"source": "SHORTLINK", "type": "OPEN_THREAD"}

FREE_SERVICE = "service:free_customer_service"  # a status's pricing block: category:type (docs/platform.md §9)

WHATSAPP = {
    "text": [wa(TEXT, wamid("A01"), 1789000001, LUCIA, text="Ciao! Vorrei imparare Instagram")],
    "button_reply": [wa(CHOICE, wamid("A02"), 1789000002, LUCIA, payload="lesson1.yes", text="Sì, andiamo")],
    "list_reply": [wa(CHOICE, wamid("A03"), 1789000003, MARCO, payload="topic.instagram", text="Instagram")],
    "template_button": [
        wa(CHOICE, wamid("A04"), 1789000004, MARCO, payload="RESUME_COURSE", text="Riprendi",
           detail="template_button")
    ],
    "image": [wa(MEDIA, wamid("A05"), 1789000005, MARCO, media_type="image")],
    "video": [wa(MEDIA, wamid("A06"), 1789000006, MARCO, media_type="video")],
    "document": [wa(MEDIA, wamid("A07"), 1789000007, MARCO, media_type="document")],
    "audio": [wa(MEDIA, wamid("A08"), 1789000008, LUCIA, media_type="audio")],
    "voice": [wa(MEDIA, wamid("A09"), 1789000009, MARCO, media_type="voice")],
    "sticker": [wa(MEDIA, wamid("A10"), 1789000010, MARCO, media_type="sticker")],
    "location": [wa(MEDIA, wamid("A11"), 1789000011, MARCO, media_type="location")],
    "contacts": [wa(MEDIA, wamid("A12"), 1789000012, MARCO, media_type="contacts")],
    "reaction": [wa(IGNORE, wamid("A13"), 1789000013, MARCO, detail="reaction")],
    "unsupported": [wa(UNREADABLE, wamid("A14"), 1789000014, MARCO, detail="edit")],
    "system": [wa(IDENTITY, wamid("A15"), 1789000015, {"user_id": MARCO_NEW_PHONE, "phone": MARCO_NEW_PHONE},
                  detail="user_changed_number", previous_ids=(MARCO_PHONE,))],
    "nfm_reply": [wa(UNREADABLE, wamid("A16"), 1789000016, MARCO, detail="flow_reply")],
    "bsuid_only": [wa(TEXT, wamid("A17"), 1789000017, ANNA, text="Buongiorno, sono Anna")],
    "ctwa_referral": [wa(TEXT, wamid("A18"), 1789000018, MARCO, text="Ciao! Vorrei sapere di più sul corso.",
                         referral=Referral(source_url="https://fb.me/3cr4Wqqkp", source_id="120226305854810726",
                                           source_type="ad", headline="Impara i social in 5 minuti al giorno",
                                           ctwa_clid=CTWA_CLID))],
    "start_code": [wa(TEXT, wamid("A19"), 1789000019, MARCO,
                      text="Ciao Bottega! Vorrei iniziare. Codice: bt-m-m1_contatto--vetrina")],
    "status_sent": [wa(STATUS, our_wamid("B06"), 1789000100, TO_LUCIA, status="sent", pricing=FREE_SERVICE)],
    "status_delivered": [wa(STATUS, our_wamid("B07"), 1789000101, TO_MARCO, status="delivered",
                            pricing=FREE_SERVICE)],
    "status_read": [wa(STATUS, our_wamid("B08"), 1789000102, TO_MARCO, status="read")],
    "status_failed": [wa(STATUS, our_wamid("B09"), 1789000103, TO_MARCO, status="failed", error_code=131047)],
    "status_played": [wa(STATUS, our_wamid("B10"), 1789000104, TO_LUCIA, status="played")],
    "user_preferences": [wa(PREFERENCE, "pref:marketing_messages:stop:1789000300", 1789000300, TO_MARCO,
                            detail="marketing_messages", status="stop")],
    "batch": [
        wa(TEXT, wamid("C01"), 1789000201, LUCIA, text="Fatto!"),
        wa(MEDIA, wamid("C02"), 1789000202, MARCO, media_type="image"),
        wa(CHOICE, wamid("C03"), 1789000203, MARCO, payload="quiz1.b", text="Risposta B"),
        wa(STATUS, our_wamid("B12"), 1789000204, TO_LUCIA, status="delivered"),
        wa(STATUS, our_wamid("B12"), 1789000205, TO_LUCIA, status="read"),
        wa(STATUS, our_wamid("B13"), 1789000206, TO_MARCO, status="sent", pricing=FREE_SERVICE),
        wa(CHOICE, wamid("C04"), 1789000207, ANNA, payload="topic.facebook", text="Facebook"),
        wa(STATUS, our_wamid("B14"), 1789000208, TO_ANNA, status="failed", error_code=131026),
    ],
}
WHATSAPP_SKIPPED = {"batch": ["whatsapp: change field 'account_update' skipped"]}

# --- Messenger expectations -----------------------------------------------------------------------

LUCIA_PSID, MARCO_PSID = "7400000000000001", "7400000000000002"


def mid(tag: str) -> str:
    return f"m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfi{tag}"


def ms(kind: EventKind, message_id: str, timestamp_ms: int, psid: str, **fields: Any) -> InboundEvent:
    return InboundEvent(
        channel=MS_CHANNEL,
        kind=kind,
        user_id=psid,
        reply_from=PAGE,
        message_id=message_id,
        timestamp_ms=timestamp_ms,
        **fields,
    )


MESSENGER = {
    "text": [ms(TEXT, mid("D01"), 1789000001000, LUCIA_PSID, text="Ciao, vorrei iniziare il corso")],
    "quick_reply": [
        ms(CHOICE, mid("D02"), 1789000002000, LUCIA_PSID, payload="lesson1.yes", text="Sì, andiamo")
    ],
    "image": [ms(MEDIA, mid("D03"), 1789000003000, MARCO_PSID, media_type="image")],
    "audio": [ms(MEDIA, mid("D04"), 1789000004000, MARCO_PSID, media_type="audio")],
    "video": [ms(MEDIA, mid("D05"), 1789000005000, MARCO_PSID, media_type="video")],
    "file": [ms(MEDIA, mid("D06"), 1789000006000, MARCO_PSID, media_type="file")],
    "sticker": [ms(MEDIA, mid("D07"), 1789000007000, LUCIA_PSID, media_type="sticker")],
    "sticker_transition": [ms(MEDIA, mid("D08"), 1789000008000, LUCIA_PSID, media_type="sticker")],
    "fallback": [ms(MEDIA, mid("D09"), 1789000009000, MARCO_PSID, media_type="fallback")],
    "echo": [ms(IGNORE, mid("D10"), 1789000010000, LUCIA_PSID, detail="echo")],
    "postback": [
        ms(CHOICE, mid("D11"), 1789000011000, MARCO_PSID, payload="lesson1.start", text="Inizia la lezione")
    ],
    "get_started_referral": [
        ms(CHOICE, mid("D12"), 1789000012000, LUCIA_PSID, payload="GET_STARTED", text="Inizia",
           referral=Referral(ref="corso-instagram", **SHORTLINK))
    ],
    "referral": [ms(CHOICE, "", 1789000013000, LUCIA_PSID, payload="corso-facebook",
                    referral=Referral(ref="corso-facebook", **SHORTLINK))],
    "delivery": [ms(STATUS, mid("E01"), 1789000014000, LUCIA_PSID, status="delivered")],
    "read": [ms(STATUS, "", 1789000015000, LUCIA_PSID, status="read")],
    "reaction": [ms(IGNORE, "", 1789000016000, MARCO_PSID, detail="reaction")],
    "edit": [ms(UNREADABLE, f"{mid('D01')}#edit1", 1789000017000, LUCIA_PSID, detail="edit")],
    "standby": [
        ms(IGNORE, mid("D13"), 1789000018000, MARCO_PSID, detail="standby"),
        ms(IGNORE, mid("D14"), 1789000019000, MARCO_PSID, detail="standby"),
    ],
    "optin": [ms(PREFERENCE, "", 1789000020000, LUCIA_PSID, detail="marketing_messages", status="opt_in",
                 token="7395027839201876413", expires_ms=1804552020000, time_zone="Europe/Rome")],
    "postback_changes": [
        ms(CHOICE, mid("D15"), 1789000021000, MARCO_PSID, payload="lesson2.start", text="Prossima lezione")
    ],
    "batch": [
        ms(TEXT, mid("F01"), 1789000030000, LUCIA_PSID, text="Eccomi"),
        ms(CHOICE, mid("F02"), 1789000030100, MARCO_PSID, payload="quiz1.no", text="No"),
        ms(STATUS, mid("E03"), 1789000030200, LUCIA_PSID, status="delivered"),
        ms(STATUS, "", 1789000031000, MARCO_PSID, status="read"),
        ms(IGNORE, mid("F03"), 1789000031100, MARCO_PSID, detail="echo"),
        ms(CHOICE, mid("F04"), 1789000031200, LUCIA_PSID, payload="lesson1.next", text="Continua"),
        ms(MEDIA, mid("F05"), 1789000031300, MARCO_PSID, media_type="image"),
    ],
}

# --- Instagram expectations -----------------------------------------------------------------------

IG_ACCOUNT = "17841400000000001"
LUCIA_IGSID, MARCO_IGSID = "5100000000000001", "5100000000000002"


def igmid(tag: str) -> str:
    return f"aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwMDAwMDAwMDAxOjM0MDI4MjM2Njg0MTcxMDMwMDk0OTEy{tag}ZDZD"


def ig(kind: EventKind, message_id: str, timestamp_ms: int, igsid: str, **fields: Any) -> InboundEvent:
    return InboundEvent(channel=IG_CHANNEL, kind=kind, user_id=igsid, reply_from=IG_ACCOUNT,
                        message_id=message_id, timestamp_ms=timestamp_ms, **fields)


INSTAGRAM = {
    "text": [ig(TEXT, igmid("G01"), 1789000101000, LUCIA_IGSID,
                text="Ciao! Ho visto il vostro profilo, come funziona il corso?")],
    "quick_reply": [ig(CHOICE, igmid("G02"), 1789000102000, LUCIA_IGSID, payload="lesson1.yes", text="Sì, andiamo")],
    "postback": [
        ig(CHOICE, igmid("G03"), 1789000103000, MARCO_IGSID, payload="lesson1.start", text="Inizia la lezione")
    ],
    "story_reply": [ig(MEDIA, igmid("G04"), 1789000104000, MARCO_IGSID, media_type="story_reply")],
    "story_mention": [ig(MEDIA, igmid("G05"), 1789000105000, LUCIA_IGSID, media_type="story_mention")],
    "image": [ig(MEDIA, igmid("G06"), 1789000106000, MARCO_IGSID, media_type="image")],
    "audio": [ig(MEDIA, igmid("G07"), 1789000107000, MARCO_IGSID, media_type="audio")],
    "video": [ig(MEDIA, igmid("G08"), 1789000108000, LUCIA_IGSID, media_type="video")],
    "share": [ig(MEDIA, igmid("G09"), 1789000109000, LUCIA_IGSID, media_type="share")],
    "ig_reel": [ig(MEDIA, igmid("G10"), 1789000110000, MARCO_IGSID, media_type="ig_reel")],
    "unsupported": [ig(UNREADABLE, igmid("G11"), 1789000111000, MARCO_IGSID, detail="unsupported")],
    "deleted": [ig(IGNORE, "", 1789000112000, LUCIA_IGSID, detail="deleted")],
    "reaction": [ig(IGNORE, "", 1789000113000, LUCIA_IGSID, detail="reaction")],
    "echo": [ig(IGNORE, igmid("H02"), 1789000114000, LUCIA_IGSID, detail="echo")],
    "read": [ig(IGNORE, "", 1789000115000, LUCIA_IGSID, detail="read")],
    "referral": [ig(CHOICE, "", 1789000116000, MARCO_IGSID, payload="corso-instagram",
                    referral=Referral(ref="corso-instagram", source="IGME", type="OPEN_THREAD"))],
    "standby": [ig(IGNORE, igmid("G12"), 1789000117000, MARCO_IGSID, detail="standby")],
    "comment": [],
    "batch": [
        ig(TEXT, igmid("J01"), 1789000130000, LUCIA_IGSID, text="Eccomi"),
        ig(CHOICE, igmid("J02"), 1789000130100, MARCO_IGSID, payload="quiz1.no", text="No"),
        ig(IGNORE, "", 1789000130200, LUCIA_IGSID, detail="read"),
        ig(IGNORE, igmid("H04"), 1789000130300, MARCO_IGSID, detail="echo"),
        ig(MEDIA, igmid("J03"), 1789000131000, MARCO_IGSID, media_type="image"),
        ig(IGNORE, "", 1789000131100, LUCIA_IGSID, detail="reaction"),
        ig(CHOICE, igmid("J04"), 1789000131200, LUCIA_IGSID, payload="lesson1.next", text="Continua"),
    ],
}
INSTAGRAM_SKIPPED = {"comment": ["instagram: change field 'comments' skipped"]}

# Every registered channel's recorded bodies, and what they parse to.
EXPECTED = {"whatsapp": (WA_CHANNEL, WHATSAPP, WHATSAPP_SKIPPED), "messenger": (MS_CHANNEL, MESSENGER, {}),
            "instagram": (IG_CHANNEL, INSTAGRAM, INSTAGRAM_SKIPPED)}
CASES = [(folder, name, channel) for folder, (channel, events, _) in EXPECTED.items() for name in events]


@pytest.mark.parametrize(("folder", "name", "channel"), CASES, ids=[f"{f}/{n}" for f, n, _ in CASES])
def test_fixture_parses_to_exact_events(folder: str, name: str, channel: Channel) -> None:
    _, expected_events, expected_skipped = EXPECTED[folder]
    result = parse(load(f"{folder}/{name}.json"))
    assert result == ParseResult(
        channel=channel, events=tuple(expected_events[name]), skipped=tuple(expected_skipped.get(name, []))
    )


def test_every_registered_channel_has_pinned_fixtures() -> None:
    assert {parts.channel.name for parts in channels.every()} == set(EXPECTED)


def test_every_fixture_has_an_expectation_and_a_readme_line() -> None:
    folders = {parts.channel.name: parts.dev.fixtures for parts in channels.every()}
    on_disk = {f"{name}/{path.stem}" for name, folder in folders.items() for path in folder.glob("*.json")}
    pinned = {f"{folder}/{name}" for folder, name, _ in CASES}
    assert on_disk == pinned
    for folder in folders.values():
        readme = (folder / "README.md").read_text(encoding="utf-8")
        assert all(f"`{path.stem}.json`" in readme for path in folder.glob("*.json"))


def test_parse_leaves_the_payload_untouched() -> None:
    payload = load("whatsapp/batch.json")
    parse(payload)
    assert payload == load("whatsapp/batch.json")


# --- odd shapes, one at a time --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "note"),
    [
        (None, "payload is not a JSON object, skipped"),
        ([{"object": "page"}], "payload is not a JSON object, skipped"),
        ("page", "payload is not a JSON object, skipped"),
        ({}, "payload without a known object skipped"),
        ({"object": ["page"], "entry": []}, "payload without a known object skipped"),
        ({"object": "Ciao +39 333", "entry": []}, "payload without a known object skipped"),
        ({"object": "permissions", "entry": []}, "object 'permissions' is not ours, skipped"),
    ],
)
def test_bodies_that_are_not_ours_give_no_channel(payload: object, note: str) -> None:
    assert parse(payload) == ParseResult(channel=None, skipped=(note,))


@pytest.mark.parametrize("entry", [None, {}, "x", 3], ids=["null", "dict", "str", "int"])
@pytest.mark.parametrize(
    ("webhook_object", "channel"),
    [("whatsapp_business_account", WA_CHANNEL), ("page", MS_CHANNEL), ("instagram", IG_CHANNEL)],
)
def test_body_without_entry_list_keeps_its_channel(
    entry: object, webhook_object: str, channel: Channel
) -> None:
    result = parse({"object": webhook_object, "entry": entry})
    assert result == ParseResult(
        channel=channel, skipped=(f"{channel.name}: payload without an entry list skipped",)
    )


def whatsapp_body(value: dict[str, Any]) -> dict[str, Any]:
    """A one-change WhatsApp body around ``value`` (metadata added unless value sets its own)."""
    value = {"metadata": {"phone_number_id": NUMBER_ID}} | value
    return {
        "object": "whatsapp_business_account",
        "entry": [{"changes": [{"field": "messages", "value": value}]}],
    }


GOOD_WA_MESSAGE = {
    "from": MARCO_PHONE,
    "id": wamid("Z99"),
    "timestamp": "1789000999",
    "type": "text",
    "text": {"body": "ok"},
}
GOOD_WA_EVENT = wa(TEXT, wamid("Z99"), 1789000999, TO_MARCO, text="ok")


@pytest.mark.parametrize(
    ("bad_message", "note"),
    [
        (
            {"id": "wamid.X", "type": "text", "text": {"body": "Ciao"}},
            "message without phone or BSUID skipped",
        ),
        (
            {"from": "+39 333 12", "type": "text", "text": {"body": "x"}},
            "message without phone or BSUID skipped",
        ),
        ({"from": MARCO_PHONE, "type": "text", "text": None}, "message of type text without a body skipped"),
        (
            {"from": MARCO_PHONE, "type": "text", "text": {"body": 42}},
            "message of type text without a body skipped",
        ),
        (
            {
                "from": MARCO_PHONE,
                "type": "interactive",
                "interactive": {"type": "list_reply", "list_reply": {}},
            },
            "message of type interactive list_reply without an id skipped",
        ),
        (
            {"from": MARCO_PHONE, "type": "button", "button": {}},
            "message of type button without payload or text skipped",
        ),
        (None, "message without phone or BSUID skipped"),
        ("wamid.X", "message without phone or BSUID skipped"),
    ],
)
def test_unreadable_whatsapp_message_is_skipped_and_the_rest_is_read(bad_message: object, note: str) -> None:
    result = parse(whatsapp_body({"messages": [bad_message, GOOD_WA_MESSAGE]}))
    assert result.events == (GOOD_WA_EVENT,)
    assert result.skipped == (f"whatsapp: {note}",)


def ignored(detail: str) -> dict[str, Any]:
    return {"kind": IGNORE, "detail": detail}


def unreadable(detail: str) -> dict[str, Any]:
    return {"kind": UNREADABLE, "detail": detail}


def text_at(timestamp: object) -> dict[str, Any]:
    return {"type": "text", "text": {"body": "ok"}, "timestamp": timestamp}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"type": "order", "order": {}}, unreadable("order")),
        ({"type": ["text"]}, unreadable("type:other")),
        ({}, unreadable("type:other")),
        ({"type": "edit", "edit": {}}, unreadable("edit")),
        ({"type": "request_welcome"}, {"kind": EventKind.OPENED, "detail": "request_welcome"}),
        ({"type": "unknown", "errors": [{"code": 131051}]}, unreadable("unsupported:unknown")),
        ({"type": "unsupported", "unsupported": {"type": "Ciao 39333"}}, unreadable("unsupported:unknown")),
        ({"type": "unsupported", "unsupported": {"type": "poll_creation"}}, unreadable("unsupported:poll_creation")),
        ({"type": "system", "system": None}, ignored("system:other")),
        (
            {"type": "interactive", "interactive": {"type": "call_permission_reply"}},
            unreadable("interactive:call_permission_reply"),
        ),
        ({"type": "interactive", "interactive": {"type": {"x": 1}}}, unreadable("interactive:other")),
        (
            {"type": "button", "button": {"text": "Riprendi"}},
            {"kind": CHOICE, "payload": "Riprendi", "text": "Riprendi", "detail": "template_button"},
        ),
        ({"type": "audio", "audio": {"voice": "yes"}}, {"kind": MEDIA, "media_type": "audio"}),
        ({"type": "image", "image": None}, {"kind": MEDIA, "media_type": "image"}),
        (text_at("soon"), {"kind": TEXT, "text": "ok", "timestamp_ms": 0}),
        (text_at(1789000001), {"kind": TEXT, "text": "ok", "timestamp_ms": 1789000001000}),
        (text_at("9" * 5000), {"kind": TEXT, "text": "ok", "timestamp_ms": 0}),
        (text_at(-5), {"kind": TEXT, "text": "ok", "timestamp_ms": 0}),
    ],
)
def test_odd_whatsapp_message_types(message: dict[str, Any], expected: dict[str, Any]) -> None:
    (event,) = parse(whatsapp_body({"messages": [{"from": MARCO_PHONE} | message]})).events
    assert event == InboundEvent(channel=WA_CHANNEL, reply_from=NUMBER_ID, **TO_MARCO, **expected)


def test_whatsapp_identity_rules() -> None:
    value = {
        "contacts": [
            {"profile": {"name": "Lucia"}, "wa_id": LUCIA_PHONE, "user_id": LUCIA_BSUID},
            {"profile": {"name": "Marco"}, "wa_id": MARCO_PHONE},
        ],
        "messages": [
            {"from": MARCO_PHONE, "type": "reaction"},  # matched to the 2nd contact by wa_id
            {"from": LUCIA_PHONE, "type": "reaction"},  # BSUID from the matching contact
            {"from_user_id": LUCIA_BSUID, "type": "reaction"},  # phone from the matching contact
            {"from": "+393470000000", "type": "reaction"},  # no contact matches, two exist: none used
        ],
    }
    events = parse(whatsapp_body(value)).events
    people = [(event.user_id, event.phone, event.profile_name) for event in events]
    assert people == [
        (MARCO_PHONE, MARCO_PHONE, "Marco"),
        (LUCIA_BSUID, LUCIA_PHONE, "Lucia"),
        (LUCIA_BSUID, LUCIA_PHONE, "Lucia"),
        ("393470000000", "393470000000", ""),
    ]


@pytest.mark.parametrize(
    ("value", "notes"),
    [
        (
            {"metadata": None, "messages": [GOOD_WA_MESSAGE]},
            ["messages change without metadata.phone_number_id skipped"],
        ),
        ({}, ["messages change with no messages or statuses skipped"]),
        ({"messages": {"0": GOOD_WA_MESSAGE}}, ["messages change with no messages or statuses skipped"]),
        (
            {"errors": [{"code": 131000, "title": "Something went wrong"}, None]},
            ["2 value-level error(s) skipped (codes: 131000, 0)"],
        ),
        ({"statuses": [{"status": "read", "recipient_id": MARCO_PHONE}]}, ["status without an id skipped"]),
        (
            {"statuses": [{"id": "wamid.X", "recipient_id": MARCO_PHONE}]},
            ["status without a status value skipped"],
        ),
        (
            {"statuses": [{"id": "wamid.X", "status": "read"}]},
            ["status without recipient phone or BSUID skipped"],
        ),
    ],
)
def test_unreadable_whatsapp_changes_and_statuses(value: dict[str, Any], notes: list[str]) -> None:
    result = parse(whatsapp_body(value))
    assert result.events == ()
    assert result.skipped == tuple(f"whatsapp: {note}" for note in notes)


def test_failed_status_without_errors_has_code_zero() -> None:
    status = {"id": "wamid.X", "status": "failed", "recipient_id": MARCO_PHONE, "errors": [{"code": "oops"}]}
    (event,) = parse(whatsapp_body({"statuses": [status]})).events
    assert (event.status, event.error_code) == ("failed", 0)


def test_ids_not_shaped_like_ids_count_as_absent() -> None:
    braces = {"from": MARCO_PHONE, "from_user_id": "IT.{1}", "type": "reaction"}
    (event,) = parse(whatsapp_body({"messages": [braces]})).events
    assert (event.user_id, event.phone) == (MARCO_PHONE, MARCO_PHONE)
    path_like = whatsapp_body({"metadata": {"phone_number_id": "1/../me"}, "messages": [GOOD_WA_MESSAGE]})
    assert parse(path_like).skipped == ("whatsapp: messages change without metadata.phone_number_id skipped",)
    spaced = messenger_body({"sender": {"id": "74 00"}, "recipient": {"id": PAGE}, "message": {"text": "x"}})
    assert parse(spaced).skipped == ("messenger: messaging item without sender skipped",)


def messenger_body(*items: object, **entry: Any) -> dict[str, Any]:
    return {"object": "page", "entry": [{"id": PAGE, "messaging": list(items)} | entry]}


def test_messenger_odd_items() -> None:
    psid = {"sender": {"id": LUCIA_PSID}, "recipient": {"id": PAGE}}
    body = messenger_body(
        {"recipient": {"id": PAGE}, "message": {"mid": "m_1", "text": "Ciao"}},
        None,
        psid | {"timestamp": "1789000001000", "message": {"mid": "m_2", "text": "ok"}},
        psid | {"postback": {"title": "Vai", "referral": {"ref": "corso-1"}}},
        psid | {"postback": {"mid": "m_3", "title": "Vai"}},
        psid | {"referral": {"source": "SHORTLINK"}},
        psid | {"delivery": {"watermark": 1}},
        psid | {"message": {"mid": "m_4"}},
        psid | {"message": {"mid": "m_5", "attachments": [{"payload": None}]}},
        psid | {"pass_thread_control": {"new_owner_app_id": "123"}},
        psid | {"surprise": {"a": 1}},
        {"sender": {"id": LUCIA_PSID}, "message": {"mid": "m_6", "text": "hi"}},
        time=1789000000000,
    )
    result = parse(body)
    kinds = [
        (event.kind, event.message_id, event.payload or event.status or event.detail or event.media_type)
        for event in result.events
    ]
    assert kinds == [
        (TEXT, "m_2", ""),
        (CHOICE, "", "corso-1"),
        (IGNORE, "m_3", "postback without payload"),
        (IGNORE, "", "referral without ref"),
        (STATUS, "", "delivered"),
        (MEDIA, "m_5", "other"),
        (IGNORE, "", "pass_thread_control"),
        (TEXT, "m_6", ""),
    ]
    assert result.events[0].timestamp_ms == 1789000001000
    assert result.events[1].timestamp_ms == 1789000000000  # no item timestamp: the entry's time
    assert result.events[-1].reply_from == PAGE  # no recipient: the entry id
    assert result.skipped == (
        "messenger: messaging item without sender skipped",
        "messenger: messaging item without sender skipped",
        "messenger: messaging item with a message without text, quick reply or attachments skipped",
        "messenger: messaging item of unknown kind skipped",
    )


def test_messenger_entries_without_items_and_foreign_changes_are_noted() -> None:
    body = {
        "object": "page",
        "entry": [
            {"id": PAGE},
            None,
            {"id": PAGE, "changes": [{"field": "feed", "value": {"item": "post"}}]},
        ],
    }
    assert parse(body).skipped == (
        "messenger: entry without messaging, standby or changes skipped",
        "messenger: entry without messaging, standby or changes skipped",
        "messenger: change field 'feed' skipped",
    )


def instagram_body(*items: object, **entry: Any) -> dict[str, Any]:
    return {"object": "instagram", "entry": [{"id": IG_ACCOUNT, "messaging": list(items)} | entry]}


def test_instagram_odd_items() -> None:
    igsid = {"sender": {"id": LUCIA_IGSID}, "recipient": {"id": IG_ACCOUNT}}
    body = instagram_body(
        igsid | {"timestamp": "1789000001000", "message": {"mid": "m_1", "text": "ok", "reply_to": {"mid": "m_0"}}},
        igsid | {"message": {"mid": "m_2", "text": "2", "reply_to": {"story": None}}},
        igsid | {"message": {"mid": "m_3", "is_deleted": "true", "text": "x"}},
        igsid | {"message": {"mid": "m_4", "attachments": [{"type": "Foto di Lucia", "payload": None}]}},
        igsid | {"postback": {"mid": "m_5", "title": "Vai"}},
        igsid | {"referral": {"source": "IGME"}},
        igsid | {"message": {"mid": "m_6"}},
        igsid | {"surprise": {"a": 1}},
        {"sender": {"id": IG_ACCOUNT}, "message": {"mid": "m_7", "text": "hi", "is_echo": True}},
        {"sender": {"id": LUCIA_IGSID}, "message": {"mid": "m_8", "text": "hi"}},
        time=1789000000000,
    )
    result = parse(body)
    kinds = [(event.kind, event.message_id, event.text or event.payload or event.detail or event.media_type)
             for event in result.events]
    assert kinds == [
        (TEXT, "m_1", "ok"),  # a reply quoting an earlier message is just text
        (TEXT, "m_2", "2"),  # a typed number: the engine reads it as the option of that number
        (IGNORE, "", "deleted"),
        (MEDIA, "m_4", "other"),  # an odd attachment type is named "other", never copied
        (IGNORE, "m_5", "postback without payload"),
        (IGNORE, "", "referral without ref"),
        (TEXT, "m_8", "hi"),
    ]
    assert result.events[0].timestamp_ms == 1789000001000
    assert result.events[1].timestamp_ms == 1789000000000  # no item timestamp: the entry's time
    assert result.events[-1].reply_from == IG_ACCOUNT  # no recipient: the entry id
    assert result.skipped == (
        "instagram: messaging item with a message without text, quick reply or attachments skipped",
        "instagram: messaging item of unknown kind skipped",
        "instagram: messaging item without user or account id skipped",  # an echo without its recipient
    )


def test_instagram_entries_without_items_are_noted() -> None:
    body = {"object": "instagram", "entry": [{"id": IG_ACCOUNT}, None, {"id": IG_ACCOUNT, "changes": [None]}]}
    assert parse(body).skipped == (
        "instagram: entry without messaging, standby or changes skipped",
        "instagram: entry without messaging, standby or changes skipped",
        "instagram: change field 'other' skipped",
    )


# --- the mutation sweep ---------------------------------------------------------------------------

MISSING = object()  # "delete this key / list item"
CANARY = "CANARY Lucia +39 333 0001122"
ODD_NUMBERS = (-1, 1e308, math.nan, math.inf)
REPLACEMENTS = [MISSING, None, True, 0, *ODD_NUMBERS, "", CANARY, "9" * 5000, [], {}, [None], [{}]]
VOCABULARY_FIELDS = ("detail", "media_type", "status")  # fields that must hold Meta words, never user data
META_WORD = re.compile(r"[a-z][a-z0-9_]*")  # "text", "whatsapp_business_account": not private


def node_paths(node: object, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from node_paths(child, (*prefix, key))


def with_replaced(node: Any, path: tuple[Any, ...], replacement: object) -> Any:
    """A copy of ``node`` with the value at ``path`` replaced (or removed); shares untouched parts."""
    if not path:
        return replacement
    copy = dict(node) if isinstance(node, dict) else list(node)
    head, rest = path[0], path[1:]
    if not rest and replacement is MISSING:
        del copy[head]
    else:
        copy[head] = with_replaced(node[head], rest, replacement)
    return copy


def private_values(node: object) -> set[str]:
    """Texts, names, phones and ids in a body: every leaf that is not a Meta word, as a string."""
    found: set[str] = set()
    for path in node_paths(node):
        leaf: Any = node
        for key in path:
            leaf = leaf[key]
        if isinstance(leaf, str) and len(leaf) >= 4 and not META_WORD.fullmatch(leaf):
            found.add(leaf)
        elif isinstance(leaf, int) and not isinstance(leaf, bool) and leaf >= 100_000:
            found.add(str(leaf))
    return found


def assert_well_formed(result: ParseResult, forbidden: set[str]) -> None:
    assert isinstance(result, ParseResult)
    assert all(isinstance(note, str) for note in result.skipped)
    for note in result.skipped:
        assert not any(value in note for value in forbidden), note
    for event in result.events:
        assert isinstance(event, InboundEvent) and event.channel is result.channel
        assert isinstance(event.kind, EventKind)
        assert event.user_id and event.reply_from
        assert isinstance(event.timestamp_ms, int) and event.timestamp_ms >= 0
        assert isinstance(event.error_code, int) and event.error_code >= 0
        for name in ("user_id", "reply_from", "message_id", "phone", "profile_name", "text", "payload"):
            assert isinstance(getattr(event, name), str), name
        for name in VOCABULARY_FIELDS:
            value = getattr(event, name)
            assert isinstance(value, str) and not any(secret in value for secret in forbidden), (name, value)


@pytest.mark.parametrize(("folder", "name", "channel"), CASES, ids=[f"{f}/{n}" for f, n, _ in CASES])
def test_mutated_fixtures_never_raise_nor_leak(folder: str, name: str, channel: Channel) -> None:
    original = load(f"{folder}/{name}.json")
    forbidden = private_values(original) | {CANARY, "0001122"}
    assert_well_formed(parse(original), forbidden)
    for path in node_paths(original):
        for replacement in REPLACEMENTS:
            if replacement is MISSING and not path:
                continue
            assert_well_formed(parse(with_replaced(original, path, replacement)), forbidden)


@pytest.mark.parametrize(("folder", "name", "channel"), CASES, ids=[f"{f}/{n}" for f, n, _ in CASES])
def test_every_event_survives_its_json_form(folder: str, name: str, channel: Channel) -> None:
    """Events of a big batch travel to the worker as JSON (bot.dispatch.Dispatcher.handle_batch)."""
    for event in parse(load(f"{folder}/{name}.json")).events:
        assert InboundEvent.from_json(event.to_json()) == event
