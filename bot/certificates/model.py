"""The course certificate: its record, its codes, its PDF and its public verification page. No I/O.

A learner who finished every module and passed the final check-up gets a ``Certificate``. It has two
secrets of different strength:

* ``code`` (``BTG-7K4M-Q9XR-H2W8``) is printed on the PDF and typed by people who want to check it at
  ``/verify/CODE``; 12 symbols from a 32-symbol alphabet without 0/O/1/I = 60 random bits. Codes issued
  before issue 7 have two groups (``BTG-7K4M-Q9XR``, 40 bits) and keep verifying: someone may hold the
  paper. 40 bits were too few for a public page: among 100,000 certificates one blind guess in 11
  million hits, and at the 859 guesses/s measured from one client that is 6-7 names a day; with 60 bits
  it is one in 10^13 guesses, and the page is rate-limited per client besides.
* ``token`` (43 URL-safe characters, 256 random bits) names the PDF at ``/certificates/TOKEN.pdf``:
  that URL is handed to the Graph API as a document link and must not be guessable.

Storage is ``bot.storage.certificate_store``; the HTTP routes are ``bot.web.certificates``. The PDF is drawn
with fpdf2's built-in Helvetica (Windows-1252: every Italian accent, « », €, curly quotes); a
character outside it is shown without its accent, or as ``?`` (the stored record and the HTML page
keep the name exactly as typed).
"""

from __future__ import annotations

import html
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

CODE_PREFIX = "BTG"
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # 32 symbols: no 0/O, no 1/I
CODE_GROUPS = 3
CODE_GROUP_CHARS = 4  # 3 x 4 symbols x 5 bits = 60 random bits
LEGACY_CODE_GROUPS = 2  # codes issued until issue 7 (40 bits): never made again, found forever
TOKEN_BYTES = 32  # 256 random bits, 43 URL-safe characters
TIME_ZONE = ZoneInfo("Europe/Rome")  # the date printed is the learners' calendar day
PDF_ENCODING = "windows-1252"  # fpdf2 core fonts; its PDF declares WinAnsiEncoding, which this matches

_CODE_RE = re.compile(
    rf"{CODE_PREFIX}((?:[{CODE_ALPHABET}]{{{CODE_GROUP_CHARS}}}){{{LEGACY_CODE_GROUPS},{CODE_GROUPS}}})")
_TOKEN_RE = re.compile(rf"[A-Za-z0-9_-]{{{(TOKEN_BYTES * 4 + 2) // 3}}}")
_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December")


@dataclass(frozen=True, kw_only=True, slots=True)
class Certificate:
    """One issued certificate. ``name`` and ``business_name`` are what the learner typed (untrusted).

    ``issued_ms`` is a Unix time in milliseconds; ``score_percent`` the check-up score, 0-100;
    ``lang`` is ``"it"`` or ``"en"`` (anything else prints in Italian).
    """

    code: str
    token: str
    learner_id: str
    name: str
    business_name: str
    issued_ms: int
    score_percent: int
    lang: str = "it"


def new_code() -> str:
    """A fresh verification code, ``BTG-XXXX-XXXX-XXXX``, 60 bits from ``secrets``."""
    groups = ("".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUP_CHARS))
              for _ in range(CODE_GROUPS))
    return "-".join((CODE_PREFIX, *groups))


