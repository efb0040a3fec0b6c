"""The public verification page ``/verify/CODE``: "Attestato autentico" with what the PDF shows, "revoked", or
"not found".

A Jinja template (``templates/verify.html``) with autoescaping: names come from chat input. Shows
the name, business name, issue date, course title and code — never the learner id, phone or token —
in both languages, the asked one first. No I/O but reading the template.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment, PackageLoader, select_autoescape

from bot.certificates.model import Certificate, issued_date

_ENVIRONMENT = Environment(loader=PackageLoader("bot.certificates"), autoescape=select_autoescape(["html"]),
                           trim_blocks=True, lstrip_blocks=True)

_NOT_FOUND = {"it": ("Codice non trovato", "Nessun attestato Bottega ha questo codice. Controlla di averlo "
                     "copiato bene (lettere e cifre, senza 0, O, 1 e I)."),
              "en": ("Code not found", "No Bottega certificate has this code. Check that it was copied "
                     "correctly (letters and digits, without 0, O, 1 and I).")}
_REVOKED = {"it": ("Attestato revocato", "Questo codice apparteneva a un attestato Bottega che è stato revocato: "
                    "non è più valido."),
            "en": ("Certificate revoked", "This code belonged to a Bottega certificate that has been revoked: it is "
                   "no longer valid.")}
_GENUINE = {"it": ("Attestato autentico", "Questo attestato è stato rilasciato da Bottega.",
                   ("Nome", "Attività", "Data", "Corso", "Codice")),
            "en": ("Genuine certificate", "This certificate was issued by Bottega.",
                   ("Name", "Business", "Date", "Course", "Code"))}


@dataclass(frozen=True, slots=True)
class _Section:
    lang: str
    head: str
    text: str
    rows: tuple[tuple[str, str], ...] = ()


def verify_page(cert: Certificate | None, *, lang: str = "it", course_title: str = "Bottega",
                revoked: bool = False) -> str:
    """The page for ``cert`` (None: not found, or ``revoked``), in ``lang`` first and the other language below."""
    sections = []
    for code in (("en", "it") if lang == "en" else ("it", "en")):
        if cert is None:
            head, text = (_REVOKED if revoked else _NOT_FOUND)[code]
            sections.append(_Section(lang=code, head=head, text=text))
            continue
        head, text, labels = _GENUINE[code]
        values = (cert.name, cert.business_name, issued_date(cert, code), course_title, cert.code)
        sections.append(_Section(lang=code, head=head, text=text, rows=tuple(zip(labels, values, strict=True))))
    return _ENVIRONMENT.get_template("verify.html").render(sections=sections, genuine=cert is not None)
