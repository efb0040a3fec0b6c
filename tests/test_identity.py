"""One learner across channels (issue 12 §1), on the real dispatcher and a real Redis: linking with a code,
the merge rules, racing and crashed merges, unlinking, ids that change on a linked channel, and a fuzz of
the code that must never link the wrong people."""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from bot.certificates.model import Certificate, new_code, new_token
from bot.channels.instagram import INSTAGRAM
from bot.channels.messenger import MESSENGER
from bot.channels.whatsapp import WHATSAPP
from bot.model.events import EventKind, InboundEvent
from bot.privacy.chat import read_export
from bot.privacy.retention import DAY_MS, Swept, sweep
from bot.storage import certificate_store, clock, links
from bot.storage.keys import LearnerPart, certificate_learner_key, learner_key, link_code_key, shard_of
from bot.storage.links import Journal, Linked, Links
from bot.tutor import conversations, linking, merging
from bot.tutor.progress import Progress
from bot.tutor.progress_parts import ChannelConversation, CheckupAttempt, CheckupResult
from tests.identity_harness import World, finish_module_1


@pytest.fixture
def world(redis_client, settings, course) -> World:
    return World(client=redis_client, settings=settings, course=course)


def linked_pair(world: World) -> tuple:
    ms = world.phone(MESSENGER, "7000000000000501")
    wa = world.phone(WHATSAPP, "393330000501")
    return ms, wa


def test_a_messenger_learner_links_whatsapp_with_a_code_and_sees_module_1_done_there(world, course):
    ms, wa = linked_pair(world)
    finish_module_1(ms, course)
    ms.send("collega")
    code = ms.last_code()
    wa.send(f"collega {code}")
    assert any("Messenger" in t and "WhatsApp" in t and "collegati" in t for t in wa.texts())
    assert any("collegati" in t for t in ms.texts()[-2:])  # confirmed in both chats
    wa.send("progressi")
    assert any("Moduli completati: 1 su 13" in t for t in wa.texts()[-3:])  # the progress summary, on WhatsApp
    record = world.progress(ms.learner_id)
    assert record is not None and record.modules_done == ["m1_contatto"]
    assert world.client.get(learner_key(wa.learner_id, LearnerPart.ALIAS)) == ms.learner_id.encode()
    assert world.progress(wa.learner_id) is None  # one record: the alias leads to it
    # each conversation keeps its own dedup set and outbox, under the learner's slot
    assert world.client.exists(learner_key(f"{ms.learner_id}@whatsapp", LearnerPart.SEEN))
    assert world.client.exists(learner_key(ms.learner_id, LearnerPart.SEEN))
    # replies go where the learner last wrote from
    ms.send("menu")
    assert world.progress(ms.learner_id).channel == "messenger"
    before = len(wa.shown)
    wa.send("aiuto")
    assert len(wa.shown) > before and world.progress(ms.learner_id).channel == "whatsapp"
    # the conversations the sender and the erase job drain, and a move carries: the current one included
    assert [c.channel for c in world.dispatcher.store.linked_conversations(ms.learner_id)] == ["whatsapp"]
    # a used code links nobody
    ig = world.phone(INSTAGRAM, "17841400000000501")
    ig.send(f"collega {code}")
    assert world.client.get(learner_key(ig.learner_id, LearnerPart.ALIAS)) is None
    assert any("non funziona" in t for t in ig.texts())


def test_the_linked_channels_certificate_follows_the_link_from_another_shard(world, course):
    ms, wa = linked_pair(world)
    assert shard_of(ms.learner_id) != shard_of(wa.learner_id)  # two slots on a Redis Cluster (tests/test_cluster_*)
    ms.send("ciao")
    wa.send("ciao")
    certificate = Certificate(code=new_code(), token=new_token(), learner_id=wa.learner_id, name="Anna",
                              business_name="Forno", issued_ms=1_795_777_200_000, score_percent=90, lang="it")
    certificate_store.save(world.client, certificate)
    ms.send("collega")
    wa.send(f"collega {ms.last_code()}")
    assert world.client.get(learner_key(wa.learner_id, LearnerPart.ALIAS)) == ms.learner_id.encode()
    carried = certificate_store.by_learner(world.client, ms.learner_id)
    assert carried is not None and carried.code == certificate.code
    assert not world.client.exists(certificate_learner_key(wa.learner_id))


