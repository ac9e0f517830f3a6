"""What a backtest replays (its range, its step ``--every``, its policies) and the row it
reports per policy and step. Light on purpose (no data-frame or ML library): the command
line parses with it before loading any. The replay is :mod:`predelinq.monitoring.backtest`."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from predelinq.errors import PredelinqError


class BacktestError(PredelinqError, ValueError):
    """A backtest that cannot run as asked: a bad range or step, no labels in the range, or
    too few matured labels at its first step to train a first model."""


class Policy(StrEnum):
    """When the replay retrains."""

    NEVER = "never"  # the first model, trained at the first step, serves throughout
    SEED = "seed"  # the seed's rule: enough labelled customers no retrain included
    TRIGGERS = "triggers"  # every configured trigger ([triggers]), with its cooldown
    ALWAYS = "always"  # every step


DEFAULT_POLICIES = (Policy.NEVER, Policy.TRIGGERS)
_EVERY = re.compile(r"\s*(\d+)\s*(mo|d|w)\s*")
_UNITS = {"mo": "month", "d": "day", "w": "week"}


@dataclass(frozen=True)
class Every:
    """A step: a number of months, weeks or days."""

    count: int
    unit: str  # "mo", "w" or "d"

    def after(self, start: date, k: int) -> date:
        """The ``k``-th step from ``start`` (months keep the day of the month, or the
        month's last day when it has fewer)."""
        if self.unit == "d":
            return start + timedelta(days=k * self.count)
        if self.unit == "w":
            return start + timedelta(weeks=k * self.count)
        months = start.month - 1 + k * self.count
        year, month = start.year + months // 12, months % 12 + 1
        return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


def parse_every(text: str) -> Every:
    """``1mo``, ``2mo``, ``30d``, ``2w``: a positive number of months, days or weeks."""
    found = _EVERY.fullmatch(text.lower())
    if not found or int(found[1]) < 1:
        raise BacktestError(
            f"--every must be a positive number of months, weeks or days such as 1mo, 2w or "
            f"30d, not {text!r}"
        )
    return Every(int(found[1]), found[2])


@dataclass(frozen=True)
class Plan:
    """A backtest: steps from ``start`` by ``every`` while before ``end``; each step's
    period runs to the next step (the last to ``end``)."""

    start: date
    end: date
    every: Every
    policies: tuple[Policy, ...] = DEFAULT_POLICIES
    seed: int = 0
    after: date | None = None  # also report the mean AUC of the periods from this date
    gate: bool = True  # False: every challenger that trains is promoted

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise BacktestError(f"--from {self.start} must be before --to {self.end}")
        if not self.policies:
            raise BacktestError("give at least one --policy")
        if self.seed < 0:
            raise BacktestError(f"--seed must be 0 or more, not {self.seed}")

    def steps(self) -> list[date]:
        found, k = [], 0
        while (step := self.every.after(self.start, k)) < self.end:
            found.append(step)
            k += 1
        return found

    def ends(self) -> list[date]:
        steps = self.steps()
        return [*steps[1:], self.end]


@dataclass(frozen=True)
class StepOutcome:
    """What one policy did at one step, and how its champion did on the next period."""

    period: date
    policy: Policy
    model_version: str
    retrained: bool
    promoted: bool
    reason: str
    rows: int
    positives: int
    auc: float | None
    seconds: float
