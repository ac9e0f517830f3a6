"""What makes ``check`` retrain: the triggers of the ``[triggers]`` table, judged on figures
observed from the database (or, in the backtest, from a replay in memory).

The evaluation is pure: :func:`evaluate` takes the settings and an :class:`Observed` and
returns one :class:`TriggerResult` per trigger, fired or not, always all five and in one order:

- ``new_customers``: the seed's rule, labelled customers no retrain has included, at least
  ``new_customer_threshold``. Never held by the cooldown, so the seed's check behaves as it
  did.
- ``new_labels``: labelled rows no retrain has used (every label of an untrained customer,
  and labels stored or changed after their customer's last retrain), at least the threshold.
- ``drift``: the champion's score PSI at least ``triggers.drift.score_psi``, or at least
  ``triggers.drift.features`` features at or over ``monitoring.psi_threshold``.
- ``performance``: the champion's realised AUC on matured labels is worse than expected at
  training by more than the tolerance, judged on its 95% interval: it fires when the
  interval's upper bound is below ``expected - tolerance``, on at least ``min_rows`` rows.
- ``max_age``: the champion was registered at least ``days`` days ago (off by default).

The triggers other than ``new_customers`` judge a model in service: without a champion they
do not fire (the first model comes from the seed's rule). Drift, performance and age do not
fire either when no label is unused (``new_labels`` counted zero): a retrain would refit the
same rows into the same model. A cooldown of ``cooldown_hours``
after the last retrain of ``model_retraining_log`` (whatever its outcome: a retrain that
fails is not retried at every check) holds them: a held trigger reports ``fired`` false,
``held`` true, and says so in its detail.

:func:`observe` gathers the figures: counts in SQL, and the drift and realised performance
only for the triggers that are enabled, have a champion and are not in their cooldown, since
they take seconds (a ``check`` with nothing to do stays a few queries, and loads no data-frame
or ML library). Their date is ``as_of``, by default the data's own today
(:func:`predelinq.db.summary.data_as_of`: the day after the newest stored event, at most
today). A champion's age is counted on the wall clock: how long ago it was trained.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Connection, Engine, func, select

from predelinq.clock import utc_now
from predelinq.config import Settings
from predelinq.db.schema import model_champion, model_retraining_log, model_versions
from predelinq.db.summary import data_as_of
from predelinq.errors import PredelinqError
from predelinq.retraining.status import new_customer_count, new_label_count

if TYPE_CHECKING:  # polars: loaded only when the performance is computed
    from predelinq.monitoring.performance import PeriodPerformance

TriggerName = Literal["new_customers", "new_labels", "drift", "performance", "max_age"]
TRIGGERS: tuple[TriggerName, ...] = (
    "new_customers",
    "new_labels",
    "drift",
    "performance",
    "max_age",
)


@dataclass(frozen=True)
class Realised:
    """The champion's realised AUC on matured labels, its 95% interval, how many rows it
    rests on, and the AUC expected at training."""

    auc: float | None
    auc_low: float | None
    auc_high: float | None
    rows: int
    expected_auc: float | None

    @classmethod
    def of(cls, pooled: PeriodPerformance) -> Realised:
        """The figures of a pooled realised performance."""
        return cls(pooled.auc, pooled.auc_low, pooled.auc_high, pooled.rows, pooled.expected_auc)


@dataclass(frozen=True)
class Observed:
    """What the triggers judge; None where a figure was not observed (``notes`` may say why,
    by trigger name)."""

    champion: str | None = None  # the model in service
    new_customers: int | None = None
    new_labels: int | None = None
    score_psi: float | None = None
    feature_psi: Mapping[str, float] | None = None
    realised: Realised | None = None
    champion_age_days: float | None = None
    hours_since_retrain: float | None = None  # None: never retrained
    as_of: date | None = None  # the date of the drift and performance figures
    notes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TriggerResult:
    name: TriggerName
    fired: bool
    value: float | None
    threshold: float | None
    detail: str
    held: bool = False  # it would have fired, but the cooldown holds it

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "fired": self.fired,
            "value": self.value,
            "threshold": self.threshold,
            "detail": self.detail,
            "held": self.held,
        }


def evaluate(settings: Settings, observed: Observed) -> list[TriggerResult]:
    """Every trigger, fired or not, in the order of ``TRIGGERS`` (see the module docstring)."""
    config = settings.triggers
    results = [
        _counted(
            "new_customers",
            observed.new_customers,
            settings.new_customer_threshold,
            enabled=config.new_customers.enabled,
        ),
        _counted(
            "new_labels",
            observed.new_labels,
            config.new_labels.threshold,
            enabled=config.new_labels.enabled,
        ),
        _drift(settings, observed),
        _performance(settings, observed),
        _max_age(settings, observed),
    ]
    results = [_needs_labels(_needs_champion(result, observed), observed) for result in results]
    cooldown = _cooldown(config.cooldown_hours, observed.hours_since_retrain)
    return [result if cooldown is None else _hold(result, cooldown) for result in results]


def trigger_reason(results: Iterable[TriggerResult]) -> str:
    """Every trigger that fired, with its figures: ``new_labels: 1000 >= 500; drift: ...``."""
    return "; ".join(f"{result.name}: {result.detail}" for result in results if result.fired)


# --- one function per trigger ----------------------------------------------------------------


def _disabled(name: TriggerName, threshold: float | None) -> TriggerResult:
    return TriggerResult(name, False, None, threshold, "disabled")


def _not_observed(
    name: TriggerName, threshold: float | None, observed: Observed, what: str
) -> TriggerResult:
    why = observed.notes.get(name, "not observed")
    return TriggerResult(name, False, None, threshold, f"{what}: {why}")


def _counted(
    name: TriggerName, count: int | None, threshold: int, *, enabled: bool
) -> TriggerResult:
    if not enabled:
        return _disabled(name, threshold)
    if count is None:
        return TriggerResult(name, False, None, threshold, "not counted")
    fired = count >= threshold
    return TriggerResult(
        name, fired, count, threshold, f"{count} {'>=' if fired else '<'} {threshold}"
    )


def _drift(settings: Settings, observed: Observed) -> TriggerResult:
    config, limit = settings.triggers.drift, settings.monitoring.psi_threshold
    if not config.enabled:
        return _disabled("drift", config.score_psi)
    if observed.score_psi is None and observed.feature_psi is None:
        return _not_observed("drift", config.score_psi, observed, "no PSI")
    parts, fired = [], False
    score = observed.score_psi
    if score is not None:
        fired = score >= config.score_psi
        parts.append(f"score PSI {score:.3f} {'>=' if fired else '<'} {config.score_psi:g}")
    psi = observed.feature_psi or {}
    drifted = sorted((name for name, value in psi.items() if value >= limit), key=psi.__getitem__)
    drifted.reverse()  # largest first
    enough = len(drifted) >= config.features
    fired = fired or enough
    named = f" ({', '.join(drifted[:5])}{', ...' if len(drifted) > 5 else ''})" if drifted else ""
    parts.append(
        f"{len(drifted)} of {len(psi)} features at PSI >= {limit:g}{named}"
        f"{'' if enough else f', fewer than {config.features}'}"
    )
    return TriggerResult("drift", fired, score, config.score_psi, "; ".join(parts))


def _performance(settings: Settings, observed: Observed) -> TriggerResult:
    config = settings.triggers.performance
    realised = observed.realised
    if not config.enabled:
        return _disabled("performance", None)
    if realised is None:
        return _not_observed("performance", None, observed, "no realised AUC")
    if realised.expected_auc is None:
        return TriggerResult(
            "performance", False, realised.auc, None, "no AUC expected at training to judge by"
        )
    floor = realised.expected_auc - config.tolerance
    expected = f"expected {realised.expected_auc:.3f} - {config.tolerance:g} = {floor:.3f}"
    if realised.rows < config.min_rows:
        detail = f"{realised.rows} matured rows, fewer than {config.min_rows}"
        return TriggerResult("performance", False, realised.auc, floor, detail)
    if realised.auc is None or realised.auc_high is None or realised.auc_low is None:
        detail = f"no realised AUC on {realised.rows} matured rows (one class only)"
        return TriggerResult("performance", False, None, floor, detail)
    fired = realised.auc_high < floor
    detail = (
        f"AUC {realised.auc:.3f} (95% {realised.auc_low:.3f}-{realised.auc_high:.3f}) on "
        f"{realised.rows} matured rows; upper bound {'<' if fired else '>='} {expected}"
    )
    return TriggerResult("performance", fired, realised.auc, floor, detail)


def _max_age(settings: Settings, observed: Observed) -> TriggerResult:
    config = settings.triggers.max_age
    if not config.enabled:
        return _disabled("max_age", config.days)
    age = observed.champion_age_days
    if age is None:
        return _not_observed("max_age", config.days, observed, "no champion age")
    fired = age >= config.days
    detail = f"champion {age:.1f} days old {'>=' if fired else '<'} {config.days}"
    return TriggerResult("max_age", fired, age, config.days, detail)


def _needs_champion(result: TriggerResult, observed: Observed) -> TriggerResult:
    """Only the seed's rule trains a first model: the others judge the model in service."""
    if result.name == "new_customers" or observed.champion is not None:
        return result
    if result.detail == "disabled":
        return result
    why = "no model in service (the first comes from new_customers)"
    return replace(result, fired=False, detail=f"{result.detail}; {why}")