def test_unlink_gives_each_channel_the_progress_it_has_now(world, course):
    ms, wa = linked_pair(world)
    finish_module_1(ms, course)
    ms.send("collega")
    wa.send(ms.last_code())
    wa.send("scollega")
    wa.tap("Sì")
    assert any("non sono più collegati" in t for t in wa.texts())
    assert any("non sono più collegati" in t for t in ms.texts())
    mine, theirs = world.progress(ms.learner_id), world.progress(wa.learner_id)
    assert mine is not None and theirs is not None
    assert mine.conversations == () and theirs.conversations == ()
    assert mine.modules_done == theirs.modules_done == ["m1_contatto"]
    assert world.client.get(learner_key(wa.learner_id, LearnerPart.ALIAS)) is None
    assert not world.client.keys("bottega:*@whatsapp*") and not world.client.keys("bottega:*:merge")
    wa.send("menu")
    ms.send("menu")
    assert world.progress(wa.learner_id).rev > theirs.rev and world.progress(ms.learner_id).rev > mine.rev


def test_a_racing_duplicate_link_attempt_links_once_and_only_the_right_people(world, course):
    ms, wa = linked_pair(world)
    other = world.phone(INSTAGRAM, "17841400000000502")
    ms.send("ciao")
    ms.send("collega")
    code = ms.last_code()
    wa.send("ciao")
    other.send("ciao")
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def redeem(phone, n):
        barrier.wait()
        try:
            world.dispatcher.handle(phone.event(EventKind.TEXT, text=code, message_id=f"race.{n}"))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=redeem, args=(phone, n)) for n, phone in enumerate((wa, wa, other))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    aliases = {phone.learner_id: world.client.get(learner_key(phone.learner_id, LearnerPart.ALIAS))
               for phone in (wa, other)}
    joined = [lid for lid, alias in aliases.items() if alias == ms.learner_id.encode()]
    assert len(joined) == 1
    record = world.progress(ms.learner_id)
    assert [c.learner_id for c in conversations.every(record) if c.learner_id != ms.learner_id] == joined
    assert not world.client.keys("bottega:*:merge")


def _reserve(world: World, into: str, other: str, channel: str, at_ms: int) -> Journal:
    """A link that got as far as reserving both learners, then crashed."""
    journal = Journal(id="crashed", kind="link", into=into, other=other, channel=channel, at_ms=at_ms,
                      conversation=ChannelConversation(channel=channel, learner_id=other, user_id=other.split(":")[1],
                                                       phone=other.split(":")[1]).to_json())
    world.client.set(learner_key(other, LearnerPart.MERGE), journal.to_json())
    world.client.set(learner_key(into, LearnerPart.MERGE), journal.to_json())
    return journal


def test_a_crash_before_the_merge_applied_leaves_both_apart_after_recovery(world, course):
    ms, wa = linked_pair(world)
    finish_module_1(ms, course)
    wa.send("ciao")
    wa_rev = world.progress(wa.learner_id).rev
    _reserve(world, ms.learner_id, wa.learner_id, "whatsapp", world.now_ms() - links.GRACE_MS - 1)
    wa.tap("Italiano")  # the frozen learner's next message finishes the journal first: too old, rolled back
    assert world.progress(wa.learner_id).rev == wa_rev + 1
    assert world.progress(ms.learner_id).conversations == ()
    assert world.client.get(learner_key(wa.learner_id, LearnerPart.ALIAS)) is None
    assert not world.client.keys("bottega:*:merge")


