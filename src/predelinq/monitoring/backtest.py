"""Replay history as if the system had been running: does retraining pay on this data?

``run_backtest(engine, settings, plan)`` steps from ``plan.start`` to ``plan.end`` (every
month by default). At each step ``S`` only what existed then is visible:

* **Labels once matured**: a label row trains only when its observation date is at most
  ``S - label_horizon_days``, and only for customers first seen before ``S``.
* **Events before the date**: features are point in time (only events strictly before a
  row's observation date count), so the features of a label row observed before ``S`` use
  only events before ``S``.

The policy (:class:`~predelinq.monitoring.backtest_plan.Policy`) decides whether to retrain;
the champion then scores the label rows observed in ``[S, next step)`` and their AUC is the
period's realised AUC. Every policy trains its first model at the first step.

Choices, and why:

* **Features once.** Point-in-time features depend only on (customer, observation date), so
  they are computed once, in bulk (``compute_features``), for every label row observed before
  ``plan.end`` and, for the drift trigger, for the population of each step; each step then
  only selects rows. The population is the ``customers`` population of ``monitor``
  (:mod:`predelinq.monitoring.drift`): customers first seen before the step and not 30+ days
  past due at it, at most ``POPULATION_CUSTOMERS`` of them in seeded random order.
* **Training as production trains.** The same customer selection (untrained first, then
  those with unused labels, then the rest, in seeded order, at most
  ``settings.max_customers``; ``"all"`` trains on every visible label), ``fit_challenger``
  with ``training_config(settings, seed)``, the same refit, and one seed for every retrain:
  the same seed on the same data gives the same rows.
* **The gate decides**, as in production (``retraining.gate.judge`` on the holdout of the
  newest customers the champion never learnt from): a retrain that the gate would keep out
  leaves the champion in service. With every customer trained on (``max_customers="all"``)
  those are the few customers new since the last retrain, so on small data the gate often
  keeps the champion for want of evidence (fewer than 200 holdout rows): that is what
  production would do. ``plan.gate=False`` (``--no-gate``) promotes every challenger
  instead, which shows what retraining alone would give.
* **Triggers** are the configured set (``[triggers]``), evaluated by
  ``monitoring.triggers.evaluate`` on what the step sees: the new-customer and new-label
  counts (a label "arrives" when it matures), the drift of the step's population against the
  champion's reference profile (built from its training rows as registration builds it, and
  judged on the features ``monitoring.scope`` monitors at the step), the champion's realised
  AUC on the matured labels observed since it went into service next to its AUC expected at
  training, its age, and the cooldown in replayed time (since the last retrain step).
* **Read-only.** Nothing is written: no version, no log row, no artifact; the registry is
  never read. Retrains are timed (compute seconds) and shared between policies that retrain
  from the same state at the same step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Engine, select

from predelinq.config import Settings
from predelinq.db import schema
from predelinq.errors import TrainingError
from predelinq.features import configured_features
from predelinq.monitoring.backtest_plan import BacktestError, Plan, Policy, StepOutcome
from predelinq.monitoring.backtest_policies import History, Replayer
from predelinq.monitoring.drift import in_arrears
from predelinq.monitoring.scope import data_starts
from predelinq.retraining.run import training_config
from predelinq.scaleout import gathered_features

POPULATION_CUSTOMERS = 10_000  # drift population per step: PSI needs no more


@dataclass(frozen=True)
class PolicySummary:
    """One policy over the whole replay."""

    policy: Policy
    periods: int  # periods with an AUC (both classes among their labels)
    mean_auc: float | None
    mean_auc_after: float | None  # periods from ``plan.after``; None without it
    retrains: int  # retrains run, the first model's included
    promotions: int  # of those, how many the gate let into service
    compute_seconds: float  # training and gate, over every retrain

    def as_json(self, *, after: bool) -> dict[str, Any]:
        found: dict[str, Any] = {
            "policy": str(self.policy),
            "mean_auc": self.mean_auc,
            "retrains": self.retrains,
            "promotions": self.promotions,
            "compute_seconds": round(self.compute_seconds, 3),
            "periods": self.periods,
        }
        if after:
            found["mean_auc_after"] = self.mean_auc_after
        return found


@dataclass(frozen=True)
class BacktestResult:
    plan: Plan
    rows: list[StepOutcome]  # policy by policy, step by step
    summary: list[PolicySummary]

    def as_json(self) -> dict[str, Any]:
        after = self.plan.after is not None
        return {
            "rows": [row_json(row) for row in self.rows],
            "summary": [summary.as_json(after=after) for summary in self.summary],
        }


def row_json(row: StepOutcome) -> dict[str, Any]:
    """A row's JSON: the issue's keys, then the promotion and the reason."""
    return {
        "period": row.period.isoformat(),
        "policy": str(row.policy),
        "model_version": row.model_version,
        "retrained": row.retrained,
        "rows": row.rows,
        "positives": row.positives,
        "auc": row.auc,
        "promoted": row.promoted,
        "reason": row.reason,
    }


def run_backtest(engine: Engine, settings: Settings, plan: Plan) -> BacktestResult:
    """Replay ``plan``'s policies over the stored data (see the module docstring)."""
    drift = Policy.TRIGGERS in plan.policies and settings.triggers.drift.enabled
    history = read_history(engine, settings, plan, population=drift)
    replayer = Replayer(
        history,
        settings,
        training_config(settings, plan.seed),
        gate=plan.gate,
        profiles=drift,
    )
    rows: list[StepOutcome] = []
    for policy in dict.fromkeys(plan.policies):
        try:
            rows += replayer.replay(policy)
        except TrainingError as error:
            first = history.steps[0]
            matured = first - timedelta(days=settings.label_horizon_days)
            raise BacktestError(
                f"no first model at --from {first}: the labels matured by then (observed up "
                f"to {matured}) cannot train one ({error}); start later"
            ) from None
    return BacktestResult(
        plan, rows, [summarise(rows, policy, plan) for policy in dict.fromkeys(plan.policies)]
    )


