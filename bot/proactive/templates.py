"""Our declared templates against the WhatsApp Business Account's: what is missing or unusable. No I/O.

``compare(declared, remote)`` reads Meta's template objects (``GET /{WABA_ID}/message_templates``: name,
language, status, category) and says, for each template of ``templates.yaml`` in each language, whether it
can be sent: approved, or missing, pending/rejected, paused (sends fail with 132015) or disabled (132016),
and whether Meta filed it under another category than ours (it bills by Meta's). ``submission(spec, lang)``
is the body that creates one (``POST /{WABA_ID}/message_templates``). The calls themselves are made by
``bot.delivery.template_admin``; ``bottega templates check|submit`` prints these findings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from bot.flows.spec import LANGUAGES, TemplateSpec


class TemplateState(str, Enum):
    APPROVED = "approved"
    MISSING = "missing"
    PENDING = "pending"  # PENDING, IN_APPEAL: Meta has not decided yet
    REJECTED = "rejected"
    PAUSED = "paused"  # quality: sends fail with 132015 until it is fixed
    DISABLED = "disabled"  # sends fail with 132016
    OTHER = "other"  # a status this version does not know


_STATES = {"APPROVED": TemplateState.APPROVED, "PENDING": TemplateState.PENDING,
           "IN_APPEAL": TemplateState.PENDING, "REJECTED": TemplateState.REJECTED,
           "PAUSED": TemplateState.PAUSED, "DISABLED": TemplateState.DISABLED}
_ADVICE = {
    TemplateState.APPROVED: "can be sent",
    TemplateState.MISSING: "not in the WhatsApp Business Account: create it with `bottega templates submit`",
    TemplateState.PENDING: "waiting for Meta's review: sends fail until it is approved",
    TemplateState.REJECTED: "rejected by Meta: read the reason in WhatsApp Manager, change the text, submit again "
                            "under a new name",
    TemplateState.PAUSED: "paused for low quality (sends fail with 132015): improve it in WhatsApp Manager",
    TemplateState.DISABLED: "disabled for low quality (sends fail with 132016): replace it with a new template",
    TemplateState.OTHER: "in a state Bottega does not know: check it in WhatsApp Manager",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Finding:
    name: str
    language: str  # Meta's code
    state: TemplateState
    status: str = ""  # Meta's own word
    category: str = ""  # ours
    meta_category: str = ""  # Meta's, when it differs from ours

    @property
    def usable(self) -> bool:
        return self.state is TemplateState.APPROVED

    def __str__(self) -> str:
        line = f"{self.name} ({self.language}): {self.state.value} — {_ADVICE[self.state]}"
        if self.meta_category:
            line += (f"; Meta files it as {self.meta_category.lower()}, not {self.category} (sends are billed as "
                     f"{self.meta_category.lower()}): change its category in templates.yaml, or its text")
        return line


def compare(declared: Iterable[TemplateSpec], remote: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """One finding per declared template and language, in file order."""
    by_key = {(str(item.get("name", "")), str(item.get("language", ""))): item for item in remote}
    findings = []
    for spec in declared:
        for lang in LANGUAGES:
            code = spec.code(lang)
            item = by_key.get((spec.name, code))
            if item is None:
                findings.append(Finding(name=spec.name, language=code, state=TemplateState.MISSING,
                                        category=spec.category))
                continue
            status = str(item.get("status", "")).upper()
            meta_category = str(item.get("category", "")).lower()
            findings.append(Finding(name=spec.name, language=code, state=_STATES.get(status, TemplateState.OTHER),
                                    status=status, category=spec.category,
                                    meta_category=meta_category if meta_category not in ("", spec.category) else ""))
    return findings


def submission(spec: TemplateSpec, lang: str) -> dict[str, Any]:
    """The body of ``POST /{WABA_ID}/message_templates`` that creates ``spec`` in ``lang``."""
    body: dict[str, Any] = {"type": "BODY", "text": spec.body.get(lang)}
    if spec.params:
        body["example"] = {"body_text": [list(spec.example.get(lang, ()))]}
    components: list[dict[str, Any]] = [body]
    if spec.buttons:
        components.append({"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": button.label.get(lang)}
                                                          for button in spec.buttons]})
    return {"name": spec.name, "language": spec.code(lang), "category": spec.category.upper(),
            "components": components}
