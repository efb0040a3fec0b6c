"""The certificate as a one-page PDF, drawn on request from the stored record (no PDF bytes are stored).

fpdf2's built-in Helvetica covers Windows-1252 (every Italian accent, « », €, curly quotes); a
character outside it is shown without its accent, or as ``?`` (the stored record and the verification
page keep the name exactly as typed). No I/O: bytes in memory.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import TYPE_CHECKING

from bot.certificates.model import TIME_ZONE, Certificate, issued_date, verify_path

if TYPE_CHECKING:
    from fpdf import FPDF

PDF_ENCODING = "windows-1252"  # fpdf2 core fonts; its PDF declares WinAnsiEncoding, which this matches


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

    def line(text: str, size: float, *, style: str = "", gap: float = 4,
             rgb: tuple[int, int, int] = (40, 40, 40)) -> None:
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


def _fitting(pdf: FPDF, text: str, style: str, size: float, max_width_mm: float) -> tuple[str, float]:
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