def _needs_labels(result: TriggerResult, observed: Observed) -> TriggerResult:
    """Drift, performance and age say the model should change; a retrain changes it only by
    learning from labels it has not used. With none (counted: zero), the same rows would be
    refitted into the same model, so they report without firing."""
    if result.name in ("new_customers", "new_labels") or not result.fired:
        return result
    if observed.new_labels != 0:
        return result
    why = "no unused labels: a retrain would refit the same rows"
    return replace(result, fired=False, detail=f"{result.detail}; {why}")


def _cooldown(hours: float, since_retrain: float | None) -> str | None:
    if since_retrain is None or since_retrain >= hours:
        return None
    return f"cooldown: last retrain {since_retrain:.1f} h ago, < {hours:g} h"


def _hold(result: TriggerResult, cooldown: str) -> TriggerResult:
    if result.name == "new_customers" or result.detail == "disabled":
        return result
    held = result.fired
    detail = f"{result.detail}; {'held by the ' if held else ''}{cooldown}"
    return replace(result, fired=False, held=held, detail=detail)


# --- observing the database ------------------------------------------------------------------


def observe(
    engine: Engine, settings: Settings, as_of: date | None = None, *, figures: bool = True
) -> Observed:
    """The figures the triggers judge, from the database (see the module docstring: the drift
    and performance figures only where they are needed). ``figures`` False: the counts only
    (the monitor report computes the drift and performance itself, once, for its output)."""
    config = settings.triggers
    with engine.connect() as connection:
        new_customers = new_customer_count(connection)
        new_labels = new_label_count(connection) if config.new_labels.enabled else None
        champion, registered = _champion(connection)
        last = connection.execute(select(func.max(model_retraining_log.c.retrain_date))).scalar()
        now = utc_now()
        hours = None if last is None else (now - last).total_seconds() / 3600
        cooling = _cooldown(config.cooldown_hours, hours) is not None
        wanted = {
            name: figures and champion is not None and not cooling and getattr(config, name).enabled
            for name in ("drift", "performance")
        }
        if as_of is None and any(wanted.values()):
            as_of = data_as_of(connection)
    age = None if registered is None else (now - registered).total_seconds() / 86400
    notes: dict[str, str] = {}
    score_psi, feature_psi, realised = None, None, None
    if wanted["drift"] and as_of is not None:
        score_psi, feature_psi = observe_drift(engine, settings, as_of, notes)
    if wanted["performance"] and as_of is not None:
        realised = observe_performance(engine, settings, as_of, notes)
    if cooling:
        notes |= {name: "not computed" for name in ("drift", "performance")}
    return Observed(
        champion=champion,
        new_customers=new_customers,
        new_labels=new_labels,
        score_psi=score_psi,
        feature_psi=feature_psi,
        realised=realised,
        champion_age_days=age,
        hours_since_retrain=hours,
        as_of=as_of,
        notes=notes,
    )