def test_a_crash_after_the_merge_applied_leaves_both_merged_after_recovery(world, course, monkeypatch):
    ms, wa = linked_pair(world)
    finish_module_1(ms, course)
    wa.send("ciao")
    journal = _reserve(world, ms.learner_id, wa.learner_id, "whatsapp", world.now_ms())
    store = Links(world.dispatcher.store)
    assert store._apply_link(journal, world.now_ms()) == 1  # step 3 done; the process dies before step 4
    assert world.client.exists(learner_key(wa.learner_id, LearnerPart.PROGRESS))
    wa.send("progressi")  # the next message finishes it: forward
    assert world.client.get(learner_key(wa.learner_id, LearnerPart.ALIAS)) == ms.learner_id.encode()
    assert not world.client.exists(learner_key(wa.learner_id, LearnerPart.PROGRESS))
    assert world.progress(ms.learner_id).modules_done == ["m1_contatto"]
    assert [c.channel for c in conversations.every(world.progress(ms.learner_id))] == ["whatsapp", "messenger"]
    assert not world.client.keys("bottega:*:merge")
    assert any("1" in t for t in wa.texts()[-2:])


def test_the_worker_recovers_a_journal_nobody_writes_to(world, course):
    ms, wa = linked_pair(world)
    ms.send("ciao")
    wa.send("ciao")
    _reserve(world, ms.learner_id, wa.learner_id, "whatsapp", world.now_ms())
    store = Links(world.dispatcher.store)
    assert store.recover(ms.learner_id, world.now_ms()) is Linked.LINKED
    assert store.pending() == []


def test_merge_rules():
    def learner(lid: str, **changes) -> Progress:
        return Progress(learner_id=lid, channel="messenger", user_id=lid.split(":")[1], rev=3, **changes)

    result_a = CheckupResult(percent=60, level="b", finished_ms=10)
    result_b = CheckupResult(percent=80, level="a", finished_ms=5)
    a = learner("ms:1", modules_done=["m1"], module_scores={"m1": [3, 4], "m2": [1, 4]},
                answers={"m2": {"q1": "a"}, "m3": {"q1": "b", "q2": "c"}}, flow="m3", step="q3",
                checkup=CheckupAttempt(attempt=1, result=result_a, history=(result_a,)), lang="it",
                lang_chosen_at_ms=100, reminders_chosen_at_ms=500, updated_at_ms=1000)
    b = learner("wa:2", modules_done=["m2", "m4"], module_scores={"m2": [4, 4]}, answers={"m2": {"q1": "b"}},
                flow="m5", step="intro", checkup=CheckupAttempt(attempt=2, result=result_b, history=(result_b,)),
                lang="en", lang_chosen_at_ms=200, reminders_chosen_at_ms=100, updated_at_ms=2000)
    merged = merging.merge(a, b, ChannelConversation(channel="whatsapp", learner_id="wa:2", user_id="2"))
    assert merged.modules_done == ["m1", "m2", "m4"]  # union
    assert merged.module_scores == {"m1": [3, 4], "m2": [4, 4]}  # the better score per module
    assert merged.answers["m2"] == {"q1": "b"} and merged.answers["m3"] == {"q1": "b", "q2": "c"}  # kept
    assert (merged.flow, merged.step) == ("m3", "q3")  # the more advanced module in progress
    assert merged.checkup.result == result_b and len(merged.checkup.history) == 2 and merged.checkup.attempt == 2
    assert merged.lang == "en"  # the most recent choice
    assert merged.reminders_chosen_at_ms == 500
    assert merged.learner_id == "ms:1" and [c.learner_id for c in merged.conversations] == ["wa:2"]


