"""Certificates end to end: stored in real Redis, fetched through the Flask app, read with a real PDF parser."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pypdf
import pytest

from bot.certificates.model import CODE_ALPHABET, Certificate, issued_date, new_code, new_token, normalize_code
from bot.certificates.page import verify_page
from bot.certificates.pdf import pdf_safe, render_pdf
from bot.storage import certificate_store
from bot.storage.keys import certificate_key, certificate_learner_key, certificate_token_key
from webhooks import create_app

PHONE = "393331112222"
LID = f"wa:{PHONE}"
ISSUED_MS = 1_795_777_200_000  # 2026-11-27 10:00 in Rome


@pytest.fixture
def client(settings, redis_client):
    app = create_app(settings, redis_client=redis_client, notify=lambda learner_id: None)
    return app.test_client()


def certificate(**changes) -> Certificate:
    cert = Certificate(code=new_code(), token=new_token(), learner_id=LID, name="Nicolò Bianchi",
                       business_name="Panificio Città Alta", issued_ms=ISSUED_MS, score_percent=85, lang="it")
    return replace(cert, **changes)


def pdf_text(body: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(body))
    assert len(reader.pages) == 1
    return reader.pages[0].extract_text()


# -- codes and tokens -------------------------------------------------------------------------------
def test_codes_are_human_friendly_and_random():
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000
    for code in list(codes)[:200]:
        assert re.fullmatch(rf"BTG-[{CODE_ALPHABET}]{{4}}-[{CODE_ALPHABET}]{{4}}-[{CODE_ALPHABET}]{{4}}", code)
        assert not set(code[4:]) & set("0O1I")
    assert len(CODE_ALPHABET) == 32 and len(set(CODE_ALPHABET)) == 32  # 12 symbols x 5 bits = 60 bits


def test_pdf_tokens_are_unguessable():
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(len(t) >= 43 and re.fullmatch(r"[A-Za-z0-9_-]+", t) for t in tokens)  # >= 256 bits, URL-safe


def test_codes_are_read_in_any_case_with_spaces_and_dashes():
    assert normalize_code(" btg 7k4m-q9xr-h2w8 ") == "BTG-7K4M-Q9XR-H2W8"
    assert normalize_code("BTG7K4MQ9XRH2W8") == "BTG-7K4M-Q9XR-H2W8"
    assert normalize_code(" btg 7k4m-q9xr ") == "BTG-7K4M-Q9XR"  # the two-group codes issued before
    assert normalize_code("BTG7K4MQ9XR") == "BTG-7K4M-Q9XR"
    assert normalize_code("BTG-7K4M-Q9X0") is None  # 0 is not in the alphabet
    assert normalize_code("BTG-7K4M") is None
    assert normalize_code("BTG-7K4M-Q9XR-H2") is None  # neither 8 nor 12 symbols
    assert normalize_code("BTG-7K4M-Q9XR-H2W8-AAAA") is None


def test_keys_format_is_pinned():
    assert re.fullmatch(r"bottega:certificate:\{certificates-([0-9]|1[0-5])\}:code:BTG-7K4M-Q9XR",
                        certificate_key("BTG-7K4M-Q9XR"))
    assert re.fullmatch(r"bottega:certificate:\{certificates-([0-9]|1[0-5])\}:token:abc", certificate_token_key("abc"))
    assert re.fullmatch(rf"bottega:certificate:\{{certificates-([0-9]|1[0-5])\}}:learner:{LID}",
                        certificate_learner_key(LID))
    # spread over many hash slots (a Redis Cluster puts them on different nodes)
    assert len({certificate_key(f"BTG-0000-0000-{n:04d}").split("}")[0] for n in range(200)}) == 16


# -- the store --------------------------------------------------------------------------------------
def test_certificates_saved_before_the_shards_still_verify(redis_client):
    from bot.storage.certificate_store import to_hash
    from bot.storage.encoding import hash_fields
    from bot.storage.keys import legacy_certificate_keys

    cert = certificate()
    redis_client.hset(legacy_certificate_keys("code", cert.code), mapping=hash_fields(to_hash(cert)))
    redis_client.set(legacy_certificate_keys("token", cert.token), cert.code)
    redis_client.set(legacy_certificate_keys("learner", cert.learner_id), cert.code)
    assert certificate_store.by_code(redis_client, cert.code) == cert
    assert certificate_store.by_token(redis_client, cert.token) == cert
    assert certificate_store.by_learner(redis_client, cert.learner_id) == cert


def test_store_round_trip_by_code_token_and_learner(redis_client):
    cert = certificate()
    certificate_store.save(redis_client, cert)
    assert certificate_store.by_code(redis_client, cert.code) == cert
    assert certificate_store.by_code(redis_client, cert.code.lower().replace("-", " ")) == cert
    assert certificate_store.by_token(redis_client, cert.token) == cert
    assert certificate_store.by_learner(redis_client, LID) == cert
    assert certificate_store.by_token(redis_client, new_token()) is None
    assert certificate_store.by_code(redis_client, new_code()) is None
    assert not list(redis_client.scan_iter(match="bottega:{*}:*"))  # invisible to learner scans


def test_store_refuses_a_code_it_could_not_find_again(redis_client):
    with pytest.raises(ValueError, match="not canonical"):
        certificate_store.save(redis_client, certificate(code="btg-7k4m-q9xr"))


# -- the PDF ----------------------------------------------------------------------------------------
def test_pdf_is_served_at_its_token_url_with_accents_intact(client, redis_client):
    cert = certificate()
    certificate_store.save(redis_client, cert)
    answer = client.get(f"/certificates/{cert.token}.pdf")
    assert answer.status_code == 200
    assert answer.mimetype == "application/pdf"
    assert answer.headers["Content-Disposition"] == 'inline; filename="attestato-bottega.pdf"'
    assert answer.data.startswith(b"%PDF")
    text = pdf_text(answer.data)
    for expected in ("Attestato di partecipazione", "Nicolò Bianchi", "Panificio Città Alta", cert.code,
                     "27/11/2026", "l'85%", f"/verify/{cert.code}", "check-up digitale"):
        assert expected in text
    assert "Bottega — il corso" in text  # the live course's title, in the learner's language
    assert PHONE not in text and cert.token not in text


def test_pdf_in_english(client, redis_client):
    cert = certificate(lang="en", score_percent=92)
    certificate_store.save(redis_client, cert)
    text = pdf_text(client.get(f"/certificates/{cert.token}.pdf").data)
    for expected in ("Certificate of completion", "Nicolò Bianchi", "27 November 2026", "92%", cert.code):
        assert expected in text


def test_unknown_or_malformed_tokens_are_404(client, redis_client):
    cert = certificate()
    certificate_store.save(redis_client, cert)
    assert client.get(f"/certificates/{new_token()}.pdf").status_code == 404
    assert client.get(f"/certificates/{cert.code}.pdf").status_code == 404  # the public code is not the key
    assert client.get("/certificates/x.pdf").status_code == 404


def test_pdf_without_the_app_uses_the_given_title_and_survives_odd_names():
    cert = certificate(name="Ștefan Wang 王 🙂" + "x" * 200, business_name="")
    text = pdf_text(render_pdf(cert, course_title="Bottega"))
    assert "Stefan Wang ?" in text and "«Bottega»" in text and "…" in text
    assert pdf_safe("àèéìòù «€»") == "àèéìòù «€»"


def test_same_record_same_bytes():
    cert = certificate()
    assert render_pdf(cert, course_title="Bottega") == render_pdf(cert, course_title="Bottega")


def test_dates_follow_the_language_in_rome_time():
    midnight_in_rome = 1_795_820_400_000  # 2026-11-27 23:00 UTC = 28/11 00:00 in Rome
    assert issued_date(certificate(issued_ms=midnight_in_rome)) == "28/11/2026"
    assert issued_date(certificate(issued_ms=ISSUED_MS), "en") == "27 November 2026"


# -- the verification page --------------------------------------------------------------------------
def test_verify_page_confirms_a_genuine_certificate(client, redis_client):
    cert = certificate()
    certificate_store.save(redis_client, cert)
    answer = client.get(f"/verify/{cert.code}")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    for expected in ("Attestato autentico", "Nicolò Bianchi", "Panificio Città Alta", "27/11/2026",
                     "Bottega — il corso", cert.code):
        assert expected in page
    for secret in (PHONE, LID, cert.token):
        assert secret not in page
    assert answer.headers["X-Robots-Tag"].startswith("noindex")


def test_verify_accepts_lowercase_and_spaced_codes(client, redis_client):
    cert = certificate()
    certificate_store.save(redis_client, cert)
    spaced = cert.code.lower().replace("-", " ")
    answer = client.get(f"/verify/ {spaced} ")
    assert answer.status_code == 200 and "Nicolò Bianchi" in answer.get_data(as_text=True)


def test_codes_issued_before_the_third_group_keep_verifying(client, redis_client):
    legacy = certificate(code="BTG-7K4M-Q9XR")  # 40 bits, as new_code() made them until issue 7
    certificate_store.save(redis_client, legacy)
    for typed in ("BTG-7K4M-Q9XR", " btg 7k4m q9xr ", "BTG7K4MQ9XR"):
        answer = client.get(f"/verify/{typed}")
        assert answer.status_code == 200 and "Nicolò Bianchi" in answer.get_data(as_text=True)
    assert certificate_store.by_token(redis_client, legacy.token) == legacy
    assert client.get(f"/verify/{legacy.code}-AAAA").status_code == 404  # a longer code is another code


def test_wrong_code_is_404_not_found(client, redis_client):
    certificate_store.save(redis_client, certificate())
    for code in (new_code(), "nonsense"):
        answer = client.get(f"/verify/{code}")
        page = answer.get_data(as_text=True)
        assert answer.status_code == 404
        assert "Codice non trovato" in page and "not found" in page


def test_names_from_chat_are_escaped(client, redis_client):
    cert = certificate(name='<script>alert("x")</script>', business_name="<b onmouseover=x>Bar & Co</b>")
    certificate_store.save(redis_client, cert)
    page = client.get(f"/verify/{cert.code}").get_data(as_text=True)
    assert "<script>" not in page and "<b onmouseover" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page and "Bar &amp; Co" in page


def test_verify_page_without_the_app():
    genuine = verify_page(certificate(), lang="en")
    assert genuine.index("Genuine certificate") < genuine.index("Attestato autentico")
    missing = verify_page(None, lang="en")
    assert missing.index("Code not found") < missing.index("Codice non trovato")
