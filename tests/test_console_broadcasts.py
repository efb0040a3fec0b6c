"""The console's Broadcasts pages through the real Flask app on real Redis (issue 11 §2, issue 10 §4).

Security: every broadcast page sends a visitor without a session to sign-in; a viewer reads the list and a
broadcast's progress but cannot dry-run, send, pause or cancel (403, nothing started or changed); a send or
cancel without its CSRF token is refused (400). Operating: learners write in over signed webhooks; the form's
dry run counts them by channel and window state with the cost; the confirmed send starts a broadcast (the
CLI's ``Broadcasts``), visible in the list and on its page with live progress; the worker's steps (run here
by the same service) admit the recipients and the outboxes are drained to the fake Graph API, after which
the page shows the broadcast done with every recipient sent — and each learner got the message once.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace

import pytest

from bot.broadcasts.audience import Query
from bot.broadcasts.plan import Plan
from bot.broadcasts.service import Broadcasts
from bot.channels.signature import sign
from bot.console import audit
from bot.console.jobs import JOB_TTL_SECONDS, NOT_QUEUED, JobKind, Jobs, JobStatus
from bot.console.users import Users
from bot.delivery import outbox
from bot.delivery.graph import GraphClient
from bot.delivery.throughput import Rate, Throughput
from bot.storage import broadcast_store
from bot.storage.clock import SystemClock
from bot.storage.keys import admin_job_key
from tests.console_jobs import queued_jobs, run_console_jobs
from tests.test_console import PASSWORD, ROLES, SECRET, browser, form_token, signed_in
from webhooks import create_app

PHONES = [f"39333200{n:04d}" for n in range(5)]
LEARNERS = [f"wa:{phone}" for phone in PHONES]
BROADCAST_ID = "20260101-000000-abcdef"  # well formed, never started
JOB_ID = "0123456789abcdef"  # well formed, never queued


@pytest.fixture
def app(settings, redis_client, fake, tmp_path):
    """The production wiring (the send queue on the test Redis; no worker), the fake Graph API, no quiet hours."""
    console_settings = replace(settings, console_secret_key="a-test-console-secret-of-enough-length-123",
                               graph_api_url=fake.url, quiet_hours="", learner_burst_messages=50,
                               learner_message_interval_seconds=0.01)
    application = create_app(console_settings, redis_client=redis_client)
    users = Users(redis_client)
    for name, role in ROLES.items():
        users.add(name, role, PASSWORD)
    return application


def write_in(app, phone: str, text: str = "ciao") -> None:
    body = {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages",
            "value": {"messaging_product": "whatsapp",
                      "metadata": {"display_phone_number": "390200000000", "phone_number_id": "100000000000001"},
                      "contacts": [{"profile": {"name": "Lucia"}, "wa_id": phone}],
                      "messages": [{"from": phone, "id": f"wamid.{time.time_ns()}", "timestamp": str(int(time.time())),
                                    "type": "text", "text": {"body": text}}]}}]}]}
    raw = json.dumps(body).encode()
    answer = app.test_client().post("/webhook", data=raw, headers={"Content-Type": "application/json",
                                                                  "X-Hub-Signature-256": sign(SECRET, raw)})
    assert answer.status_code == 200


def drain(app, redis_client) -> None:
    """What the worker's deliver jobs do: each learner's outbox to the fake Graph API."""
    settings = app.extensions["bottega"]["settings"]
    graph = GraphClient(settings)
    throughput = Throughput(redis_client, {"whatsapp": Rate(per_second=10_000, burst_seconds=1, reserve_ratio=0.25)})
    for lid in LEARNERS:
        for _ in range(20):
            if outbox.drain(redis_client, graph, lid, settings, throughput=throughput).again_in_seconds is None:
                break


def worker_service(app, redis_client) -> Broadcasts:
    """The worker's side of the same service (its dispatcher admits recipients)."""
    wiring = app.extensions["bottega"]
    return Broadcasts(redis_client, wiring["registry"], clock=SystemClock(), dispatcher=wiring["dispatcher"],
                      queue=None, rate_per_second=100, lookahead_seconds=1, chunk=100)


def dry_run(client, broker_client, **fields):
    """The form's dry run as the admin sees it: the POST is queued (no plan yet), the worker runs it, the job's page
    shows the plan."""
    data = {"message": "news", "csrf_token": form_token(client, "/admin/broadcasts"), **fields}
    asked = client.post("/admin/broadcasts/dry-run", data=data)
    if asked.status_code != 303:
        return asked
    return finished(client, broker_client, asked.location)