def test_a_bsuid_for_a_phone_keyed_linked_learner_keeps_their_progress(world, course):
    ms, wa = linked_pair(world)
    finish_module_1(ms, course)
    ms.send("collega")
    wa.send(ms.last_code())
    # WhatsApp now names the same person by a BSUID, the phone still in the payload
    bsuid_event = InboundEvent(channel=WHATSAPP, kind=EventKind.TEXT, user_id="IT.0000000501",
                               reply_from=wa.parts.dev.reply_from(world.settings), message_id="m.bsuid.1",
                               timestamp_ms=world.now_ms(), phone=wa.user, bsuid="IT.0000000501", text="progressi")
    world.dispatcher.handle(bsuid_event)
    assert world.client.get(learner_key("wa:IT.0000000501", LearnerPart.ALIAS)) == ms.learner_id.encode()
    assert world.progress(ms.learner_id).modules_done == ["m1_contatto"]
    assert world.progress("wa:IT.0000000501") is None


def test_a_changed_number_on_a_linked_channel_moves_the_conversation_and_frees_the_old_number(world, course):
    ms, wa = linked_pair(world)
    finish_module_1(ms, course)
    ms.send("collega")
    wa.send(ms.last_code())
    changed = InboundEvent(channel=WHATSAPP, kind=EventKind.IDENTITY, user_id="393330000999",
                           reply_from=wa.parts.dev.reply_from(world.settings), message_id="m.changed",
                           timestamp_ms=world.now_ms(), phone="393330000999", detail="user_changed_number",
                           previous_ids=(wa.user,))
    world.dispatcher.handle(changed)
    assert world.client.get(learner_key("wa:393330000999", LearnerPart.ALIAS)) == ms.learner_id.encode()
    assert world.client.get(learner_key(wa.learner_id, LearnerPart.ALIAS)) is None  # the old number is free
    record = world.progress(ms.learner_id)
    whatsapp = next(c for c in conversations.every(record) if c.channel == "whatsapp")
    assert whatsapp.learner_id == "wa:393330000999"
    new = world.phone(WHATSAPP, "393330000999")
    new.send("progressi")
    assert world.progress(ms.learner_id).modules_done == ["m1_contatto"] and new.texts()


# -- the code, fuzzed ---------------------------------------------------------------------------------

@pytest.mark.parametrize("draw", range(30))
def test_code_reading(draw):
    code = linking.new_code()
    assert len(code) == 8 and set(code) <= set(linking.ALPHABET) and any(ch.isdigit() for ch in code)
    shown = linking.shown(code)
    for typed in (shown, shown.lower(), f"collega {shown}", f"LINK {code}", f" {code[:4]} {code[4:]} "):
        assert linking.code_in(typed) == code, typed


def test_bare_codes_need_a_digit_or_their_dash():
    assert linking.code_in(" K7M4 Q9XR ") == "K7M4Q9XR"  # bare, with a digit
    assert linking.code_in("JPAF JENV") == "" and linking.code_in("JPAF-JENV") == "JPAFJENV"
    assert linking.code_in("collega JPAF JENV") == "JPAFJENV"  # after the word, anything of the shape
    assert linking.code_in("", "link.JPAFJENV") == "JPAFJENV"  # a deep link's ref
    assert linking.code_in("perfetta") == "" and linking.code_in("collega perfetta") == "PERFETTA"
    assert linking.code_in("ciao") == linking.code_in("menu") == ""


OPS = st.lists(st.tuples(st.sampled_from(["issue", "right", "wrong", "reuse", "expired", "others"]),
                         st.integers(min_value=0, max_value=3), st.integers(min_value=0, max_value=3)),
               min_size=1, max_size=8)


def test_fuzzed_codes_never_link_the_wrong_people(redis_client, settings, course):
    """Learners 0-3 on Messenger ask for codes; WhatsApp ids 0-3 send right, wrong, reused, expired codes and
    each other's. A WhatsApp id ends linked to a learner only if it sent a live code that learner asked for."""

    @hyp_settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(ops=OPS, mutation=st.text(alphabet=linking.ALPHABET, min_size=8, max_size=8))
    def run(ops, mutation):
        one_run(world, ops, mutation)

    world = World(client=redis_client, settings=settings, course=course)
    run()