def new_token() -> str:
    """A fresh PDF token: 256 random bits, URL-safe base64 without padding (43 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def normalize_code(text: str) -> str | None:
    """The canonical ``BTG-XXXX-XXXX-XXXX`` for what someone typed, or None if it cannot be a code.

    Case, spaces and dashes do not matter: ``" btg 7k4m-q9xr-h2w8 "`` -> ``"BTG-7K4M-Q9XR-H2W8"``.
    The two-group codes issued before (``BTG-7K4M-Q9XR``) are read the same way.
    """
    compact = re.sub(r"[\s\-]+", "", text or "").upper()
    match = _CODE_RE.fullmatch(compact)
    if not match:
        return None
    body = match.group(1)
    groups = (body[i:i + CODE_GROUP_CHARS] for i in range(0, len(body), CODE_GROUP_CHARS))
    return "-".join((CODE_PREFIX, *groups))


def token_valid(token: str) -> bool:
    """Whether ``token`` has the shape ``new_token`` makes (checked before any lookup)."""
    return bool(_TOKEN_RE.fullmatch(token or ""))


def pdf_path(cert: Certificate) -> str:
    """Where the app serves the PDF: ``/certificates/<token>.pdf`` (prefix the public base URL)."""
    return f"/certificates/{cert.token}.pdf"


def verify_path(code: str) -> str:
    """The public verification page: ``/verify/BTG-XXXX-XXXX-XXXX``."""
    return f"/verify/{code}"


def issued_date(cert: Certificate, lang: str | None = None) -> str:
    """The issue day in Rome: ``27/11/2026`` in Italian, ``27 November 2026`` in English."""
    day = datetime.fromtimestamp(cert.issued_ms / 1000, tz=TIME_ZONE).date()
    if (lang or cert.lang) == "en":
        return f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}"
    return day.strftime("%d/%m/%Y")


# -- the PDF ----------------------------------------------------------------------------------------
def _texts(cert: Certificate, course_title: str) -> dict[str, str]:
    score = max(0, min(100, int(cert.score_percent)))
    if cert.lang == "en":
        return {"title": "Certificate of completion", "intro": "This certifies that",
                "business": f"of {cert.business_name}" if cert.business_name else "",
                "body": f"has completed the course \u201c{course_title}\u201d and the digital check-up "
                        f"with a score of {score}%.",
                "date": f"Date: {issued_date(cert, 'en')}", "code": f"Verification code: {cert.code}",
                "verify": "Check that it is genuine at"}
    # "l'85%", "l'8%", "l'11%" but "il 92%": the article follows how the number is read aloud
    article = "l'" if score in (1, 8, 11) or 80 <= score <= 89 else "il "
    return {"title": "Attestato di partecipazione", "intro": "Si attesta che",
            "business": f"di {cert.business_name}" if cert.business_name else "",
            "body": f"ha completato il corso \u00ab{course_title}\u00bb e il check-up digitale "
                    f"con {article}{score}%.",
            "date": f"Data: {issued_date(cert, 'it')}", "code": f"Codice di verifica: {cert.code}",
            "verify": "Verifica l'autenticit\u00e0 su"}


def pdf_safe(text: str) -> str:
    """``text`` limited to what the PDF's built-in font can show: accents kept, others simplified.

    A character outside Windows-1252 loses its accent when it has one (``ș`` -> ``s``), else becomes
    ``?``; control characters are dropped.
    """
    out = []
    for char in text:
        if unicodedata.category(char).startswith("C"):
            continue
        try:
            char.encode(PDF_ENCODING)
            out.append(char)
            continue
        except UnicodeEncodeError:
            pass
        base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
        try:
            out.append(base.encode(PDF_ENCODING).decode(PDF_ENCODING) if base else "?")
        except UnicodeEncodeError:
            out.append("?")
    return "".join(out)


def render_pdf(cert: Certificate, *, course_title: str, base_url: str = "") -> bytes:
    """The certificate as a one-page A4 landscape PDF, in ``cert.lang``.

    ``base_url`` (e.g. ``bottega.example``) is printed before the ``/verify/CODE`` path; without
    it only the path is printed. The same record always gives the same bytes (the PDF's creation date
    is the issue time).
    """
    from fpdf import FPDF  # fpdf2 (and Pillow, fontTools) load ~0.25 s: only processes that draw pay it

    texts = {key: pdf_safe(value) for key, value in _texts(cert, course_title).items()}
    name = pdf_safe(cert.name)
    verify_url = pdf_safe(base_url.rstrip("/") + verify_path(cert.code))

    pdf = FPDF(orientation="landscape", unit="mm", format="A4")
    pdf.core_fonts_encoding = PDF_ENCODING
    pdf.set_auto_page_break(False)
    pdf.set_margins(25, 20, 25)
    pdf.set_creation_date(datetime.fromtimestamp(cert.issued_ms / 1000, tz=TIME_ZONE))
    pdf.set_title(texts["title"])
    pdf.set_author("Bottega")
    pdf.set_creator("Bottega")
    pdf.add_page()
    width, height = pdf.w, pdf.h

    # frame: a thick outer line and a thin inner one
    pdf.set_draw_color(34, 85, 68)
    pdf.set_line_width(1.6)
    pdf.rect(10, 10, width - 20, height - 20)
    pdf.set_line_width(0.4)
    pdf.rect(14, 14, width - 28, height - 28)

    def line(text: str, size: float, *, style: str = "", gap: float = 4, rgb=(40, 40, 40)) -> None:
        pdf.set_font("Helvetica", style, size)
        pdf.set_text_color(*rgb)
        pdf.cell(0, size * 0.45, text, align="C", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    pdf.set_y(28)
    line("B O T T E G A", 12, style="B", gap=6, rgb=(34, 85, 68))
    line(texts["title"], 30, style="B", gap=10, rgb=(34, 85, 68))
    line(texts["intro"], 14, gap=5)
    line(*_fitting(pdf, name, "B", 36, width - 60), style="B", gap=5, rgb=(0, 0, 0))
    if texts["business"]:
        line(*_fitting(pdf, texts["business"], "", 18, width - 60), gap=7)
    pdf.set_font("Helvetica", "", 14)
    pdf.set_text_color(40, 40, 40)
    pdf.multi_cell(0, 7, texts["body"], align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    line(texts["date"], 13, gap=2)

    pdf.set_y(height - 44)
    line(texts["code"], 12, style="B", gap=2)
    line(f"{texts['verify']} {verify_url}", 10, gap=0, rgb=(90, 90, 90))
    return bytes(pdf.output())


def _fitting(pdf, text: str, style: str, size: float, max_width_mm: float) -> tuple[str, float]:
    """``text`` and the largest font size up to ``size`` that fits one line; below 12 pt, cut with "…"."""
    pdf.set_font("Helvetica", style, size)
    while size > 12 and pdf.get_string_width(text) > max_width_mm:
        size -= 1
        pdf.set_font("Helvetica", style, size)
    if pdf.get_string_width(text) > max_width_mm:
        text = text[:300]  # chat input can be 4,096 characters; 300 of the narrowest still overflow
    while len(text) > 1 and pdf.get_string_width(text) > max_width_mm:
        text = text[:-2].rstrip() + "\u2026"
    return text, size


# -- the public verification page -------------------------------------------------------------------
_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#222}}
h1{{color:{color}}}dl{{display:grid;grid-template-columns:auto 1fr;gap:.4rem 1rem}}dt{{color:#666}}
dd{{margin:0;font-weight:600}}.other{{color:#555;border-top:1px solid #ddd;margin-top:2rem;padding-top:1rem}}
</style></head><body>
{body}
</body></html>
"""


