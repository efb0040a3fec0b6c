"""Flow problems (and warnings): each names the file, line and column, what is wrong and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class Problem:
    file: str
    line: int  # 1-based
    column: int  # 1-based
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message} — {self.fix}"


@dataclass(frozen=True, kw_only=True, slots=True)
class FlowWarning(Problem):
    """Something to improve that does not stop the course (the check still passes)."""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: warning: {self.message} — {self.fix}"


class FlowError(Exception):
    """One or more flows failed the check; ``problems`` lists every one, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.column))
        count = len(self.problems)
        listing = "\n".join(str(p) for p in self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the flows:\n{listing}")