def one_run(world: World, ops, mutation):
    redis_client = world.client
    redis_client.flushdb()
    world.phones.clear()
    world.notified.clear()
    owners = [world.phone(MESSENGER, f"70000000000006{n}") for n in range(4)]
    senders = [world.phone(WHATSAPP, f"39333000060{n}") for n in range(4)]
    issued: dict[int, list[str]] = {}
    allowed: set[tuple[str, str]] = set()  # (whatsapp id, messenger learner) a live code could link
    for phone in owners:
        phone.send("ciao")
    owner_of: dict[str, str] = {}
    for op, who, by in ops:
        owner, sender = owners[who], senders[by]
        if op == "issue":
            owner.send("collega")
            code = owner.last_code().replace("-", "")
            issued.setdefault(who, []).append(code)
            owner_of[code] = owner.learner_id
            continue
        codes = issued.get(who) or [mutation]
        code = codes[-1]  # "right" and "reuse": the owner's latest code, used or not
        if op == "wrong":
            code = mutation if mutation not in owner_of else mutation[::-1]
        elif op == "expired":
            redis_client.delete(link_code_key(code))
        elif op == "others":
            code = (issued.get((who + 1) % 4) or [mutation])[-1]
        if redis_client.exists(link_code_key(code)):  # live: it may link the sender to the one who asked for it
            allowed.add((sender.learner_id, owner_of[code]))
        sender.send(f"collega {code}")
    for sender in senders:
        alias = redis_client.get(learner_key(sender.learner_id, LearnerPart.ALIAS))
        if alias is not None:
            assert (sender.learner_id, alias.decode()) in allowed
    for owner in owners:
        record = world.progress(owner.learner_id)
        for conversation in [c for c in conversations.every(record) if c.learner_id != owner.learner_id]:
            assert (conversation.learner_id, owner.learner_id) in allowed
            assert redis_client.get(learner_key(conversation.learner_id, LearnerPart.ALIAS)) == \
                owner.learner_id.encode()
    assert not redis_client.keys("bottega:*:merge")


def test_too_many_wrong_codes_lock_an_id_out_for_a_while(world):
    ms, wa = linked_pair(world)
    ms.send("ciao")
    ms.send("collega")
    code = ms.last_code()
    for n in range(links.MAX_TRIES):
        wa.send(f"collega ABCD-EFG{n + 2}")
    wa.send(code)  # right, but past the tries
    assert any("Troppi codici" in t for t in wa.texts())
    assert world.client.get(learner_key(wa.learner_id, LearnerPart.ALIAS)) is None
    assert clock is not None


# -- their data (issue 12 §3) -------------------------------------------------------------------------

def keys_naming(client, needles: tuple[str, ...]) -> list[str]:
    """Every key in the whole keyspace whose name or value contains one of ``needles``."""
    from bot.storage.key_values import read_value

    found = []
    for key in client.scan_iter(count=1000):
        name = key.decode()
        value = json.dumps(read_value(client, key), default=str, ensure_ascii=False)
        if any(needle in name or needle in value for needle in needles):
            found.append(name)
    return found


def test_my_data_exports_everything_and_delete_my_data_leaves_nothing_and_revokes_the_certificate(world, course):
    ms, wa = linked_pair(world)
    finish_module_1(ms, course)
    ms.send("collega")
    wa.send(ms.last_code())
    certificate = Certificate(code=new_code(), token=new_token(), learner_id=ms.learner_id, name="Anna",
                              business_name="Forno Anna", issued_ms=world.now_ms(), score_percent=90)
    certificate_store.save(world.client, certificate)
    wa.send("i miei dati")
    token = next(t for t in reversed(world.client.keys("bottega:export:*")))
    document = json.loads(read_export(world.client, token.decode().split("{")[1].rstrip("}")))
    assert document["learner_id"] == ms.learner_id and wa.learner_id in document["other_ids"]
    record = document["data"]["keys"][ms.learner_id]["progress"]
    assert "m1_contatto" in json.dumps(record) and document["data"]["certificates"]
    assert document["data"]["linked_conversations"]  # the WhatsApp conversation's own parts
    progress = world.progress(ms.learner_id)
    assert progress.notices and progress.notices[0].what == "privacy_notice"  # shown in the first message
    ms.send("collega")  # a code waiting unused names them too
    wa.send("cancella i miei dati")
    wa.tap("Sì")
    assert any("cancello tutti i tuoi dati" in t for t in wa.texts())  # the goodbye went first
    assert world.erased == [ms.learner_id]
    assert keys_naming(world.client, (ms.user, wa.user, ms.learner_id, wa.learner_id)) == []
    assert certificate_store.lookup(world.client, certificate.code) not in (None,) and \
        isinstance(certificate_store.lookup(world.client, certificate.code), int)  # revoked