def summarise(rows: list[StepOutcome], policy: Policy, plan: Plan) -> PolicySummary:
    mine = [row for row in rows if row.policy is policy]
    aucs = [row.auc for row in mine if row.auc is not None]
    after = [
        row.auc for row in mine if row.auc is not None and plan.after and row.period >= plan.after
    ]
    return PolicySummary(
        policy=policy,
        periods=len(aucs),
        mean_auc=float(np.mean(aucs)) if aucs else None,
        mean_auc_after=float(np.mean(after)) if after else None,
        retrains=sum(row.retrained for row in mine),
        promotions=sum(row.promoted for row in mine),
        compute_seconds=sum(row.seconds for row in mine),
    )


def read_history(engine: Engine, settings: Settings, plan: Plan, *, population: bool) -> History:
    """The label rows observed before ``plan.end`` with their features, the customers, and
    (``population``) each step's drift population with features as of the step."""
    steps, ends = plan.steps(), plan.ends()
    customers, labels = _read_rows(engine, plan.end)
    with engine.connect() as connection:
        starts = data_starts(connection)
        arrears = [in_arrears(connection, step) for step in steps] if population else []
    in_range = labels.filter(
        pl.col("observation_date").is_between(plan.start, plan.end, closed="left")
    )
    if in_range.is_empty():
        raise BacktestError(_no_labels(plan, labels))
    people = _population(customers, steps, arrears, plan.seed) if population else _no_population()
    observations = pl.concat(
        [
            labels.select("customer_id", "observation_date"),
            people.select("customer_id", "observation_date"),
        ]
    )
    feature_set = configured_features(settings)
    names = list(feature_set.names)
    # on the workers in Dask mode (PREDELINQ_DASK_SCHEDULER), gathered: the replay needs them
    features = gathered_features(engine, observations, settings=settings, features=feature_set)
    X = features.select(names).to_numpy()
    split = labels.height
    return History(
        customer=labels["code"].to_numpy(),
        observed=labels["observation_date"].to_numpy().astype("datetime64[D]"),
        label=labels["label"].to_numpy().astype(np.int8),
        X=X[:split],
        names=names,
        features=feature_set,
        starts=starts,
        first_seen=customers["first_seen"].to_numpy().astype("datetime64[D]"),
        steps=steps,
        ends=ends,
        population_step=people["step"].to_numpy(),
        population_X=X[split:],
    )


def _read_rows(engine: Engine, end: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every customer (code = position in id order, first day seen) and the label rows
    observed before ``end`` with their customer's code."""
    c, lab = schema.customers.c, schema.labels.c
    with engine.connect() as connection:
        people = connection.execute(select(c.customer_id, c.created_at)).all()
        rows = connection.execute(
            select(lab.customer_id, lab.observation_date, lab.label).where(
                lab.observation_date < end
            )
        ).all()
    customers = (
        pl.DataFrame(
            people, schema={"customer_id": pl.String, "created_at": pl.Datetime("us")}, orient="row"
        )
        .sort("customer_id")
        .with_row_index("code")
        .with_columns(first_seen=pl.col("created_at").dt.date())
    )
    labels = (
        pl.DataFrame(
            rows,
            schema={"customer_id": pl.String, "observation_date": pl.Date, "label": pl.Int8},
            orient="row",
        )
        .join(customers.select("customer_id", "code"), on="customer_id")
        .sort("customer_id", "observation_date")
    )
    return customers, labels


def _population(
    customers: pl.DataFrame, steps: list[date], arrears: list[pl.Series], seed: int
) -> pl.DataFrame:
    """Per step: customers first seen before it and not in arrears at it (as ``monitor``
    takes them, see ``monitoring.drift``), a seeded sample of at most
    ``POPULATION_CUSTOMERS``, observed at the step."""
    order = np.random.default_rng(seed).permutation(customers.height)
    ranked = customers.with_columns(rank=pl.Series(order))
    frames = []
    for k, step in enumerate(steps):
        seen = ranked.filter(
            pl.col("created_at") < datetime.combine(step, datetime.min.time()),
            ~pl.col("customer_id").is_in(arrears[k].implode()),
        )
        frames.append(
            seen.sort("rank")
            .head(POPULATION_CUSTOMERS)
            .sort("customer_id")
            .select("customer_id", observation_date=pl.lit(step), step=pl.lit(k, dtype=pl.Int64))
        )
    return pl.concat(frames)


def _no_population() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"customer_id": pl.String, "observation_date": pl.Date, "step": pl.Int64}
    )


def _no_labels(plan: Plan, labels: pl.DataFrame) -> str:
    if labels.is_empty():
        return f"no labels observed before --to {plan.end}: nothing to replay"
    first, last = (str(labels["observation_date"].min()), str(labels["observation_date"].max()))
    return (
        f"no labels observed between --from {plan.start} and --to {plan.end}; the labels "
        f"observed before {plan.end} run from {first} to {last}"
    )
