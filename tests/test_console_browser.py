"""The admin console in Debian's Chromium, on the real Procfile processes in dev mode (as `make run` runs them).

An owner signs in, looks a learner up by phone (masked), downloads their export and erases them after
confirming; the certificate page then says revoked. A viewer signs in on a phone-sized screen. No page
reports a script error or a resource its Content-Security-Policy refused. Screenshots go to
test-output/browser/.
"""

from __future__ import annotations

import json

import pytest

from bot.certificates.model import Certificate, new_code, new_token
from bot.console.users import Role, Users
from bot.model.events import Channel
from bot.model.privacy import learner_ref
from bot.storage import certificate_store
from bot.storage.keys import LearnerPart, learner_key
from tests.service import Phone

pytestmark = [pytest.mark.procfile, pytest.mark.browser]

PASSWORD = "a long console password"
PHONE_SIZE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def admins(dev_service):
    users = Users(dev_service.redis_client())
    users.add("olga", Role.OWNER, PASSWORD)
    users.add("vera", Role.VIEWER, PASSWORD)


def sign_in(page, dev_service, name: str) -> None:
    page.goto(f"{dev_service.url}/admin/")
    assert "/admin/login" in page.url  # no session: the sign-in page
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{dev_service.url}/admin/")


def nav(page, label: str) -> None:
    page.get_by_role("navigation", name="Console").get_by_role("link", name=label).click()


def a_learner(dev_service, user: str) -> str:
    """A WhatsApp learner at the menu (through signed webhooks to the real web process), with a certificate."""
    phone = Phone(dev_service, Channel(name="whatsapp", prefix="wa"), user)
    phone.send("ciao")  # the web process commits the new learner before it answers 200
    learner_id = f"wa:{user}"
    client = dev_service.redis_client()
    assert client.exists(learner_key(learner_id, LearnerPart.PROGRESS))
    cert = Certificate(code=new_code(), token=new_token(), learner_id=learner_id, name="Lucia Ferri",
                       business_name="Forno Ferri", issued_ms=1_795_777_200_000, score_percent=90, lang="it")
    certificate_store.save(client, cert)
    return cert.code


def test_an_owner_signs_in_exports_a_learner_and_erases_them(page, dev_service, admins, screenshots, tmp_path):
    user = "393471234567"
    code = a_learner(dev_service, user)
    ref = learner_ref(f"wa:{user}")
    sign_in(page, dev_service, "olga")
    screenshots.take(page, "home")

    nav(page, "Learners")
    page.get_by_label("Learner reference, phone").fill("+39 347 123 4567")
    page.get_by_role("button", name="Look up").click()
    page.locator("h1").filter(has_text=f"Learner {ref}").wait_for()
    assert user not in page.url and ref not in page.url  # the link carries the learner encrypted
    body = page.locator("main").inner_text()
    assert user not in body and "39••••••••67" in body, body
    screenshots.take(page, "learner-masked")

    with page.expect_download() as download:
        page.get_by_role("button", name="Export as JSON").click()
    saved = tmp_path / "export.json"
    download.value.save_as(saved)
    exported = json.loads(saved.read_text())
    assert exported["learner_id"] == f"wa:{user}" and exported["data"]["certificates"][0]["code"] == code

    page.get_by_role("link", name="Erase this learner").click()
    screenshots.take(page, "erase-confirm")
    page.get_by_label("to confirm").fill(ref)
    page.get_by_role("button", name="Erase for good").click()
    page.wait_for_url(f"{dev_service.url}/admin/learners")
    assert f"Learner {ref} erased" in page.locator("[role=status]").inner_text()
    screenshots.take(page, "erased")
    assert not dev_service.redis_client().exists(learner_key(f"wa:{user}", LearnerPart.PROGRESS))

    page.goto(f"{dev_service.url}/admin/audit")
    assert "learner.erase" in page.locator("main").inner_text()
    screenshots.take(page, "audit-log")
    assert page.problems.messages == []  # no script error, nothing the pages' CSP refused

    answer = page.goto(f"{dev_service.url}/verify/{code}")
    assert answer.status == 410 and page.locator("h1").inner_text() == "Attestato revocato"
    screenshots.take(page, "verify-revoked")


def test_a_viewer_signs_in_on_a_phone_and_cannot_erase(page, dev_service, admins, screenshots):
    user = "393479876543"
    a_learner(dev_service, user)
    page.set_viewport_size(PHONE_SIZE)
    sign_in(page, dev_service, "vera")
    nav(page, "Releases")
    assert "Learners per module version and step" in page.locator("main").inner_text()
    screenshots.take(page, "phone-releases")
    nav(page, "Learners")
    page.get_by_label("Learner reference, phone").fill(user)
    page.get_by_role("button", name="Look up").click()
    page.locator("h1").filter(has_text="Learner").wait_for()
    assert page.get_by_role("button", name="Export as JSON").count() == 0
    assert page.get_by_role("link", name="Erase this learner").count() == 0
    screenshots.take(page, "phone-learner")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # nothing wider than a phone
    assert page.problems.messages == []
    answer = page.goto(f"{dev_service.url}/admin/learners/{learner_ref('wa:' + user)}/erase")
    assert answer.status == 403 and page.locator("h1").inner_text().startswith("403")
