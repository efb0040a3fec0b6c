"""Renderers, text splitting and the limit checker of ``bot.channels.rendering`` (pure: no Redis, no HTTP)."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any

import pytest

from bot import channels
from bot.channels import check_limits, describe
from bot.channels import rendering as outbound
from bot.channels.body_checks import Shown
from bot.channels.instagram import INSTAGRAM
from bot.channels.instagram import limits as ig_limits
from bot.channels.instagram import render as instagram
from bot.channels.messenger import MESSENGER
from bot.channels.messenger import limits as ms_limits
from bot.channels.messenger import render as messenger
from bot.channels.splitting import split_keeping_tail, split_text
from bot.channels.whatsapp import WHATSAPP
from bot.channels.whatsapp import limits as wa_limits
from bot.channels.whatsapp import render as whatsapp
from bot.model.events import Channel
from bot.model.replies import Media, MediaKind, Option, Reply

PHONE = "393331234567"
BSUID = "IT.13491208655302741918"
PSID = "6789012345678901"
IGSID = "5100000000000001"
OPTION_COUNTS = (0, 1, 3, 4, 10, 11, 13, 14)


def options(count: int, *, description: str = "") -> tuple[Option, ...]:
    return tuple(
        Option(id=f"step_{i}", title=f"Opzione {i}", description=description) for i in range(1, count + 1)
    )


def squash(text: str) -> str:
    """Text with every run of whitespace made one space: what splitting may change."""
    return " ".join(text.split())


def ink(text: str) -> str:
    """Text without any whitespace: what survives even a cut inside an over-long word."""
    return "".join(text.split())


def long_text(chars: int) -> str:
    """Italian sentences of varying length, about ``chars`` characters."""
    sentences = [
        "Apri l'app e tocca il profilo.",
        "Perfetto!",
        "Ora scegli «Modifica» e scrivi l'orario di apertura del negozio, poi salva.",
        "Hai visto cosa succede?",
        "Bene… andiamo avanti 👍🏽.",
    ]
    words: list[str] = []
    i = 0
    while sum(len(w) + 1 for w in words) < chars:
        words.append(sentences[i % len(sentences)])
        i += 1
        if i % 7 == 0:
            words.append("\n\n")
    return " ".join(words).replace(" \n\n ", "\n\n").strip()


# --- splitting ---------------------------------------------------------------------------------


def test_short_text_is_one_part_and_blank_text_is_none() -> None:
    assert split_text("  Ciao!  ", 10) == ["Ciao!"]
    assert split_text(" \n ", 10) == []
    assert split_text("", 10) == []


def test_exact_limit_is_one_part_and_one_more_character_splits() -> None:
    text = "Uno due tre."  # 12 characters
    assert split_text(text, 12) == [text]
    assert split_text(text, 11) == ["Uno due", "tre."]


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        split_text("x", 0)


def test_paragraphs_are_preferred_over_sentences() -> None:
    text = "Primo. Paragrafo.\n\nSecondo paragrafo."
    assert split_text(text, 30) == ["Primo. Paragrafo.", "Secondo paragrafo."]


@pytest.mark.parametrize("end", [".", "!", "?", "…", "?!", '."', ".»", ".)"])
def test_sentence_boundaries(end: str) -> None:
    text = f"Questa è la prima frase{end} E questa la seconda."
    first = f"Questa è la prima frase{end}"
    assert split_text(text, len(first) + 5) == [first, "E questa la seconda."]


def test_numbered_lines_keep_their_number() -> None:
    text = "Scegli:\n1. Instagram\n2. Facebook\n3. Google Maps"
    assert split_text(text, 25) == ["Scegli:\n1. Instagram", "2. Facebook", "3. Google Maps"]


def test_words_are_never_cut_when_they_fit() -> None:
    text = "supercalifragilistico espialidoso e altre parole lunghe ma non troppo"
    parts = split_text(text, 22)
    assert all(len(p) <= 22 for p in parts)
    assert [w for p in parts for w in p.split()] == text.split()


def test_a_word_longer_than_the_limit_is_cut_and_only_that_word() -> None:
    url = "https://example.com/" + "a" * 30
    assert split_text(f"Vai su {url} adesso", 20) == [
        "Vai su",
        "https://example.com/",
        "a" * 20,
        "a" * 10 + " adesso",
    ]


@pytest.mark.parametrize(
    ("cluster", "limit"),
    [
        pytest.param("👍🏽", 5, id="skin tone"),
        pytest.param("👨\u200d👩\u200d👧", 7, id="zwj family"),
        pytest.param("🇮🇹", 3, id="flag"),
        pytest.param("❤\ufe0f", 3, id="variation selector"),
        pytest.param("e\u0300", 3, id="combining accent"),
    ],
)
def test_a_cut_word_keeps_emoji_and_accents_whole(cluster: str, limit: int) -> None:
    parts = split_text(cluster * 9, limit)
    assert "".join(parts) == cluster * 9
    for part in parts:
        assert len(part) <= limit
        assert part.replace(cluster, "") == "", f"{part!r} cuts through {cluster!r}"


def test_emoji_in_sentences_stay_whole() -> None:
    text = "Brava! 🎉 Hai finito la lezione 👩🏻\u200d💻. Domani si continua 🇮🇹."
    parts = split_text(text, 25)
    assert squash(" ".join(parts)) == squash(text)
    for emoji in ("🎉", "👩🏻\u200d💻", "🇮🇹"):
        assert any(emoji in p for p in parts)


@pytest.mark.parametrize("seed", range(25))
def test_random_texts_keep_every_rule(seed: int) -> None:
    rng = random.Random(seed)
    vocabulary = ["ciao", "negozio", "Instagram", "è", "perché", "👍🏽", "🇮🇹", "x" * 40, "1.", "ok."]
    separators = [" ", " ", " ", "\n", "\n\n", ". ", "! ", "… "]
    text = "".join(rng.choice(vocabulary) + rng.choice(separators) for _ in range(rng.randint(1, 300)))
    limit = rng.choice([1, 2, 7, 20, 64, 200, 1024])
    parts = split_text(text, limit)
    assert parts, "a non-blank text has at least one part"
    for part in parts:
        assert 1 <= len(part) <= limit
        assert part == part.strip()
    assert ink("".join(parts)) == ink(text)


def test_split_keeping_tail_puts_a_short_part_last() -> None:
    text = long_text(6000)
    parts = split_keeping_tail(text, limit=4096, tail_limit=1024)
    assert len(parts[-1]) <= 1024
    assert all(len(p) <= 4096 for p in parts)
    assert squash(" ".join(parts)) == squash(text)


def test_split_keeping_tail_short_text_is_untouched() -> None:
    assert split_keeping_tail("Breve.", limit=100, tail_limit=10) == ["Breve."]
    assert split_keeping_tail("", limit=100, tail_limit=10) == []


# --- WhatsApp ----------------------------------------------------------------------------------


def wa(reply: Reply, *, phone: str = PHONE) -> list[dict[str, Any]]:
    return whatsapp.render(reply, user_id=BSUID, phone=phone)


def test_whatsapp_text_goes_to_the_phone_with_plus() -> None:
    [body] = wa(Reply(text="Ciao Maria!"))
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+393331234567",
        "type": "text",
        "text": {"body": "Ciao Maria!", "preview_url": False},
    }
    [body] = wa(Reply(text="Ciao"), phone="+393331234567")
    assert body["to"] == "+393331234567"


def test_whatsapp_without_phone_goes_to_the_bsuid() -> None:
    [body] = wa(Reply(text="Ciao"), phone="")
    assert body["recipient"] == BSUID
    assert "to" not in body


def test_whatsapp_needs_phone_or_bsuid() -> None:
    with pytest.raises(ValueError, match="phone number or BSUID"):
        whatsapp.render(Reply(text="Ciao"), user_id="", phone="")


def test_whatsapp_preview_url_only_with_a_link() -> None:
    [with_link] = wa(Reply(text="Guarda https://example.com/guida"))
    [without] = wa(Reply(text="Scrivi www senza protocollo"))
    assert with_link["text"]["preview_url"] is True
    assert without["text"]["preview_url"] is False


def test_whatsapp_long_text_is_split_at_4096() -> None:
    text = long_text(10_000)
    bodies = wa(Reply(text=text))
    assert len(bodies) == 3
    assert all(b["type"] == "text" and len(b["text"]["body"]) <= 4096 for b in bodies)
    assert squash(" ".join(b["text"]["body"] for b in bodies)) == squash(text)


@pytest.mark.parametrize("count", [1, 3])
def test_whatsapp_one_to_three_options_are_buttons(count: int) -> None:
    [body] = wa(Reply(text="Pronta?", options=options(count)))
    interactive = body["interactive"]
    assert interactive["type"] == "button"
    assert interactive["body"] == {"text": "Pronta?"}
    assert interactive["action"]["buttons"] == [
        {"type": "reply", "reply": {"id": o.id, "title": o.title}} for o in options(count)
    ]


@pytest.mark.parametrize("count", [4, 10])
def test_whatsapp_four_to_ten_options_are_a_list(count: int) -> None:
    reply = Reply(
        text="Quale app usi?", options=options(count, description="Tocca per scegliere"), choose_label="Apri"
    )
    [body] = wa(reply)
    interactive = body["interactive"]
    assert interactive["type"] == "list"
    assert interactive["body"] == {"text": "Quale app usi?"}
    assert interactive["action"]["button"] == "Apri"
    [section] = interactive["action"]["sections"]
    assert section["rows"] == [
        {"id": o.id, "title": o.title, "description": "Tocca per scegliere"} for o in options(count)
    ]


def test_whatsapp_list_rows_without_description_have_none() -> None:
    [body] = wa(Reply(text="Scegli", options=options(4)))
    assert all("description" not in row for row in body["interactive"]["action"]["sections"][0]["rows"])


@pytest.mark.parametrize("count", [11, 13, 14])
def test_whatsapp_more_than_ten_options_are_numbered_text(count: int) -> None:
    [body] = wa(Reply(text="Scegli un numero:", options=options(count)))
    lines = body["text"]["body"].split("\n")
    assert lines[0] == "Scegli un numero:"
    assert lines[2:] == [f"{i}. Opzione {i}" for i in range(1, count + 1)]


@pytest.mark.parametrize(("count", "body_limit"), [(3, 1024), (10, 4096)])
def test_whatsapp_long_text_with_options_leads_with_plain_text(count: int, body_limit: int) -> None:
    text = long_text(9000)
    bodies = wa(Reply(text=text, options=options(count)))
    *leading, last = bodies
    assert leading and all(b["type"] == "text" for b in leading)
    assert last["type"] == "interactive"
    assert len(last["interactive"]["body"]["text"]) <= body_limit
    shown = [b["text"]["body"] for b in leading] + [last["interactive"]["body"]["text"]]
    assert squash(" ".join(shown)) == squash(text)


def test_whatsapp_options_without_text_use_the_choose_label() -> None:
    [body] = wa(Reply(options=options(2), choose_label="Scegli"))
    assert body["interactive"]["body"] == {"text": "Scegli"}


def test_whatsapp_media_comes_first() -> None:
    media = Media(kind=MediaKind.IMAGE, url="https://cdn.example/a.png", caption="Ecco lo schermo")
    image, text = wa(Reply(text="Trovato?", media=media))
    assert image["type"] == "image"
    assert image["image"] == {"link": "https://cdn.example/a.png", "caption": "Ecco lo schermo"}
    assert image["to"] == "+393331234567"
    assert text["text"]["body"] == "Trovato?"


def test_whatsapp_document_and_video() -> None:
    document = Media(kind=MediaKind.DOCUMENT, url="https://cdn.example/g.pdf", filename="guida.pdf")
    [body] = wa(Reply(media=document))
    assert body["document"] == {"link": "https://cdn.example/g.pdf", "filename": "guida.pdf"}
    [body] = wa(Reply(media=Media(kind=MediaKind.VIDEO, url="https://cdn.example/v.mp4")))
    assert body["type"] == "video" and body["video"] == {"link": "https://cdn.example/v.mp4"}


def test_whatsapp_long_caption_follows_as_text() -> None:
    caption = long_text(1500)
    media = Media(kind=MediaKind.IMAGE, url="https://cdn.example/a.png", caption=caption)
    image, text = wa(Reply(media=media))
    assert "caption" not in image["image"]
    assert text["text"]["body"] == caption


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (Option(id="a", title="x" * 21), "title must be 1-20"),
        (Option(id="a" * 257, title="Ok"), "id must be 1-256"),
        (Option(id="a", title=""), "title must be 1-20"),
    ],
)
def test_whatsapp_refuses_to_cut_buttons(bad: Option, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        wa(Reply(text="?", options=(bad,)))


def test_whatsapp_refuses_bad_lists() -> None:
    with pytest.raises(ValueError, match="description must be 1-72"):
        wa(Reply(text="?", options=options(4, description="d" * 73)))
    with pytest.raises(ValueError, match="list button label"):
        wa(Reply(text="?", options=options(4), choose_label="Scegli l'opzione giusta"))
    with pytest.raises(ValueError, match="unique"):
        wa(Reply(text="?", options=(*options(4), Option(id="step_1", title="Di nuovo"))))


def test_whatsapp_refuses_duplicate_button_titles() -> None:
    twins = (Option(id="a", title="Sì"), Option(id="b", title="Sì"))
    with pytest.raises(ValueError, match="unique"):
        wa(Reply(text="?", options=twins))


def test_whatsapp_mark_read() -> None:
    body = whatsapp.mark_read("wamid.ABC")
    assert body == {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.ABC"}
    assert check_limits(WHATSAPP, body) == []
    assert describe(WHATSAPP, body) == Shown("")
    with pytest.raises(ValueError):
        whatsapp.mark_read("")


# --- Messenger ---------------------------------------------------------------------------------


def ms(reply: Reply) -> list[dict[str, Any]]:
    return messenger.render(reply, user_id=PSID)


def test_messenger_text() -> None:
    [body] = ms(Reply(text="Ciao!"))
    assert body == {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": "Ciao!"}}


def test_messenger_long_text_is_split_at_2000_with_quick_replies_last() -> None:
    text = long_text(5000)
    bodies = ms(Reply(text=text, options=options(2)))
    assert len(bodies) == 3
    assert all(len(b["message"]["text"]) <= 2000 for b in bodies)
    assert [("quick_replies" in b["message"]) for b in bodies] == [False, False, True]
    assert squash(" ".join(b["message"]["text"] for b in bodies)) == squash(text)


@pytest.mark.parametrize("count", [1, 3, 4, 10, 11, 13])
def test_messenger_up_to_thirteen_options_are_quick_replies(count: int) -> None:
    [body] = ms(Reply(text="Scegli", options=options(count)))
    assert body["message"]["quick_replies"] == [
        {"content_type": "text", "title": o.title, "payload": o.id} for o in options(count)
    ]


def test_messenger_fourteen_options_are_numbered_text() -> None:
    [body] = ms(Reply(text="Scegli un numero:", options=options(14)))
    assert "quick_replies" not in body["message"]
    assert body["message"]["text"].endswith("13. Opzione 13\n14. Opzione 14")


def test_messenger_options_without_text_use_the_choose_label() -> None:
    [body] = ms(Reply(options=options(2), choose_label="Scegli"))
    assert body["message"]["text"] == "Scegli"


@pytest.mark.parametrize(
    ("kind", "attachment_type"), [("image", "image"), ("video", "video"), ("document", "file")]
)
def test_messenger_media_then_caption(kind: str, attachment_type: str) -> None:
    media = Media(kind=MediaKind(kind), url="https://cdn.example/x", caption="Guarda qui", filename="g.pdf")
    attachment, caption, text = ms(Reply(text="Fatto?", media=media, options=options(2)))
    assert attachment["message"] == {
        "attachment": {
            "type": attachment_type,
            "payload": {"url": "https://cdn.example/x", "is_reusable": True},
        }
    }
    assert caption["message"] == {"text": "Guarda qui"}
    assert text["message"]["text"] == "Fatto?" and len(text["message"]["quick_replies"]) == 2


def test_messenger_refuses_long_titles_naming_the_option() -> None:
    with pytest.raises(ValueError, match="step_x.*21 characters"):
        ms(Reply(text="?", options=(Option(id="step_x", title="t" * 21),)))
    with pytest.raises(ValueError, match="payload"):
        ms(Reply(text="?", options=(Option(id="p" * 1001, title="Ok"),)))
    with pytest.raises(ValueError, match="PSID"):
        messenger.render(Reply(text="?"), user_id="")


# --- Instagram ---------------------------------------------------------------------------------


def ig(reply: Reply) -> list[dict[str, Any]]:
    return instagram.render(reply, user_id=IGSID)


def utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def test_instagram_text() -> None:
    [body] = ig(Reply(text="Ciao!"))
    assert body == {"recipient": {"id": IGSID}, "messaging_type": "RESPONSE", "message": {"text": "Ciao!"}}


@pytest.mark.parametrize("count", [1, 3, 10, 13])
def test_instagram_options_are_numbered_lines_and_quick_replies(count: int) -> None:
    """Quick replies do not show on desktop: the same choices are readable, and typable, in the text."""
    [body] = ig(Reply(text="Scegli", options=options(count)))
    assert body["message"]["text"] == "Scegli\n\n" + "\n".join(f"{i}. Opzione {i}" for i in range(1, count + 1))
    assert body["message"]["quick_replies"] == [
        {"content_type": "text", "title": o.title, "payload": o.id} for o in options(count)
    ]


def test_instagram_fourteen_options_are_numbered_text_only() -> None:
    [body] = ig(Reply(text="Scegli un numero:", options=options(14)))
    assert "quick_replies" not in body["message"]
    assert body["message"]["text"].endswith("13. Opzione 13\n14. Opzione 14")


def test_instagram_options_without_text_use_the_choose_label() -> None:
    [body] = ig(Reply(options=options(2), choose_label="Scegli"))
    assert body["message"]["text"] == "Scegli\n\n1. Opzione 1\n2. Opzione 2"


@pytest.mark.parametrize("sentence", [
    pytest.param("Apri l'app e tocca il profilo. ", id="ascii"),
    pytest.param("Perché è così già più facile? ", id="accents, 2 bytes each"),
    pytest.param("Brava 👍🏽🎉🇮🇹! ", id="emoji, 4 bytes each"),
])
def test_instagram_long_text_keeps_under_1000_characters_and_1000_bytes(sentence: str) -> None:
    text = (sentence * (5000 // len(sentence))).strip()
    bodies = ig(Reply(text=text, options=options(2)))
    texts = [b["message"]["text"] for b in bodies]
    assert len(bodies) >= 3
    assert all(len(t) <= 999 and utf8_bytes(t) <= 1000 for t in texts)
    assert [("quick_replies" in b["message"]) for b in bodies] == [False] * (len(bodies) - 1) + [True]
    assert ink("".join(texts)) == ink(text + "1. Opzione 1" + "2. Opzione 2")
    assert texts[-1].endswith("1. Opzione 1\n2. Opzione 2")


def test_instagram_split_is_byte_exact_at_the_edge() -> None:
    assert instagram.split_for_instagram("è" * 500) == ["è" * 500]  # 1000 bytes: one part
    parts = instagram.split_for_instagram("è" * 501)  # 1002 bytes in one word: cut, nothing lost
    assert "".join(parts) == "è" * 501 and all(utf8_bytes(p) <= 1000 for p in parts)
    assert instagram.split_for_instagram("a" * 999) == ["a" * 999]  # "less than 1000 characters"
    assert [len(p) for p in instagram.split_for_instagram("a" * 1000)] == [999, 1]


@pytest.mark.parametrize(("kind", "attachment_type"), [("image", "image"), ("video", "video")])
def test_instagram_media_then_caption(kind: str, attachment_type: str) -> None:
    media = Media(kind=MediaKind(kind), url="https://cdn.example/x", caption="Guarda qui")
    attachment, caption, text = ig(Reply(text="Fatto?", media=media, options=options(2)))
    assert attachment["message"] == {"attachment": {"type": attachment_type, "payload": {"url": "https://cdn.example/x"}}}
    assert caption["message"] == {"text": "Guarda qui"}
    assert len(text["message"]["quick_replies"]) == 2


def test_instagram_document_is_a_link_in_the_text() -> None:
    media = Media(kind=MediaKind.DOCUMENT, url="https://cdn.example/g.pdf", caption="La guida", filename="g.pdf")
    link, caption = ig(Reply(media=media))
    assert link["message"] == {"text": "📄 g.pdf\nhttps://cdn.example/g.pdf"}
    assert caption["message"] == {"text": "La guida"}


def test_instagram_refuses_long_titles_naming_the_option() -> None:
    with pytest.raises(ValueError, match="step_x.*21 characters"):
        ig(Reply(text="?", options=(Option(id="step_x", title="t" * 21),)))
    with pytest.raises(ValueError, match="payload"):
        ig(Reply(text="?", options=(Option(id="p" * 1001, title="Ok"),)))
    with pytest.raises(ValueError, match="unique"):
        ig(Reply(text="?", options=(Option(id="a", title="Sì"), Option(id="a", title="No"))))
    with pytest.raises(ValueError, match="IGSID"):
        instagram.render(Reply(text="?"), user_id="")


# --- the dispatcher, the limits of every branch, describe --------------------------------------


def every_reply() -> list[Reply]:
    image = Media(kind=MediaKind.IMAGE, url="https://cdn.example/a.png", caption="Lo schermo 📱")
    document = Media(kind=MediaKind.DOCUMENT, url="https://cdn.example/g.pdf", filename="g.pdf")
    replies = [Reply(text="Ciao! Vedi https://example.com", options=options(n)) for n in OPTION_COUNTS]
    replies += [
        Reply(text=long_text(9000), options=options(n, description="Dettaglio")) for n in OPTION_COUNTS
    ]
    replies += [
        Reply(media=image),
        Reply(media=document, text="Scarica la guida.", options=options(3)),
        Reply(media=Media(kind=MediaKind.VIDEO, url="https://cdn.example/v.mp4", caption=long_text(3000))),
        Reply(options=options(3)),
        Reply(text="x" * 5000, options=options(12)),
    ]
    return replies


def rendered(reply: Reply) -> list[tuple[Channel, dict[str, Any]]]:
    return [
        *(
            (WHATSAPP, b)
            for b in outbound.render(WHATSAPP, reply, user_id=BSUID, phone=PHONE)
        ),
        *((WHATSAPP, b) for b in outbound.render(WHATSAPP, reply, user_id=BSUID)),
        *((MESSENGER, b) for b in outbound.render(MESSENGER, reply, user_id=PSID)),
        *((INSTAGRAM, b) for b in outbound.render(INSTAGRAM, reply, user_id=IGSID)),
    ]


def test_dispatcher_picks_the_channel() -> None:
    reply = Reply(text="Ciao", options=options(2))
    assert outbound.render(WHATSAPP, reply, user_id=BSUID) == whatsapp.render(reply, user_id=BSUID)
    assert outbound.render("messenger", reply, user_id=PSID) == messenger.render(reply, user_id=PSID)  # type: ignore[arg-type]
    assert outbound.render(INSTAGRAM, reply, user_id=IGSID) == instagram.render(reply, user_id=IGSID)


@pytest.mark.parametrize(
    "reply", every_reply(), ids=lambda r: f"{len(r.text)}c-{len(r.options)}o-{bool(r.media)}"
)
def test_every_rendered_body_is_within_the_limits(reply: Reply) -> None:
    for channel, body in rendered(reply):
        assert check_limits(channel, body) == [], body


@pytest.mark.parametrize(
    "reply", every_reply(), ids=lambda r: f"{len(r.text)}c-{len(r.options)}o-{bool(r.media)}"
)
def test_describe_shows_the_text_and_options(reply: Reply) -> None:
    for parts in channels.every():
        channel = parts.channel
        bodies = outbound.render(channel, reply, user_id=BSUID if channel is WHATSAPP else PSID)
        shown = [describe(channel, body) for body in bodies]
        all_text = " ".join(s.text for s in shown)
        assert ink(reply.text) in ink(all_text)
        if reply.media is not None:
            assert f"{reply.media.url}" in all_text or reply.media.filename in all_text
            assert ink(reply.media.caption) in ink(all_text)
        choices = [s.options for s in shown if s.options]
        tappable = len(reply.options) <= parts.flow_limits.options_max
        if reply.options and tappable:
            assert choices == [tuple((o.id, o.title) for o in reply.options)]
        else:
            assert choices == []
            for o in reply.options:
                assert o.title in all_text
        if channel is INSTAGRAM:  # no quick replies on desktop: every choice can be read, and typed, there
            assert all(f"{n}. {o.title}" in all_text for n, o in enumerate(reply.options, start=1))


def test_describe_media_and_messenger_templates() -> None:
    media = Media(
        kind=MediaKind.DOCUMENT, url="https://cdn.example/g.pdf", caption="La guida", filename="g.pdf"
    )
    [body] = wa(Reply(media=media))
    assert describe(WHATSAPP, body) == Shown("[document: g.pdf]\nLa guida")
    template = {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {
            "attachment": {
                "type": "template",
                "payload": {
                    "template_type": "button",
                    "text": "Pronta?",
                    "buttons": [
                        {"type": "postback", "title": "Sì", "payload": "yes"},
                        {"type": "web_url", "title": "Guida", "url": "https://example.com"},
                    ],
                },
            }
        },
    }
    assert check_limits(MESSENGER, template) == []
    assert describe(MESSENGER, template) == Shown(
        "Pronta?", (("yes", "Sì"), ("https://example.com", "Guida"))
    )
    typing = {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "sender_action": "typing_on"}
    assert check_limits(MESSENGER, typing) == []
    assert describe(MESSENGER, typing) == Shown("")


# --- check_limits catches each violation class --------------------------------------------------

WA, MS, IG = WHATSAPP, MESSENGER, INSTAGRAM
WA_BUTTONS = whatsapp.render(Reply(text="Pronta?", options=options(3)), user_id=BSUID, phone=PHONE)[0]
WA_LIST = whatsapp.render(Reply(text="Scegli", options=options(4, description="d")), user_id=BSUID)[0]
WA_TEXT = whatsapp.render(Reply(text="Ciao"), user_id=BSUID, phone=PHONE)[0]
WA_IMAGE = whatsapp.render(Reply(media=Media(kind=MediaKind.IMAGE, url="https://x/a.png")), user_id=BSUID)[0]
WA_READ = whatsapp.mark_read("wamid.X")
MS_QUICK = messenger.render(Reply(text="Scegli", options=options(3)), user_id=PSID)[0]
IG_QUICK = instagram.render(Reply(text="Scegli", options=options(3)), user_id=IGSID)[0]
IG_IMAGE = instagram.render(Reply(media=Media(kind=MediaKind.IMAGE, url="https://x/a.png")), user_id=IGSID)[0]

Mutation = Callable[[dict[str, Any]], object]


def interactive(b: dict[str, Any]) -> dict[str, Any]:
    return b["interactive"]


def buttons(b: dict[str, Any]) -> list[dict[str, Any]]:
    return b["interactive"]["action"]["buttons"]


def rows(b: dict[str, Any]) -> list[dict[str, Any]]:
    return b["interactive"]["action"]["sections"][0]["rows"]


def quick(b: dict[str, Any]) -> list[dict[str, Any]]:
    return b["message"]["quick_replies"]


def rows_of(prefix: str, count: int) -> list[dict[str, str]]:
    return [{"id": f"{prefix}{i}", "title": prefix} for i in range(count)]


def button_template(text: str, *buttons: dict[str, str]) -> Mutation:
    payload = {"template_type": "button", "text": text, "buttons": list(buttons)}
    return lambda b: b.update(message={"attachment": {"type": "template", "payload": payload}})


OK_POSTBACK = {"type": "postback", "title": "Ok", "payload": "ok"}


def case(name: str, channel: Channel, good: dict[str, Any], mutate: Mutation, expected: str) -> Any:
    return pytest.param(channel, good, mutate, expected, id=name)


BAD = [
    case("no product", WA, WA_TEXT, lambda b: b.pop("messaging_product"), "messaging_product"),
    case("no recipient", WA, WA_TEXT, lambda b: b.pop("to"), "to/recipient: missing"),
    case("to without +", WA, WA_TEXT, lambda b: b.update(to=PHONE), "to: expected '+'"),
    case("empty bsuid", WA, WA_LIST, lambda b: b.update(recipient=""), "recipient: missing"),
    case("text 4097", WA, WA_TEXT, lambda b: b["text"].update(body="x" * 4097), "text.body: 4097"),
    case("empty text", WA, WA_TEXT, lambda b: b["text"].update(body=""), "text.body: missing"),
    case("no content", WA, WA_TEXT, lambda b: b.pop("text"), "text: missing"),
    case("unknown type", WA, WA_TEXT, lambda b: b.update(type="carousel"), "'carousel'"),
    case("caption 1025", WA, WA_IMAGE, lambda b: b["image"].update(caption="c" * 1025), "caption: 1025"),
    case("no link", WA, WA_IMAGE, lambda b: b["image"].pop("link"), "'link' or 'id'"),
    case("body 1025", WA, WA_BUTTONS, lambda b: interactive(b)["body"].update(text="x" * 1025), "text: 1025"),
    case("4 buttons", WA, WA_BUTTONS, lambda b: buttons(b).append(buttons(b)[0]), "4 items, allowed 1-3"),
    case("0 buttons", WA, WA_BUTTONS, lambda b: buttons(b).clear(), "0 items"),
    case("title 21", WA, WA_BUTTONS, lambda b: buttons(b)[1]["reply"].update(title="t" * 21), "title: 21"),
    case(
        "id 257", WA, WA_BUTTONS, lambda b: buttons(b)[0]["reply"].update(id="i" * 257), "[0].reply.id: 257"
    ),
    case(
        "same ids", WA, WA_BUTTONS, lambda b: buttons(b)[2]["reply"].update(id="step_1"), "id: must be unique"
    ),
    case("button type", WA, WA_BUTTONS, lambda b: buttons(b)[0].update(type="url"), "expected 'reply'"),
    case(
        "footer 61", WA, WA_BUTTONS, lambda b: interactive(b).update(footer={"text": "f" * 61}), "footer.text"
    ),
    case(
        "header 61",
        WA,
        WA_LIST,
        lambda b: interactive(b).update(header={"type": "text", "text": "h" * 61}),
        "61",
    ),
    case(
        "list 4097", WA, WA_LIST, lambda b: interactive(b)["body"].update(text="x" * 4097), "body.text: 4097"
    ),
    case(
        "label 21",
        WA,
        WA_LIST,
        lambda b: interactive(b)["action"].update(button="b" * 21),
        "action.button: 21",
    ),
    case("11 rows", WA, WA_LIST, lambda b: rows(b).extend(rows_of("r", 7)), "11 items, allowed 1-10"),
    case("row title 25", WA, WA_LIST, lambda b: rows(b)[3].update(title="t" * 25), "rows[3].title: 25"),
    case("row text 73", WA, WA_LIST, lambda b: rows(b)[0].update(description="d" * 73), "description: 73"),
    case("row id 201", WA, WA_LIST, lambda b: rows(b)[0].update(id="i" * 201), "rows[0].id: 201"),
    case("same row ids", WA, WA_LIST, lambda b: rows(b)[1].update(id="step_1"), "must be unique"),
    case(
        "rows across sections",
        WA,
        WA_LIST,
        lambda b: interactive(b)["action"].update(
            sections=[{"title": "A", "rows": rows_of("a", 6)}, {"title": "B", "rows": rows_of("b", 5)}]
        ),
        "11 rows in all sections",
    ),
    case(
        "untitled sections",
        WA,
        WA_LIST,
        lambda b: interactive(b)["action"]["sections"].append({"rows": rows_of("z", 1)}),
        "sections[1].title: missing",
    ),
    case("read status", WA, WA_READ, lambda b: b.update(status="sent"), "status: expected 'read'"),
    case("no psid", MS, MS_QUICK, lambda b: b["recipient"].pop("id"), "recipient.id: missing"),
    case("messaging type", MS, MS_QUICK, lambda b: b.update(messaging_type="NOW"), "messaging_type"),
    case("tag missing", MS, MS_QUICK, lambda b: b.update(messaging_type="MESSAGE_TAG"), "tag: missing"),
    case("no message", MS, MS_QUICK, lambda b: b.pop("message"), "exactly one of them"),
    case("text 2001", MS, MS_QUICK, lambda b: b["message"].update(text="x" * 2001), "message.text: 2001"),
    case(
        "text and attachment",
        MS,
        MS_QUICK,
        lambda b: b["message"].update(attachment={"type": "image", "payload": {"url": "u"}}),
        "exactly one of text",
    ),
    case(
        "14 quick replies",
        MS,
        MS_QUICK,
        lambda b: quick(b).extend(quick(b) * 3 + quick(b)[:2]),
        "14 items, allowed 1-13",
    ),
    case(
        "qr title 21",
        MS,
        MS_QUICK,
        lambda b: quick(b)[0].update(title="t" * 21),
        "quick_replies[0].title: 21",
    ),
    case("payload 1001", MS, MS_QUICK, lambda b: quick(b)[2].update(payload="p" * 1001), "[2].payload: 1001"),
    case("no payload", MS, MS_QUICK, lambda b: quick(b)[2].pop("payload"), "payload: missing"),
    case("template 641", MS, MS_QUICK, button_template("x" * 641, OK_POSTBACK), "payload.text: 641"),
    case(
        "template 4 buttons", MS, MS_QUICK, button_template("?", *[OK_POSTBACK] * 4), "4 items, allowed 1-3"
    ),
    case("template 0 buttons", MS, MS_QUICK, button_template("?"), "0 items, allowed 1-3"),
    case(
        "postback title 21",
        MS,
        MS_QUICK,
        button_template("?", {**OK_POSTBACK, "title": "t" * 21}),
        "buttons[0].title: 21",
    ),
    case(
        "media without url",
        MS,
        MS_QUICK,
        lambda b: b.update(message={"attachment": {"type": "image", "payload": {"is_reusable": True}}}),
        "'url' or 'attachment_id'",
    ),
    case("ig no igsid", IG, IG_QUICK, lambda b: b["recipient"].pop("id"), "recipient.id: missing"),
    case("ig user_ref", IG, IG_QUICK, lambda b: b.update(recipient={"user_ref": "x"}), "recipient.id: missing"),
    case("ig messaging type", IG, IG_QUICK, lambda b: b.update(messaging_type="NOW"), "messaging_type"),
    case("ig no message", IG, IG_QUICK, lambda b: b.pop("message"), "exactly one of them"),
    case("ig text 1000", IG, IG_QUICK, lambda b: b["message"].update(text="x" * 1000), "message.text: 1000"),
    case("ig 1001 bytes", IG, IG_QUICK, lambda b: b["message"].update(text="è" * 500 + "x"), "1001 UTF-8 bytes"),
    case("ig 14 quick replies", IG, IG_QUICK, lambda b: quick(b).extend(quick(b) * 3 + quick(b)[:2]),
         "14 items, allowed 1-13"),
    case("ig qr title 21", IG, IG_QUICK, lambda b: quick(b)[0].update(title="t" * 21), "quick_replies[0].title: 21"),
    case("ig qr phone", IG, IG_QUICK, lambda b: quick(b)[1].update(content_type="user_phone_number"),
         "[1].content_type: expected text"),
    case("ig payload 1001", IG, IG_QUICK, lambda b: quick(b)[2].update(payload="p" * 1001), "[2].payload: 1001"),
    case("ig button template", IG, IG_QUICK, button_template("?", OK_POSTBACK), "'template' is not one Bottega sends"),
    case("ig file", IG, IG_IMAGE, lambda b: b["message"]["attachment"].update(type="file"), "'file' is not one"),
    case("ig media without url", IG, IG_IMAGE, lambda b: b["message"]["attachment"].update(payload={}),
         "'url' or 'attachment_id'"),
    case("ig two images", IG, IG_IMAGE, lambda b: b["message"].update(attachments=[]), "exactly one of text or"),
]


@pytest.mark.parametrize(("channel", "good", "mutate", "expected"), BAD)
def test_check_limits_catches(
    channel: Channel, good: dict[str, Any], mutate: Mutation, expected: str
) -> None:
    assert check_limits(channel, good) == []
    bad = copy.deepcopy(good)
    mutate(bad)
    problems = check_limits(channel, bad)
    assert any(expected in p for p in problems), problems


def test_check_limits_rejects_non_objects() -> None:
    assert check_limits(WHATSAPP, [])  # type: ignore[arg-type]


# The numbers docs/platform.md §6 and §7 state: a limit changed in code must be changed there too.
DOCUMENTED_LIMITS = {
    "WA_TEXT_BODY_CHARS": 4096,
    "WA_BUTTON_BODY_CHARS": 1024,
    "WA_BUTTONS_MAX": 3,
    "WA_BUTTON_TITLE_CHARS": 20,
    "WA_BUTTON_ID_CHARS": 256,
    "WA_LIST_ROWS_MAX": 10,
    "WA_ROW_TITLE_CHARS": 24,
    "WA_ROW_DESCRIPTION_CHARS": 72,
    "WA_ROW_ID_CHARS": 200,
    "WA_LIST_BUTTON_CHARS": 20,
    "WA_LIST_BODY_CHARS": 4096,
    "WA_CAPTION_CHARS": 1024,
    "WA_FOOTER_CHARS": 60,
    "MS_TEXT_CHARS": 2000,
    "MS_QUICK_REPLIES_MAX": 13,
    "MS_QUICK_REPLY_TITLE_CHARS": 20,
    "MS_PAYLOAD_CHARS": 1000,
    "MS_BUTTON_TEMPLATE_TEXT_CHARS": 640,
    "MS_BUTTON_TEMPLATE_BUTTONS_MIN": 1,
    "MS_BUTTON_TEMPLATE_BUTTONS_MAX": 3,
    "MS_BUTTON_TITLE_CHARS": 20,
}


def test_limits_match_docs_platform_md() -> None:
    found = {name: getattr(wa_limits if name.startswith("WA_") else ms_limits, name) for name in DOCUMENTED_LIMITS}
    assert found == DOCUMENTED_LIMITS


# Instagram Messaging's own pages, as read in late 2026 (bot/channels/instagram/limits.py names each source):
# "Send a Message" (text "less than 1000 characters", "1000 bytes or less"; image, video, audio) and
# "Quick Replies" (13, titles of 20, plain text only); docs/platform.md §8 states the same.
INSTAGRAM_DOCS_LIMITS = {
    "IG_TEXT_CHARS": 999,
    "IG_TEXT_UTF8_BYTES": 1000,
    "IG_QUICK_REPLIES_MAX": 13,
    "IG_QUICK_REPLY_TITLE_CHARS": 20,
    "IG_PAYLOAD_CHARS": 1000,
    "IG_ATTACHMENT_TYPES": ("image", "video", "audio"),
}


def test_instagram_limits_match_metas_instagram_pages() -> None:
    assert {name: getattr(ig_limits, name) for name in INSTAGRAM_DOCS_LIMITS} == INSTAGRAM_DOCS_LIMITS


# -- a turn's replies: fewer, fuller messages (rendering.render_turn) ------------------------------------------
def turn_bodies(channel: Channel, *replies: Reply) -> list[dict[str, Any]]:
    user = {WHATSAPP: BSUID, MESSENGER: PSID, INSTAGRAM: IGSID}[channel]
    rendered = outbound.render_turn(channel, replies, user_id=user, phone=PHONE if channel is WHATSAPP else "")
    return [body for _, bodies in rendered for body in bodies]


@pytest.mark.parametrize("channel", [WHATSAPP, MESSENGER, INSTAGRAM])
def test_the_last_text_of_a_turn_carries_the_buttons_of_the_question_after_it(channel: Channel) -> None:
    lesson, question = Reply(text="Una lezione breve."), Reply(text="Fatto?", options=options(3))
    bodies = turn_bodies(channel, Reply(text="Benvenuto!"), lesson, question)
    assert len(bodies) == 1  # the texts before the question ride on it, as far as its body holds them
    shown = describe(channel, bodies[0])
    assert shown.text.startswith("Benvenuto!\n\nUna lezione breve.\n\nFatto?")  # Instagram: numbered options follow
    assert [title for _, title in shown.options] == ["Opzione 1", "Opzione 2", "Opzione 3"]
    assert check_limits(channel, bodies[0]) == []
    long_first = Reply(text="Una lezione lunga. " * 150)  # over what any channel's body with options holds
    bodies = turn_bodies(channel, Reply(text="Benvenuto!"), long_first, lesson, question)
    shown_all = [describe(channel, body) for body in bodies]
    assert shown_all[0] == Shown(text="Benvenuto!", options=())  # not after the long text: order is kept
    assert shown_all[-1].text.startswith("Una lezione breve.\n\nFatto?") and shown_all[-1].options
    assert all(check_limits(channel, body) == [] for body in bodies)


IG_NUMBERED = len("\n\n1. Opzione 1\n2. Opzione 2\n3. Opzione 3")  # Instagram writes the options in the text


@pytest.mark.parametrize(("channel", "limit"), [
    (WHATSAPP, wa_limits.WA_BUTTON_BODY_CHARS), (MESSENGER, ms_limits.MS_TEXT_CHARS),
    (INSTAGRAM, ig_limits.IG_TEXT_CHARS - IG_NUMBERED)])
def test_a_text_too_long_to_ride_with_the_buttons_stays_a_bubble_of_its_own(channel: Channel, limit: int) -> None:
    question = Reply(text="Fatto?", options=options(3))
    fits = Reply(text="x" * (limit - len("\n\nFatto?")))
    assert len(turn_bodies(channel, fits, question)) == 1  # exactly at the carrying body's limit
    too_long = Reply(text="x" * (limit - len("\n\nFatto?") + 1))
    separate = turn_bodies(channel, too_long, question)
    assert separate == [*turn_bodies(channel, too_long), *turn_bodies(channel, question)]


def test_replies_of_different_kinds_are_never_joined() -> None:
    question = Reply(text="Fatto?", options=options(2))
    for before in (Reply(text="Ciao", proactive="reminder"), Reply(text="Ciao", lang="en")):
        assert len(turn_bodies(WHATSAPP, before, question)) == 2
    with_media = Reply(text="Guarda", options=options(2), media=Media(kind=MediaKind.IMAGE, url="https://x/a.png"))
    assert len(turn_bodies(WHATSAPP, Reply(text="Ciao"), with_media)) == 3  # the image would come between them
    ephemeral = turn_bodies(WHATSAPP, Reply(text="Non ho capito.", ephemeral=True),
                            Reply(text="Fatto?", options=options(2), ephemeral=True))
    assert len(ephemeral) == 1 and describe(WHATSAPP, ephemeral[0]).text == "Non ho capito.\n\nFatto?"
    lesson_then_prompt = outbound.render_turn(WHATSAPP, [Reply(text="Lezione"), Reply(text="Fatto?", options=options(2),
                                                                                  ephemeral=True)], user_id=BSUID)
    assert [(reply.text, reply.ephemeral) for reply, _ in lesson_then_prompt] == [("Lezione\n\nFatto?", False)]
    both = outbound.render_turn(WHATSAPP, [Reply(text="Aiuto", ephemeral=True),
                                           Reply(text="Fatto?", options=options(2), ephemeral=True)], user_id=BSUID)
    assert [reply.ephemeral for reply, _ in both] == [True]  # a re-prompt with its note: dropped when stale
