"""Item analysis of a quiz or the check-up, as Moodle's quiz statistics report computes it. No I/O.

Moodle's definitions (Moodle Docs, "Quiz statistics calculations", docs.moodle.org/dev/Quiz_statistics_calculations,
and "Quiz statistics report"):

* Only each student's **first attempt** is analysed by default (later attempts build on the first and break the
  assumptions of item analysis); the store keeps each learner's first answer to each item.
* **Facility index** F = the mean score on the item divided by its maximum score (x̄ᵢ / max): the share of
  learners who got it right for a one-point multiple-choice item. 0 is very hard, 1 very easy.
* **Discrimination index** D = the correlation coefficient between the score on the item and the score on the
  **rest of the test** (the attempt's total minus this item), over the analysed attempts:
  D = C(x, X₋ᵢ) / √(V(x) V(X₋ᵢ)), Pearson's r. Moodle prints 100 × D; near 0 or negative means the item does not
  tell learners who know the subject from those who do not. Only finished attempts count (Moodle analyses
  finished attempts): a module completed, a check-up handed in.
* Option frequencies: how often each option of the item was chosen (every first answer).

Flags for items that look broken (this issue's thresholds, in Moodle's spirit): facility above 0.95 (everyone
knows it) or below 0.2 (a wrong key, or a trick), discrimination below 0.15, and a distractor nobody picks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FACILITY_HIGH = 0.95
FACILITY_LOW = 0.2
DISCRIMINATION_LOW = 0.15


@dataclass(frozen=True, slots=True)
class Sums:
    """One item's sums over the analysed attempts: x the item score (0..1), y the rest of the test."""

    n: int
    sx: float
    sxx: float
    sy: float
    syy: float
    sxy: float


@dataclass(frozen=True, slots=True)
class ItemStats:
    item: str
    attempts: int
    facility: float | None
    discrimination: float | None  # None: too few attempts, or no spread in the item or in the rest of the test
    flags: tuple[str, ...]


def facility(sums: Sums) -> float | None:
    return sums.sx / sums.n if sums.n else None


def discrimination(sums: Sums) -> float | None:
    """Pearson's r between the item score and the rest-of-test score (Moodle's discrimination index / 100)."""
    n = sums.n
    if n < 2:
        return None
    covariance = n * sums.sxy - sums.sx * sums.sy
    variance_x = n * sums.sxx - sums.sx * sums.sx
    variance_y = n * sums.syy - sums.sy * sums.sy
    if variance_x <= 1e-12 or variance_y <= 1e-12:
        return None
    return covariance / math.sqrt(variance_x * variance_y)


def stats(item: str, sums: Sums, options: dict[str, int], offered: tuple[str, ...] = (),
          correct: tuple[str, ...] = ()) -> ItemStats:
    """The item's figures and flags; ``options`` counts each chosen option, ``offered`` lists every option the
    course offers (a distractor nobody picks shows only against it), ``correct`` the right ones."""
    f, d = facility(sums), discrimination(sums)
    flags = []
    if f is not None and f > FACILITY_HIGH:
        flags.append("too easy (facility > 0.95)")
    if f is not None and f < FACILITY_LOW:
        flags.append("too hard (facility < 0.2)")
    if d is not None and d < DISCRIMINATION_LOW:
        flags.append("weak discrimination (< 0.15)")
    unpicked = [option for option in offered if option not in correct and not options.get(option)]
    if unpicked and sum(options.values()):
        flags.append("distractor nobody picks: " + ", ".join(unpicked))
    return ItemStats(item=item, attempts=sums.n, facility=f, discrimination=d, flags=tuple(flags))