_NOT_FOUND = {"it": ("Codice non trovato", "Nessun attestato Bottega ha questo codice. Controlla di averlo "
                     "copiato bene (lettere e cifre, senza 0, O, 1 e I)."),
              "en": ("Code not found", "No Bottega certificate has this code. Check that it was copied "
                     "correctly (letters and digits, without 0, O, 1 and I).")}
_GENUINE = {"it": ("Attestato autentico", "Questo attestato è stato rilasciato da Bottega.",
                   ("Nome", "Attività", "Data", "Corso", "Codice")),
            "en": ("Genuine certificate", "This certificate was issued by Bottega.",
                   ("Name", "Business", "Date", "Course", "Code"))}


def verify_page(cert: Certificate | None, *, lang: str = "it", course_title: str = "Bottega") -> str:
    """A small self-contained HTML page: "Attestato autentico" with what the PDF shows, or "not found".

    Shows the name, business name, issue date, course title and code, never the learner id, phone
    or token. Both languages, ``lang`` first. Every value is HTML-escaped (names come from chat input).
    """
    order = ("en", "it") if lang == "en" else ("it", "en")
    sections = []
    for code in order:
        if cert is None:
            head, text = _NOT_FOUND[code]
            content = f"<p>{text}</p>"
        else:
            head, text, labels = _GENUINE[code]
            values = (cert.name, cert.business_name, issued_date(cert, code), course_title, cert.code)
            rows = "".join(f"<dt>{label}</dt><dd>{html.escape(value)}</dd>"
                           for label, value in zip(labels, values, strict=True))
            content = f"<p>{text}</p><dl>{rows}</dl>"
        sections.append((code, head, content))
    (_, head, content), (other, other_head, other_content) = sections
    body = (f"<h1>{head}</h1>{content}\n"
            f'<div class="other" lang="{other}"><h2>{other_head}</h2>{other_content}</div>')
    return _PAGE.format(lang=order[0], color="#a33" if cert is None else "#256",
                        title=f"{head} / {other_head}", body=body)