def send(client, broker_client, fields: dict[str, list[str]]):
    """The dry run's "Send": queued, run by the worker, then the job's page (a redirect to the broadcast, or 409)."""
    token = form_token(client, "/admin/broadcasts")
    asked = client.post("/admin/broadcasts/send", data={**fields, "csrf_token": token})
    if asked.status_code != 303:
        return asked
    return finished(client, broker_client, asked.location)


def finished(client, broker_client, job_page: str):
    """Run the queued job the way the worker does and read its page again."""
    assert job_page.startswith("/admin/broadcasts/jobs/")
    counting = client.get(job_page)
    assert counting.status_code == 200 and "Counting… <strong>0</strong> learners read" in counting.get_data(
        as_text=True)  # nothing was counted inside the request
    assert run_console_jobs(client.application, broker_client) == [job_page.rsplit("/", 1)[1]]
    return client.get(job_page)


def send_form(page: str) -> dict[str, list[str]]:
    """The send form's fields, as the dry run's page wrote them (hidden inputs; not its CSRF token)."""
    form = page[page.index('action="/admin/broadcasts/send"'):]
    form = form[:form.index("</form>")]
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form):
        fields.setdefault(name, []).append(value)
    fields.pop("csrf_token")
    return fields


# -- security ---------------------------------------------------------------------------------------------
def test_every_broadcast_page_sends_a_visitor_without_a_session_to_sign_in(app):
    visitor = browser(app)
    paths = [("GET", "/admin/broadcasts"), ("POST", "/admin/broadcasts/dry-run"), ("POST", "/admin/broadcasts/send"),
             ("GET", f"/admin/broadcasts/{BROADCAST_ID}"), ("GET", f"/admin/broadcasts/jobs/{JOB_ID}")] + [
        ("POST", f"/admin/broadcasts/{BROADCAST_ID}/{action}") for action in ("pause", "resume", "cancel")]
    broadcast_rules = {rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/admin/broadcasts")}
    assert len(broadcast_rules) == len(paths)  # every route of the pages is in this list
    for method, path in paths:
        answer = visitor.open(path, method=method, data={"message": "news"})
        assert answer.status_code == 303 and answer.location.startswith("/admin/login"), (method, path)


def test_a_viewer_reads_but_cannot_dry_run_send_or_cancel_and_a_forged_form_is_refused(app, redis_client,
                                                                                        broker_client):
    for phone in PHONES[:2]:
        write_in(app, phone)
    ezio = signed_in(app, "ezio")
    asked = ezio.post("/admin/broadcasts/dry-run",
                      data={"message": "news", "csrf_token": form_token(ezio, "/admin/broadcasts")})
    job_page = asked.location
    page = finished(ezio, broker_client, job_page).get_data(as_text=True)
    fields = send_form(page)
    vera = signed_in(app, "vera")
    listing = vera.get("/admin/broadcasts")
    assert listing.status_code == 200 and 'action="/admin/broadcasts/dry-run"' not in listing.get_data(as_text=True)
    assert vera.get(job_page).status_code == 403  # an editor's dry run
    csrf = form_token(vera, "/admin/broadcasts")
    assert vera.post("/admin/broadcasts/dry-run", data={"message": "news", "csrf_token": csrf}).status_code == 403
    assert vera.post("/admin/broadcasts/send", data={**fields, "csrf_token": csrf}).status_code == 403
    assert not queued_jobs(broker_client) and not list(broadcast_store.every_id(redis_client))
    # the forged form: no token, or another session's
    for forged in ({}, {"csrf_token": csrf}, {"csrf_token": "forged"}):
        answer = ezio.post("/admin/broadcasts/send", data={**fields, **forged})
        assert answer.status_code == 400
    assert not queued_jobs(broker_client) and not list(broadcast_store.every_id(redis_client))
    started = send(ezio, broker_client, fields)
    assert started.status_code == 303
    broadcast_id = started.location.rsplit("/", 1)[1]
    assert vera.get(f"/admin/broadcasts/{broadcast_id}").status_code == 200
    for action in ("pause", "cancel"):
        answer = vera.post(f"/admin/broadcasts/{broadcast_id}/{action}",
                           data={"csrf_token": form_token(vera, f"/admin/broadcasts/{broadcast_id}")})
        assert answer.status_code == 403
        assert ezio.post(f"/admin/broadcasts/{broadcast_id}/{action}", data={}).status_code == 400
    assert broadcast_store.meta(redis_client, broadcast_id)["status"] == "running"
    assert ezio.get("/admin/broadcasts/20260101-000000-000000").status_code == 404
    assert ezio.get("/admin/broadcasts/..%2Fx").status_code == 404


# -- operating --------------------------------------------------------------------------------------------
def test_dry_run_send_live_progress_and_report(app, redis_client, broker_client, fake):
    for phone in PHONES:
        write_in(app, phone)
    write_in(app, "393339999999")
    write_in(app, "393339999999", "stop")
    write_in(app, "393339999999", "1")  # yes, stop
    drain(app, redis_client)
    fake.reset()
    ezio = signed_in(app, "ezio")

    page = dry_run(ezio, broker_client, channel="whatsapp", lang="it").get_data(as_text=True)
    assert "<strong>6</strong> learner(s) match, <strong>5</strong> would be sent it now" in page
    row = re.search(r"<tr><td>whatsapp</td>(.*?)</tr>", page)
    assert row and re.findall(r'<td class="num">(\d+)</td>', row.group(1)) == ["5", "0", "1"]
    assert "unreachable: 1 — opted out" in page and "Estimated cost:" in page
    assert dry_run(ezio, broker_client, channel="messenger").get_data(as_text=True).count("Send to") == 0
    refused = dry_run(ezio, broker_client, active_within="soon")  # refused by the request: nothing queued
    assert refused.status_code == 400 and "whole number of days" in refused.get_data(as_text=True)
    assert dry_run(ezio, broker_client, message="nonesuch").status_code == 400 and not queued_jobs(broker_client)

    fields = send_form(page)
    assert fields["channel"] == ["whatsapp"] and fields["lang"] == ["it"] and fields["expected"] == ["5"]
    write_in(app, PHONES[0], "stop")
    write_in(app, PHONES[0], "1")  # the audience changes between the dry run and the send
    changed = send(ezio, broker_client, fields)
    assert changed.status_code == 409 and "4 learner(s) now" in changed.get_data(as_text=True)
    assert not list(broadcast_store.every_id(redis_client))
    fields = send_form(changed.get_data(as_text=True))
    started = send(ezio, broker_client, fields)
    assert started.status_code == 303
    broadcast_id = started.location.rsplit("/", 1)[1]

    progress = ezio.get(f"/admin/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert "0/4 settled" in progress and '<meta http-equiv="refresh" content="2">' in progress
    assert "<script" not in progress
    assert broadcast_id in ezio.get("/admin/broadcasts").get_data(as_text=True)
    entries = [e for e in audit.recent(redis_client) if e.action == "broadcast.send"]
    assert entries and entries[0].who == "ezio" and entries[0].target == broadcast_id and "4 learner(s)" in \
        entries[0].detail

    service = worker_service(app, redis_client)
    token = broadcast_store.meta(redis_client, broadcast_id)["step"]
    result = service.step(broadcast_id, token)
    assert result.admitted == 4
    assert "waiting 4" in ezio.get(f"/admin/broadcasts/{broadcast_id}").get_data(as_text=True)
    for _ in range(20):
        drain(app, redis_client)
        if result.again_in_seconds is None:
            break
        result = service.step(broadcast_id, result.token)
    done = ezio.get(f"/admin/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert "<small>done</small>" in done and "4/4 settled · sent 4 · failed 0" in done
    assert 'http-equiv="refresh"' not in done and "Cancel for good" not in done
    texts = [json.dumps(call["body"], ensure_ascii=False) for call in fake.calls()]
    reached = sorted(json.loads(t)["to"].lstrip("+") for t in texts if "modulo nuovo" in t)
    assert reached == sorted(PHONES[1:])  # each once; the two who said stop, never


def test_pause_resume_and_cancel_are_audited(app, redis_client, broker_client):
    for phone in PHONES[:3]:
        write_in(app, phone)
    ezio = signed_in(app, "ezio")
    fields = send_form(dry_run(ezio, broker_client).get_data(as_text=True))
    broadcast_id = send(ezio, broker_client, fields).location.rsplit("/", 1)[1]
    page = f"/admin/broadcasts/{broadcast_id}"
    for action, status in (("pause", "paused"), ("resume", "running"), ("cancel", "cancelled")):
        answer = ezio.post(f"{page}/{action}", data={"csrf_token": form_token(ezio, page)})
        assert answer.status_code == 303 and broadcast_store.meta(redis_client, broadcast_id)["status"] == status
    again = ezio.post(f"{page}/resume", data={"csrf_token": form_token(ezio, page)}, follow_redirects=True)
    assert "cannot resume now" in again.get_data(as_text=True)
    actions = [e.action for e in audit.recent(redis_client) if e.target == broadcast_id]
    assert actions == ["broadcast.cancel", "broadcast.resume", "broadcast.pause", "broadcast.send"]


# -- in the worker, not in the request ----------------------------------------------------------------------
def test_the_dry_run_is_queued_counted_by_the_worker_and_shows_the_plan_the_service_makes(app, redis_client,
                                                                                          broker_client):
    for phone in PHONES:
        write_in(app, phone)
    ezio = signed_in(app, "ezio")
    asked = ezio.post("/admin/broadcasts/dry-run", data={"message": "news", "channel": "whatsapp",
                                                         "csrf_token": form_token(ezio, "/admin/broadcasts")})
    assert asked.status_code == 303
    job_id = asked.location.rsplit("/", 1)[1]
    assert queued_jobs(broker_client) == [job_id]  # on the bulk queue, behind the learners' replies
    key = admin_job_key(job_id)
    assert key == f"bottega:admin:job:{{{job_id}}}" and 0 < redis_client.ttl(key) <= JOB_TTL_SECONDS
    job = Jobs(redis_client).get(job_id)
    assert job is not None and (job.status, job.read, job.result, job.who) == (JobStatus.QUEUED, 0, "", "ezio")
    counting = ezio.get(asked.location).get_data(as_text=True)
    assert "Counting… <strong>0</strong> learners read" in counting and "learner(s) match" not in counting
    assert '<meta http-equiv="refresh" content="2">' in counting and "<script" not in counting

    service = worker_service(app, redis_client)
    reported: list[int] = []
    direct = service.dry_run(Query(channels=("whatsapp",)), "news", on_progress=reported.append, progress_every=2)
    assert reported == [2, 4, 5]  # every 2 learners read, and once at the end

    assert run_console_jobs(app, broker_client, progress_every=2) == [job_id]
    job = Jobs(redis_client).get(job_id)
    assert job is not None and job.status is JobStatus.DONE and job.read == 5
    shown = json.loads(job.result)
    assert {k: v for k, v in shown.items() if k != "at_ms"} == {
        k: v for k, v in direct.summary().items() if k != "at_ms"}
    assert {**Plan.from_summary(shown).summary(), "recipients": shown["recipients"]} == shown  # (ids are not kept)
    assert not any(lid in job.result for lid in LEARNERS)  # the record names no learner
    page = ezio.get(asked.location)
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'http-equiv="refresh"' not in text
    assert (f"<strong>{direct.matched}</strong> learner(s) match, <strong>{len(direct.recipients)}</strong> would be "
            "sent it now") in text and f"Send to {len(direct.recipients)} learner(s)" in text
    assert ezio.get("/admin/broadcasts/jobs/0123456789abcdef").status_code == 404
    assert not list(broadcast_store.every_id(redis_client))  # a dry run starts nothing


def test_a_send_whose_worker_died_mid_way_is_not_started_again(app, redis_client, broker_client):
    for phone in PHONES[:2]:
        write_in(app, phone)
    ezio = signed_in(app, "ezio")
    fields = send_form(dry_run(ezio, broker_client).get_data(as_text=True))
    asked = ezio.post("/admin/broadcasts/send", data={**fields, "csrf_token": form_token(ezio, "/admin/broadcasts")})
    job_id = asked.location.rsplit("/", 1)[1]
    accepted = audit.recent(redis_client, 1)[0]
    assert (accepted.who, accepted.action, accepted.target) == ("ezio", "broadcast.send", f"job {job_id}")
    Jobs(redis_client).running(job_id)  # a worker took it and was killed; the broker hands it out again
    assert run_console_jobs(app, broker_client) == [job_id]
    page = ezio.get(asked.location)
    assert page.status_code == 400 and "interrupted" in page.get_data(as_text=True)
    assert not list(broadcast_store.every_id(redis_client))


def test_a_job_the_queue_refused_says_so_on_its_record(redis_client):
    jobs = Jobs(redis_client)
    job_id = jobs.create(JobKind.OPEN_DAY_DRY_RUN, who="ezio", target="od_2027_01")

    def broker_down(_: str) -> None:
        raise ConnectionError("the broker is down")

    with pytest.raises(ConnectionError):
        jobs.hand_over(job_id, broker_down)
    job = jobs.get(job_id)
    assert job is not None and job.finished and job.status is JobStatus.FAILED and job.error == NOT_QUEUED
