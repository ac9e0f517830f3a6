"""The check: retrain now, and why? The seed's status (new customers against the threshold)
and every trigger of ``[triggers]`` (:mod:`predelinq.monitoring.triggers`), judged together.

A retrain is due when any trigger fires; its reason, recorded as the run's
``trigger_reason``, names every trigger that fired with its figures. Deciding reads the
database and writes nothing, so ``check --dry-run`` is this decision alone; the retrain
itself is ``check_and_retrain`` in :mod:`predelinq.retraining.run`. With nothing to decide
beyond the counts, the decision is a few SQL queries and loads no data-frame or ML library.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine

from predelinq.config import Settings
from predelinq.monitoring.triggers import Observed, TriggerResult, evaluate, observe, trigger_reason
from predelinq.retraining.status import retraining_status

SEED_KEYS = ("new_customers_count", "retraining_needed", "reason", "threshold")


@dataclass(frozen=True)
class CheckDecision:
    status: dict[str, Any]  # the seed's retraining status, as counted before any retrain
    observed: Observed
    triggers: tuple[TriggerResult, ...]

    @property
    def retrain(self) -> bool:
        return any(trigger.fired for trigger in self.triggers)

    @property
    def reason(self) -> str:
        """Every trigger that fired; with none, the seed's ``New customers: N (below
        threshold)``."""
        return trigger_reason(self.triggers) if self.retrain else str(self.status["reason"])

    def as_json(self) -> dict[str, Any]:
        """The seed's keys (``retraining_needed`` and ``reason`` now of every trigger), the
        date of the drift and performance figures, and each trigger."""
        as_of = self.observed.as_of
        return {key: self.status[key] for key in SEED_KEYS} | {
            "retraining_needed": self.retrain,
            "reason": self.reason,
            "as_of": None if as_of is None else as_of.isoformat(),
            "triggers": [trigger.as_json() for trigger in self.triggers],
        }


def decide(engine: Engine, settings: Settings, *, as_of: date | None = None) -> CheckDecision:
    """The seed's status and every trigger, judged as of ``as_of`` (default: the data's own
    today, see :func:`predelinq.monitoring.triggers.observe`)."""
    status = retraining_status(engine, settings)
    observed = observe(engine, settings, as_of)
    return CheckDecision(status, observed, tuple(evaluate(settings, observed)))