def test_an_inactive_learner_is_warned_where_a_window_is_open_then_erased(redis_client, settings, course):
    world = World(client=redis_client, settings=dataclasses.replace(settings, quiet_hours=""), course=course)
    ms, wa = linked_pair(world)
    ms.send("ciao")
    ms.send("collega")
    wa.send(ms.last_code())
    start = world.now_ms()
    retention_ms, warning_ms = 10 * DAY_MS, 10 * DAY_MS - 3_600_000
    assert sweep(world.client, world.dispatcher, start + 60_000, retention_ms=retention_ms,
                 warning_ms=warning_ms) == Swept()  # not idle long enough
    swept = sweep(world.client, world.dispatcher, start + 2 * 3_600_000, retention_ms=retention_ms,
                  warning_ms=warning_ms)
    world.deliver()
    assert swept == Swept(warned=1)
    assert any("cancellerò i tuoi dati" in t for t in wa.texts())  # WhatsApp's window is open: said there
    assert sweep(world.client, world.dispatcher, start + 3 * 3_600_000, retention_ms=retention_ms,
                 warning_ms=warning_ms) == Swept()  # once
    assert sweep(world.client, world.dispatcher, start + retention_ms + 60_000, retention_ms=retention_ms,
                 warning_ms=warning_ms) == Swept(erased=1)
    assert keys_naming(world.client, (ms.user, wa.user)) == []


def test_a_message_bottega_starts_goes_where_a_window_is_open_else_where_the_channel_allows_it():
    hour = 3_600_000
    now = 100 * 24 * hour
    whatsapp = ChannelConversation(channel="whatsapp", learner_id="wa:39333", user_id="39333", phone="39333",
                                   last_inbound_at_ms=now - 30 * hour)  # closed
    base = Progress(learner_id="ig:1", channel="instagram", user_id="1", last_inbound_at_ms=now - 2 * hour,
                    conversations=(whatsapp,))
    chosen = conversations.for_proactive(base, now, window_ms=24 * hour, margin_ms=600_000)
    assert chosen.channel == "instagram"  # the current conversation's window is open: free there
    closed = base.with_changes(last_inbound_at_ms=now - 40 * hour)
    chosen = conversations.for_proactive(closed, now, window_ms=24 * hour, margin_ms=600_000)
    assert chosen.channel == "whatsapp" and chosen.via == "wa:39333"  # no window: a template can go there
    opened = closed.with_changes(conversations=(dataclasses.replace(whatsapp, last_inbound_at_ms=now - hour),))
    assert conversations.for_proactive(opened, now, window_ms=24 * hour, margin_ms=600_000).channel == "whatsapp"
    messenger_only = Progress(learner_id="ig:1", channel="instagram", user_id="1", last_inbound_at_ms=now - 40 * hour,
                              conversations=(ChannelConversation(channel="messenger", learner_id="ms:1", user_id="1",
                                                                 last_inbound_at_ms=now - 40 * hour),))
    assert conversations.for_proactive(messenger_only, now, window_ms=24 * hour, margin_ms=600_000).channel == \
        "instagram"  # Messenger without an opt-in token allows nothing either: stays, placement says no
