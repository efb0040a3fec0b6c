"""Flow problems: each names the file, line and column, what is wrong and how to fix it.

Two severities share one shape, so every check reports the same way. An *error* stops the course
from loading (``FlowError``) and from being published. A *warning* is the checker's shared channel
for "this loads, but is probably not what you meant" (a YAML file the manifest does not list, a
changed module whose version was not raised, an item longer than a channel shows): it prints as
``file:line:column: warning: message — fix`` and never fails ``bottega flows check``. A check that
finds something worth a warning returns ``Problem``s made with ``warning(...)``;
``bot.flows.loader.check_course_texts`` gathers the course's warnings in one list.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from bot.model.errors import CourseError


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, kw_only=True, slots=True)
class Problem:
    file: str
    line: int  # 1-based
    column: int  # 1-based
    message: str
    fix: str
    severity: Severity = Severity.ERROR

    @property
    def is_warning(self) -> bool:
        return self.severity is Severity.WARNING

    def __str__(self) -> str:
        label = "warning: " if self.is_warning else ""
        return f"{self.file}:{self.line}:{self.column}: {label}{self.message} — {self.fix}"


def warning(*, file: str, line: int = 1, column: int = 1, message: str, fix: str) -> Problem:
    """A problem that does not fail the check (see the module docstring)."""
    return Problem(file=file, line=line, column=column, message=message, fix=fix, severity=Severity.WARNING)


def in_order(problems: list[Problem]) -> list[Problem]:
    """By file and position, so a listing reads top to bottom like the files."""
    return sorted(problems, key=lambda p: (p.file, p.line, p.column))


class FlowError(CourseError):
    """One or more flows failed the check; ``problems`` lists every error, not just the first.

    ``warnings`` carries what the same check found besides, so a failing ``flows check`` still shows them.
    """

    def __init__(self, problems: list[Problem], warnings: list[Problem] | None = None):
        self.problems = in_order(problems)
        self.warnings = in_order(warnings or [])
        count = len(self.problems)
        listing = "\n".join(str(p) for p in self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the flows:\n{listing}")
