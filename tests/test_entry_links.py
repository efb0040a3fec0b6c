"""Entry links and QR codes (issue 10 §5): start codes, every payload shape that carries one, the learner's
source, a Click-to-WhatsApp ad's free entry point, and the links and QR codes `bottega links` writes.

Inbound: real signed webhook bodies (the recorded fixtures, restamped) through Flask on a real Redis; the
learner's progress and outbox are read back from Redis. QR codes: the PNG is decoded again (zxing-cpp over
the pixels read with plain zlib) and must give back the very link.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from bot import channels
from bot.channels.parsing import parse
from bot.channels.signature import sign
from bot.model import start_codes
from bot.model.start_codes import StartCodeError
from bot.proactive.placement import How, Reach, place
from bot.proactive.policy import HOUR_MS, Policy, Prices
from bot.proactive.record import ProactiveRecord
from bot.storage.keys import LearnerPart, learner_key
from bot.tutor.progress import Progress
from webhooks import create_app

SECRET = "test-app-secret"


@pytest.fixture
def client(settings, redis_client):
    return create_app(settings, redis_client=redis_client, notify=lambda lid: None).test_client()


def fixture(channel: str, name: str) -> dict:
    return json.loads((channels.parts_for(channel).dev.fixtures / f"{name}.json").read_text(encoding="utf-8"))


def restamped(payload: dict, *, ref: str | None = None, text: str | None = None, user: str | None = None) -> bytes:
    """A recorded body with its times set to now, and optionally another ref, text or sender."""
    now = time.time()

    def walk(node: object) -> object:
        if isinstance(node, dict):
            out = {key: walk(value) for key, value in node.items()}
            if isinstance(node.get("timestamp"), str):
                out["timestamp"] = str(int(now))
            elif isinstance(node.get("timestamp"), int):
                out["timestamp"] = int(now * 1000)
            if isinstance(node.get("time"), int):
                out["time"] = int(now * 1000)
            if ref is not None and "ref" in node:
                out["ref"] = ref
            if text is not None and isinstance(node.get("text"), dict) and "body" in node["text"]:
                out["text"] = {"body": text}
            if user is not None and isinstance(node.get("sender"), dict):
                out["sender"] = {"id": user}
            if user is not None and "from" in node:
                out["from"] = user
            if user is not None and "wa_id" in node:
                out["wa_id"] = user
            return out
        return [walk(item) for item in node] if isinstance(node, list) else node

    return json.dumps(walk(payload)).encode()


def post(client, raw: bytes):
    response = client.post("/webhook", data=raw, headers={"Content-Type": "application/json",
                                                           "X-Hub-Signature-256": sign(SECRET, raw)})
    assert response.status_code == 200, response.data
    return response


def progress(redis_client, lid: str) -> Progress:
    found = Progress.from_hash(redis_client.hgetall(learner_key(lid, LearnerPart.PROGRESS)))
    assert found is not None, lid
    return found


def outbox_text(redis_client, lid: str) -> str:
    items = [json.loads(raw) for raw in redis_client.lrange(learner_key(lid, LearnerPart.OUTBOX), 0, -1)]
    return "\n".join(json.dumps(item["body"], ensure_ascii=False) for item in items)


def clear_outbox(redis_client, lid: str) -> None:
    redis_client.delete(learner_key(lid, LearnerPart.OUTBOX))


def tap_body(channel: str, payload: str, title: str, user: str) -> bytes:
    parts = channels.parts_for(channel)
    reply_from = {"whatsapp": "100000000000001", "messenger": "200000000000002",
                  "instagram": "17841400000000001"}[channel]
    return json.dumps(parts.dev.tap_payload(payload, title, user, reply_from, 2)).encode()


# -- the start-code grammar -----------------------------------------------------------------------------
@pytest.mark.parametrize(("target", "campaign", "code"), [
    ("m1_contatto", "vetrina", "bt-m-m1_contatto--vetrina"),
    ("m:m1_contatto", "", "bt-m-m1_contatto"),
    ("checkup", "Slide", "bt-checkup--slide"),
    ("event:od-2026-12", "openday-dicembre", "bt-event-od-2026-12--openday-dicembre"),
    ("menu", "", "bt-menu"),
])
def test_start_codes_round_trip(target, campaign, code):
    made = start_codes.make(target, campaign)
    assert made.code == code
    assert start_codes.parse(code) == made
    assert start_codes.find_in_text(f"Ciao Bottega! Codice: {code}. Grazie") == made


@pytest.mark.parametrize(("target", "campaign"), [
    ("event:", ""), ("m:bad--id", ""), ("checkup:x", ""), ("m1_contatto", "due parole"), ("m1", "x" * 41)])
def test_bad_targets_and_campaigns_are_refused_saying_what_is_expected(target, campaign):
    with pytest.raises(StartCodeError, match="expected|takes no id"):
        start_codes.make(target, campaign)


@pytest.mark.parametrize("text", ["bt-", "bt-x-y", "bt-m", "abt-m-m1", "bt-checkup-extra", "corso-facebook"])
def test_what_is_not_a_start_code_is_none(text):
    assert start_codes.find_in_text(text) is None


# -- every payload shape that carries one, parsed from the recorded bodies --------------------------------
def test_each_payload_shape_carries_its_ref_or_code():
    code = "bt-m-m2_pagina--vetrina"
    shapes = {
        ("messenger", "referral"): "referral",  # m.me ?ref= into an existing thread
        ("messenger", "get_started_referral"): "postback",  # m.me ?ref= then Get Started: postback.referral
        ("instagram", "referral"): "referral",  # ig.me ?ref=
    }
    for (channel, name), _ in shapes.items():
        (event,) = parse(json.loads(restamped(fixture(channel, name), ref=code))).events
        assert event.referral is not None and event.referral.ref == code, name
    (event,) = parse(fixture("whatsapp", "start_code")).events
    assert start_codes.find_in_text(event.text) == start_codes.make("m1_contatto", "vetrina")
    (event,) = parse(fixture("whatsapp", "ctwa_referral")).events
    assert event.referral is not None and event.referral.opens_free_entry
    assert event.referral.source_type == "ad" and event.referral.ctwa_clid.startswith("ARAk")


# -- end to end: a link starts the right thing and records the source ------------------------------------
def test_an_m_me_ref_on_get_started_starts_the_module_after_onboarding_and_records_the_source(
        client, redis_client, course):
    psid = "7400000000000091"
    lid = f"ms:{psid}"
    post(client, restamped(fixture("messenger", "get_started_referral"), ref="bt-m-m2_pagina--vetrina",
                           user=psid))
    record = progress(redis_client, lid).entry
    assert record.first is not None and record.first.campaign == "vetrina"
    assert record.first.target == "m:m2_pagina" and record.first.via == "SHORTLINK"
    assert record.waiting == "sys:module:m2_pagina"  # after the language and the business
    post(client, tap_body("messenger", "sys:lang:it", "Italiano", psid))
    clear_outbox(redis_client, lid)
    post(client, tap_body("messenger", "sys:biz:bakery", "Panificio", psid))
    learner = progress(redis_client, lid)
    assert learner.flow == "m2_pagina", "the link's module starts, not the menu"
    assert learner.entry.waiting == ""
    assert course.flows["m2_pagina"].title.get("it") in outbox_text(redis_client, lid) or \
        learner.step == course.flows["m2_pagina"].start


def test_a_wa_me_code_in_a_known_learners_text_starts_the_module_and_keeps_the_first_touch(
        client, redis_client, course):
    phone = "393479876501"
    lid = f"wa:{phone}"
    first = restamped(fixture("whatsapp", "start_code"), user=phone, text="Ciao! Codice bt-checkup--volantino")
    post(client, first)
    post(client, tap_body("whatsapp", "sys:lang:it", "Italiano", phone))
    post(client, tap_body("whatsapp", "sys:biz:bakery", "Panificio", phone))
    assert progress(redis_client, lid).pending == "checkup_confirm", "the check-up is offered after onboarding"
    body = json.loads(restamped(fixture("whatsapp", "start_code"), user=phone))
    body["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = "wamid.second-entry"
    post(client, json.dumps(body).encode())
    learner = progress(redis_client, lid)
    assert learner.flow == "m1_contatto"
    assert learner.entry.first is not None and learner.entry.first.campaign == "volantino", "first touch kept"
    assert [t.campaign for t in learner.entry.later] == ["vetrina"]
    assert learner.entry.campaign == "volantino"


def test_an_ig_me_ref_starts_the_module_for_a_known_learner(client, redis_client):
    igsid = "5100000000000091"
    lid = f"ig:{igsid}"
    post(client, restamped(fixture("instagram", "text"), user=igsid))
    post(client, tap_body("instagram", "sys:lang:en", "English", igsid))
    post(client, tap_body("instagram", "sys:biz:bakery", "Bakery", igsid))
    post(client, restamped(fixture("instagram", "referral"), ref="bt-m-m3_instagram--storia", user=igsid))
    learner = progress(redis_client, lid)
    assert learner.flow == "m3_instagram"
    assert learner.entry.first is not None and learner.entry.first.via == "IGME"
    assert learner.entry.first.campaign == "storia"


def test_an_unknown_module_in_a_code_is_recorded_and_lands_on_the_menu(client, redis_client):
    psid = "7400000000000092"
    lid = f"ms:{psid}"
    post(client, restamped(fixture("messenger", "get_started_referral"), ref="bt-m-m99_nope--x", user=psid))
    post(client, tap_body("messenger", "sys:lang:it", "Italiano", psid))
    post(client, tap_body("messenger", "sys:biz:bakery", "Panificio", psid))
    learner = progress(redis_client, lid)
    assert learner.flow == "" and learner.entry.first is not None and learner.entry.first.target == "m:m99_nope"


def test_an_open_day_link_brings_its_invitation_with_the_rsvp_buttons_after_onboarding(client, redis_client,
                                                                                      course):
    psid = "7400000000000094"
    lid = f"ms:{psid}"
    post(client, restamped(fixture("messenger", "get_started_referral"), ref="bt-event-od_2027_01--slide",
                           user=psid))
    post(client, tap_body("messenger", "sys:lang:it", "Italiano", psid))
    clear_outbox(redis_client, lid)
    post(client, tap_body("messenger", "sys:biz:bakery", "Panificio", psid))
    sent = outbox_text(redis_client, lid)
    assert course.open_day("od_2027_01").title.get("it") in sent
    assert "sys:od:yes:od_2027_01" in sent and "sys:od:no:od_2027_01" in sent
    learner = progress(redis_client, lid)
    assert learner.open_days.last == "od_2027_01" and learner.entry.first.campaign == "slide"


def test_a_ref_that_is_not_a_start_code_is_kept_as_the_source(client, redis_client):
    psid = "7400000000000093"
    post(client, restamped(fixture("messenger", "referral"), user=psid))
    record = progress(redis_client, f"ms:{psid}").entry
    assert record.first is not None and record.first.ref == "corso-facebook" and record.first.target == ""


# -- a Click-to-WhatsApp ad: recorded, and 72 hours of free-form, free ------------------------------------
def test_a_click_to_whatsapp_ad_is_recorded_with_its_free_entry_point(client, redis_client):
    phone = "393479876502"
    post(client, restamped(fixture("whatsapp", "ctwa_referral"), user=phone))
    learner = progress(redis_client, f"wa:{phone}")
    ad = learner.entry.ad
    assert ad is not None and ad.source_id == "120226305854810726" and ad.source_type == "ad"
    assert ad.ctwa_clid.startswith("ARAk") and ad.source_url == "https://fb.me/3cr4Wqqkp"
    assert learner.entry.free_until_ms - learner.last_inbound_at_ms == 72 * HOUR_MS
    assert learner.entry.first is not None and learner.entry.first.via == "ad"


def test_inside_the_free_entry_point_a_message_goes_free_form_and_free_after_the_24_hour_window():
    policy = Policy(quiet_start_minute=None, quiet_end_minute=None, prices=Prices(table={"service": 0.03}))
    start = 1_796_000_000_000
    ad = Reach(channel="whatsapp", opted_out=False, last_inbound_ms=start, record=ProactiveRecord(),
               free_entry_until_ms=start + 72 * HOUR_MS)
    plain = Reach(channel="whatsapp", opted_out=False, last_inbound_ms=start, record=ProactiveRecord())
    moment = start + 48 * HOUR_MS  # the 24-hour window is closed; the free entry point is not
    inside = place(ad, moment_ms=moment, now_ms=moment, policy=policy)
    assert inside.how is How.FREE_FORM and inside.category == "free_entry_point" and inside.cost == 0
    assert place(plain, moment_ms=moment, now_ms=moment, policy=policy).how is not How.FREE_FORM
    after = start + 73 * HOUR_MS
    assert place(ad, moment_ms=after, now_ms=after, policy=policy).how is not How.FREE_FORM


# -- bottega links: the links and the QR codes ------------------------------------------------------------
def test_links_print_the_three_deep_links_and_write_qr_codes_that_decode_to_them(tmp_path: Path, capsys):
    from bot.cli import main

    env = {"WHATSAPP_DISPLAY_NUMBER": "+39 02 0000 0001", "MESSENGER_PAGE_USERNAME": "bottega.corso",
           "INSTAGRAM_USERNAME": "bottega_corso"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        assert main(["links", "m1_contatto", "--campaign", "vetrina", "--qr", str(tmp_path / "qr")]) == 0
    printed = capsys.readouterr().out
    links = dict(re.findall(r"^(whatsapp|messenger|instagram)\s+(\S+)$", printed, re.MULTILINE))
    assert links["whatsapp"].startswith("https://wa.me/390200000001?text=")
    assert "bt-m-m1_contatto--vetrina" in links["whatsapp"]
    assert links["messenger"] == "https://m.me/bottega.corso?ref=bt-m-m1_contatto--vetrina"
    assert links["instagram"] == "https://ig.me/m/bottega_corso?ref=bt-m-m1_contatto--vetrina"
    for channel, link in links.items():
        png = tmp_path / "qr" / f"m1_contatto-vetrina-{channel}.png"
        svg = tmp_path / "qr" / f"m1_contatto-vetrina-{channel}.svg"
        assert decoded(png.read_bytes()) == link
        assert svg.read_text(encoding="utf-8").lstrip().startswith(("<?xml", "<svg"))


def test_links_refuse_an_unknown_module_and_a_missing_account_clearly(capsys, monkeypatch):
    from bot.cli import main

    monkeypatch.setenv("MESSENGER_PAGE_USERNAME", "bottega.corso")
    assert main(["links", "m99_nope"]) == 2
    assert "m99_nope" in capsys.readouterr().err
    assert main(["links", "event:od_1999_01"]) == 2
    assert "od_1999_01" in capsys.readouterr().err
    assert main(["links", "event:od_2027_01", "--campaign", "slide"]) == 0
    assert "https://m.me/bottega.corso?ref=bt-event-od_2027_01--slide" in capsys.readouterr().out
    assert main(["links", "checkup", "--channel", "whatsapp"]) == 2
    assert "WHATSAPP_DISPLAY_NUMBER" in capsys.readouterr().err


def decoded(png: bytes) -> str:
    """The text a QR decoder reads from the PNG (zxing-cpp over the pixels, read with plain zlib)."""
    import zxingcpp

    from tests.png_pixels import grey_pixels

    width, height, pixels = grey_pixels(png)
    found = zxingcpp.read_barcodes(memoryview(pixels).cast("B", shape=(height, width)))
    assert len(found) == 1, found
    return str(found[0].text)


# -- the contact address in the welcome is configuration (issue 12 §2) ------------------------------------
def test_the_welcome_names_the_configured_contact_address(redis_client, redis_url, course, tmp_path):
    from config.settings import Settings

    configured = Settings.from_env({"BOTTEGA_ENV": "test", "META_APP_SECRET": SECRET, "META_VERIFY_TOKEN": "t",
                                    "WHATSAPP_TOKEN": "w", "WHATSAPP_PHONE_NUMBER_ID": "100000000000001",
                                    "MESSENGER_PAGE_TOKEN": "p", "SUPPORT_CONTACT": "persone@panificio.example",
                                    "REDIS_URL": redis_url,  # the web app builds its job queue from it
                                    "BOTTEGA_VAR_DIR": str(tmp_path / "var")})
    client = create_app(configured, redis_client=redis_client, notify=lambda lid: None).test_client()
    post(client, restamped(fixture("whatsapp", "start_code"), user="393479876503", text="ciao"))
    welcome = outbox_text(redis_client, "wa:393479876503")
    assert "persone@panificio.example" in welcome and course.support_email not in welcome
