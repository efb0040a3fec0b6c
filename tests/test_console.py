"""The admin console through the real Flask app on real Redis (issue 11 §2, §4).

Security: every admin page sends a visitor without a session to sign-in; a form without its CSRF token is
refused; a viewer cannot publish, reset or erase; the 11th wrong password within a minute is refused;
``/verify`` and the admin pages carry the security headers; the session cookie is Secure, HttpOnly,
SameSite=Strict. Operating: look a learner up, phone masked unless an owner asks (audited), reset a module,
export and erase (audited), publish a changed folder (the CLI's code), manage admins.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import time
from dataclasses import replace

import pytest

from bot.certificates.model import Certificate, new_code, new_token
from bot.channels.signature import sign
from bot.cli import main as cli
from bot.console import audit
from bot.console.users import Role, Users
from bot.model.privacy import learner_ref
from bot.storage import certificate_store, releases
from bot.storage.keys import LearnerPart, learner_key
from bot.tutor.progress import Progress
from config.settings import PROJECT_ROOT
from webhooks import create_app

SECRET = "test-app-secret"
PHONE = "393331112222"
LID = f"wa:{PHONE}"
PASSWORD = "correct horse battery"
ROLES = {"vera": Role.VIEWER, "ezio": Role.EDITOR, "olga": Role.OWNER}


@pytest.fixture
def flows(tmp_path):
    folder = tmp_path / "flows"
    shutil.copytree(PROJECT_ROOT / "flows", folder, ignore=shutil.ignore_patterns("tests"))
    return folder


@pytest.fixture
def app(settings, redis_client, flows):
    console_settings = replace(settings, console_secret_key="a-test-console-secret-of-enough-length-123",
                               flows_dir=flows)
    application = create_app(console_settings, redis_client=redis_client, notify=lambda learner_id: None)
    users = Users(redis_client)
    for name, role in ROLES.items():
        users.add(name, role, PASSWORD)
    return application


def browser(app):
    return app.test_client()  # (werkzeug's test client sends Secure cookies over http too)


def token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def signed_in(app, name: str):
    client = browser(app)
    csrf = token(client.get("/admin/login").get_data(as_text=True))
    answer = client.post("/admin/login", data={"name": name, "password": PASSWORD, "csrf_token": csrf})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return client


def form_token(client, path: str = "/admin/") -> str:
    return token(client.get(path).get_data(as_text=True))


def onboard(app) -> None:
    """A WhatsApp learner through signed webhooks: onboarding and module 1 opened."""
    hook = app.test_client()
    for message in ({"type": "text", "text": {"body": "ciao"}},
                    {"type": "interactive", "interactive": {"type": "button_reply",
                                                            "button_reply": {"id": "sys:lang:it", "title": "It"}}},
                    {"type": "interactive", "interactive": {"type": "button_reply",
                                                            "button_reply": {"id": "sys:biz:bakery", "title": "P"}}},
                    {"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {
                        "id": "sys:module:m1_contatto", "title": "M1"}}}):
        body = {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages",
                "value": {"messaging_product": "whatsapp",
                          "metadata": {"display_phone_number": "390200000000", "phone_number_id": "100000000000001"},
                          "contacts": [{"profile": {"name": "Lucia"}, "wa_id": PHONE}],
                          "messages": [{"from": PHONE, "id": f"wamid.{time.time_ns()}",
                                        "timestamp": str(int(time.time())), **message}]}}]}]}
        raw = json.dumps(body).encode()
        answer = hook.post("/webhook", data=raw, headers={"Content-Type": "application/json",
                                                          "X-Hub-Signature-256": sign(SECRET, raw)})
        assert answer.status_code == 200


def admin_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/admin") and rule.endpoint not in ("console.login", "console.login_post",
                                                                    "console.static"):
            path = rule.rule.replace("<key>", "0123456789ab").replace("<name>", "vera")
            path = re.sub(r"<int:[^>]+>", "1", path)
            path = re.sub(r"<[^>]+>", "x", path)  # any other page's parameter (analytics: a module id...)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield method, path


# -- security ---------------------------------------------------------------------------------------------
def test_every_admin_page_sends_a_visitor_without_a_session_to_sign_in(app):
    visitor = browser(app)
    rules = list(admin_rules(app))
    assert len(rules) >= 15
    for method, path in rules:
        answer = visitor.open(path, method=method)
        assert answer.status_code == 303 and answer.location.startswith("/admin/login"), (method, path)


def test_a_form_without_its_csrf_token_is_refused(app, redis_client):
    olga = signed_in(app, "olga")
    for data in ({}, {"csrf_token": "forged"}):
        answer = olga.post("/admin/users", data={"name": "mallory", "role": "owner", "password": "x" * 20, **data})
        assert answer.status_code == 400
    assert Users(redis_client).get("mallory") is None
    assert olga.post("/admin/logout").status_code == 400  # even signing out
    visitor = browser(app)
    visitor.get("/admin/login")
    answer = visitor.post("/admin/login", data={"name": "olga", "password": PASSWORD})
    assert answer.status_code == 400  # signing in too
    csrf = form_token(olga, "/admin/users")
    answer = olga.post("/admin/users", data={"name": "mallory", "role": "viewer", "password": "x" * 20,
                                             "csrf_token": csrf})
    assert answer.status_code == 303 and Users(redis_client).get("mallory").role is Role.VIEWER


def test_a_viewer_cannot_publish_reset_export_or_erase_and_an_editor_cannot_erase(app, redis_client):
    onboard(app)
    ref = learner_ref(LID)
    vera, ezio = signed_in(app, "vera"), signed_in(app, "ezio")
    csrf = form_token(vera)
    live = releases.live_release(redis_client)
    for path in ("/admin/releases/publish", f"/admin/learners/{ref}/reset", f"/admin/learners/{ref}/export",
                 f"/admin/learners/{ref}/erase", f"/admin/learners/{ref}/phone", "/admin/users"):
        answer = vera.post(path, data={"csrf_token": csrf, "confirm": ref, "module": "m1_contatto"})
        assert answer.status_code == 403, path
    assert vera.get(f"/admin/learners/{ref}/erase").status_code == 403
    assert vera.get("/admin/audit").status_code == 403
    answer = ezio.post(f"/admin/learners/{ref}/erase", data={"csrf_token": form_token(ezio), "confirm": ref})
    assert answer.status_code == 403
    assert redis_client.exists(learner_key(LID, LearnerPart.PROGRESS))
    assert releases.live_release(redis_client) == live


def test_the_eleventh_wrong_password_within_a_minute_is_refused(app):
    visitor = browser(app)
    csrf = token(visitor.get("/admin/login").get_data(as_text=True))
    for _ in range(10):
        answer = visitor.post("/admin/login", data={"name": "olga", "password": "wrong password!", "csrf_token": csrf})
        assert answer.status_code == 401
    answer = visitor.post("/admin/login", data={"name": "olga", "password": PASSWORD, "csrf_token": csrf})
    assert answer.status_code == 429 and "Too many wrong passwords" in answer.get_data(as_text=True)
    other = browser(app)  # the same address, another admin's name: the address is over its budget too
    other_csrf = token(other.get("/admin/login").get_data(as_text=True))
    answer = other.post("/admin/login", data={"name": "vera", "password": PASSWORD, "csrf_token": other_csrf})
    assert answer.status_code == 429


def test_wrong_passwords_count_once_each_after_redis_lost_its_scripts(app, redis_client):
    visitor = browser(app)
    csrf = token(visitor.get("/admin/login").get_data(as_text=True))
    for flush in (False, True, False):  # NOSCRIPT in the pipeline: the counting script is loaded and run once
        if flush:
            redis_client.script_flush()
        answer = visitor.post("/admin/login", data={"name": "olga", "password": "wrong password!", "csrf_token": csrf})
        assert answer.status_code == 401
    counts = [int(redis_client.get(key)) for key in redis_client.scan_iter("*login*")]
    assert counts == [3, 3] and all(0 < redis_client.ttl(key) <= 60 for key in redis_client.scan_iter("*login*"))


def test_verify_and_every_admin_page_carry_the_security_headers(app, redis_client):
    onboard(app)
    cert = Certificate(code=new_code(), token=new_token(), learner_id=LID, name="Lucia", business_name="Forno",
                       issued_ms=1_795_777_200_000, score_percent=90, lang="it")
    certificate_store.save(redis_client, cert)
    olga = signed_in(app, "olga")
    ref = learner_ref(LID)
    pages = [browser(app).get("/admin/login"), browser(app).get(f"/verify/{cert.code}"),
             browser(app).get("/verify/BTG-2222-2222-2222")]
    pages += [olga.get(path) for path in ("/admin/", "/admin/releases", "/admin/releases/diff", "/admin/learners",
                                          f"/admin/learners/{ref}", f"/admin/learners/{ref}/erase", "/admin/users",
                                          "/admin/audit", "/admin/learners/ffffffffffff")]
    for answer in pages:
        assert answer.mimetype == "text/html"
        policy = answer.headers["Content-Security-Policy"]
        assert "script-src" not in policy and "default-src 'none'" in policy  # no script of any kind
        assert "frame-ancestors 'none'" in policy and answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    for answer in pages[3:]:
        assert "unsafe-inline" not in answer.headers["Content-Security-Policy"]
        assert "<script" not in answer.get_data(as_text=True) and "style=" not in answer.get_data(as_text=True)
    cookie = next(h for h in signed_in_headers(app) if h.startswith("bottega_admin="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie


def signed_in_headers(app) -> list[str]:
    client = browser(app)
    csrf = token(client.get("/admin/login").get_data(as_text=True))
    answer = client.post("/admin/login", data={"name": "vera", "password": PASSWORD, "csrf_token": csrf})
    return answer.headers.getlist("Set-Cookie")


def test_a_changed_password_or_a_removed_admin_ends_their_sessions(app, redis_client):
    vera = signed_in(app, "vera")
    assert vera.get("/admin/").status_code == 200
    Users(redis_client).set_password("vera", "another long password")
    assert vera.get("/admin/").status_code == 303
    ezio = signed_in(app, "ezio")
    Users(redis_client).remove("ezio")
    assert ezio.get("/admin/").status_code == 303


def test_the_console_does_not_exist_without_its_secret(settings, redis_client):
    app = create_app(settings, redis_client=redis_client, notify=lambda learner_id: None)
    assert browser(app).get("/admin/login").status_code == 404


# -- operating ------------------------------------------------------------------------------------------
def test_a_learner_is_found_and_their_phone_is_masked_unless_an_owner_asks(app, redis_client):
    onboard(app)
    ref = learner_ref(LID)
    for name in ("vera", "olga"):
        admin = signed_in(app, name)
        found = admin.post("/admin/learners", data={"q": "+39 333 111 2222", "csrf_token": form_token(admin)})
        assert found.status_code == 303 and found.location.startswith("/admin/learners/")
        assert PHONE not in found.location and ref not in found.location  # the link carries the id encrypted
        page = admin.get(found.location).get_data(as_text=True)
        assert PHONE not in page and "39••••••••22" in page and "m1_contatto" in page and "Lucia" in page
        assert ("Show the phone number" in page) == (name == "olga")
    olga = signed_in(app, "olga")
    shown = olga.post(f"/admin/learners/{ref}/phone", data={"csrf_token": form_token(olga)})
    assert shown.status_code == 200 and PHONE in shown.get_data(as_text=True)
    entry = audit.recent(redis_client, 1)[0]
    assert (entry.who, entry.action, entry.target) == ("olga", "learner.show_phone", ref)
    assert PHONE not in json.dumps([vars_of(e) for e in audit.recent(redis_client)])


def vars_of(entry) -> dict:
    return {name: getattr(entry, name) for name in ("who", "action", "target", "detail")}


def test_an_editor_resets_a_module(app, redis_client):
    onboard(app)
    ref = learner_ref(LID)
    stored = Progress.from_hash(redis_client.hgetall(learner_key(LID, LearnerPart.PROGRESS)))
    done = stored.with_changes(modules_done=["m1_contatto"], module_scores={"m1_contatto": [3, 4]},
                               answers={"m1_contatto": {"q1": "a"}})
    redis_client.hset(learner_key(LID, LearnerPart.PROGRESS), mapping=done.to_hash())
    ezio = signed_in(app, "ezio")
    answer = ezio.post(f"/admin/learners/{ref}/reset", data={"module": "m1_contatto", "csrf_token": form_token(ezio)})
    assert answer.status_code == 303
    after = Progress.from_hash(redis_client.hgetall(learner_key(LID, LearnerPart.PROGRESS)))
    assert after.modules_done == [] and "m1_contatto" not in after.answers and after.flow == ""
    assert after.rev == stored.rev + 1 and after.business == "bakery"
    assert audit.recent(redis_client, 1)[0].action == "learner.reset_module"


def test_an_owner_exports_and_erases_a_learner(app, redis_client):
    onboard(app)
    ref = learner_ref(LID)
    cert = Certificate(code=new_code(), token=new_token(), learner_id=LID, name="Lucia", business_name="Forno",
                       issued_ms=1_795_777_200_000, score_percent=90, lang="it")
    certificate_store.save(redis_client, cert)
    olga = signed_in(app, "olga")
    exported = olga.post(f"/admin/learners/{ref}/export", data={"csrf_token": form_token(olga)})
    assert exported.status_code == 200 and exported.mimetype == "application/json"
    assert f'filename="learner-{ref}.json"' in exported.headers["Content-Disposition"]
    assert exported.json["data"]["keys"][LID]["progress"]["phone"] == PHONE
    wrong = olga.post(f"/admin/learners/{ref}/erase", data={"csrf_token": form_token(olga), "confirm": "nope"})
    assert wrong.status_code == 303 and redis_client.exists(learner_key(LID, LearnerPart.PROGRESS))
    erased = olga.post(f"/admin/learners/{ref}/erase", data={"csrf_token": form_token(olga), "confirm": ref})
    assert erased.status_code == 303 and not redis_client.exists(learner_key(LID, LearnerPart.PROGRESS))
    assert olga.get(f"/admin/learners/{ref}").status_code == 404
    assert browser(app).get(f"/verify/{cert.code}").status_code == 410
    actions = [(e.action, e.target) for e in audit.recent(redis_client, 3)]
    assert ("learner.erase", ref) in actions and ("learner.export", ref) in actions


def test_releases_show_learners_per_step_and_an_editor_publishes_a_changed_folder(app, redis_client, flows):
    onboard(app)
    ezio = signed_in(app, "ezio")
    page = ezio.get("/admin/releases?count=now").get_data(as_text=True)
    live = releases.live_release(redis_client)
    assert f"Live release: <strong>{live}</strong>" in page and "m1_contatto" in page
    assert "1 learner(s) in it now" in page  # the onboarded learner, in module 1
    assert ezio.get("/admin/releases/diff").get_data(as_text=True).count("Nothing to publish") == 1
    course = flows / "course.yaml"
    text = course.read_text()
    course.write_text(text.replace("  support_email:", "support_email:", 1))  # broken: it fails the check
    diff = ezio.get("/admin/releases/diff").get_data(as_text=True)
    assert "does not pass the check" in diff and ">Publish</button>" not in diff
    course.write_text(text.replace("aiuto@bottega.example", "help@example.org", 1))
    diff = ezio.get("/admin/releases/diff").get_data(as_text=True)
    assert "Publishing" in diff and ">Publish</button>" in diff
    answer = ezio.post("/admin/releases/publish", data={"csrf_token": form_token(ezio)})
    assert answer.status_code == 303
    assert releases.live_release(redis_client) == str(int(live) + 1)
    entry = audit.recent(redis_client, 1)[0]
    assert (entry.who, entry.action, entry.target) == ("ezio", "publish", str(int(live) + 1))


def test_admins_are_managed_by_owners_and_the_last_owner_stays(app, redis_client, monkeypatch, redis_url):
    olga = signed_in(app, "olga")
    answer = olga.post("/admin/users/olga/role", data={"role": "viewer", "csrf_token": form_token(olga)})
    assert answer.status_code == 303 and Users(redis_client).get("olga").role is Role.OWNER
    answer = olga.post("/admin/users/vera/role", data={"role": "editor", "csrf_token": form_token(olga)})
    assert Users(redis_client).get("vera").role is Role.EDITOR
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("a very long password\n"))
    assert cli(["admin", "add-user", "nina", "--role", "owner", "--password-stdin"]) == 0
    assert Users(redis_client).authenticate("nina", "a very long password").role is Role.OWNER
    assert cli(["admin", "add-user", "nina", "--role", "owner", "--password-stdin"]) == 1
    assert audit.recent(redis_client, 5)[0].action == "admin.add"


def test_a_learner_link_is_refused_when_forged_or_made_under_another_secret(app, redis_client):
    from bot.console.learner_links import LearnerLinks

    onboard(app)
    vera = signed_in(app, "vera")
    other = LearnerLinks("another-secret-of-enough-length-0123456789").link(LID)
    for key in (other, other[:-4] + "AAAA", "x" * 40, learner_ref("wa:1")):
        assert vera.get(f"/admin/learners/{key}").status_code == 404
    assert vera.get(f"/admin/learners/{learner_ref(LID)}").status_code == 200  # the reference in the logs works


def test_sign_in_failures_count_per_address_and_an_ipv6_client_by_its_64(app):
    def attempt(address: str, name: str, password: str) -> int:
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        csrf = token(client.get("/admin/login").get_data(as_text=True))
        return client.post("/admin/login", data={"name": name, "password": password, "csrf_token": csrf}).status_code

    for n in range(10):  # ten names, one address each time a different one in the same /64
        assert attempt(f"2001:db8::{n + 1:x}", f"nobody{n}", "wrong password!") == 401
    assert attempt("2001:db8::ffff", "vera", PASSWORD) == 429  # the /64 is over its budget
    assert attempt("2001:db8:0:1::1", "vera", PASSWORD) == 303  # the next /64 is not


def test_open_days_show_who_is_coming_and_an_editor_announces_after_a_dry_run(app, redis_client, broker_client):
    from bot.console.jobs import Jobs, JobStatus
    from bot.delivery.open_days import Announcement, announce
    from bot.storage.open_day_ledger import OpenDayLedger
    from tests.console_jobs import queued_jobs, run_console_jobs

    onboard(app)
    OpenDayLedger(redis_client).rsvp("od_2027_01", LID, coming=True, capacity=40, now_ms=1)
    vera, ezio = signed_in(app, "vera"), signed_in(app, "ezio")
    listed = vera.get("/admin/open-days").get_data(as_text=True)
    assert "od_2027_01" in listed and "1/40" in listed
    page = vera.get("/admin/open-days/od_2027_01").get_data(as_text=True)
    assert learner_ref(LID) in page and "Lucia" in page and PHONE not in page
    assert "dry run" not in page  # a viewer reads; announcing is an editor's
    assert vera.post("/admin/open-days/od_2027_01/dry-run", data={"csrf_token": form_token(vera)}).status_code == 403
    asked = ezio.post("/admin/open-days/od_2027_01/dry-run", data={"csrf_token": form_token(ezio)})
    assert asked.status_code == 303 and asked.location.startswith("/admin/open-days/od_2027_01/jobs/")
    job_id = asked.location.rsplit("/", 1)[1]
    assert queued_jobs(broker_client) == [job_id]  # the request counted nobody: the worker will
    counting = ezio.get(asked.location).get_data(as_text=True)
    assert "Counting… <strong>0</strong> learners read" in counting and "would be invited" not in counting
    assert '<meta http-equiv="refresh"' in counting and "<script" not in counting
    assert vera.get(asked.location).status_code == 403
    assert run_console_jobs(app, broker_client, progress_every=1) == [job_id]
    job = Jobs(redis_client).get(job_id)
    assert job is not None and job.status is JobStatus.DONE and job.read == 1
    dry = ezio.get(asked.location)
    wiring = app.extensions["bottega"]
    engine = wiring["registry"].engine_for(releases.live_release(redis_client))
    direct = announce(redis_client, wiring["dispatcher"].store, engine.course, engine.policy,
                      engine.course.open_day("od_2027_01"), now_ms=wiring["dispatcher"].clock(), dry_run=True)
    assert Announcement.from_json(job.result) == direct
    assert dry.status_code == 200 and "\n".join(direct.lines()) in html.unescape(dry.get_data(as_text=True))
    assert audit.recent(redis_client, 1)[0].action == "sign_in"  # a dry run changes nothing
    assert ezio.post("/admin/open-days/od_2027_01/announce", data={}).status_code == 400  # no CSRF token
    assert vera.post("/admin/open-days/od_2027_01/announce", data={"csrf_token": form_token(vera)}).status_code == 403
    assert not queued_jobs(broker_client)
    sent = ezio.post("/admin/open-days/od_2027_01/announce", data={"csrf_token": form_token(ezio)})
    assert sent.status_code == 303
    entry = audit.recent(redis_client, 1)[0]  # accepted: audited at once, announced by the worker
    assert (entry.who, entry.action, entry.target) == ("ezio", "open_day.announce", "od_2027_01")
    assert run_console_jobs(app, broker_client) == [sent.location.rsplit("/", 1)[1]]
    done = ezio.get(sent.location)
    assert done.status_code == 303 and done.location == "/admin/open-days/od_2027_01"
    entry = audit.recent(redis_client, 1)[0]
    assert (entry.who, entry.action, entry.detail) == ("ezio", "open_day.announce", f"{direct.scheduled} invited")
    assert ezio.get("/admin/open-days/od_9999").status_code == 404