def _champion(connection: Connection) -> tuple[str | None, datetime | None]:
    query = select(model_champion.c.model_version, model_versions.c.created_at).join(
        model_versions, model_versions.c.model_version == model_champion.c.model_version
    )
    row = connection.execute(query).first()
    return (None, None) if row is None else (row.model_version, row.created_at)


def observe_drift(
    engine: Engine, settings: Settings, as_of: date, notes: dict[str, str]
) -> tuple[float | None, dict[str, float] | None]:
    """The champion's score PSI and per-feature PSI as of ``as_of``
    (:func:`predelinq.monitoring.drift.drift_report`); why not, in ``notes``."""
    from predelinq.monitoring.drift import drift_report  # polars, xgboost: only when needed

    try:
        report = drift_report(engine, settings, as_of)
    except PredelinqError as error:  # a champion that cannot be scored: the others still judge
        notes["drift"] = str(error)
        return None, None
    if report.score_psi is None and not report.features:
        notes["drift"] = report.note or f"no population at {as_of}"
        return None, None
    return report.score_psi, dict(report.features)


def observe_performance(
    engine: Engine, settings: Settings, as_of: date, notes: dict[str, str]
) -> Realised | None:
    """The champion's pooled realised AUC on matured labels as of ``as_of``
    (:func:`predelinq.monitoring.performance.champion_performance`); why not, in ``notes``."""
    from predelinq.monitoring.performance import champion_performance

    try:
        pooled = champion_performance(engine, settings, as_of)
    except PredelinqError as error:
        notes["performance"] = str(error)
        return None
    if pooled is None:
        notes["performance"] = f"no matured labels of the champion at {as_of}"
        return None
    return Realised.of(pooled)
