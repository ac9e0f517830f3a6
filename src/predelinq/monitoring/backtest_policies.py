"""The backtest's replay of one policy (pure: arrays in, one outcome per step out; see
:mod:`predelinq.monitoring.backtest` for the rules it keeps).

At a step ``S`` a policy sees the label rows that have matured (observation date at most
``S - label_horizon_days``) and the customers first seen before ``S``; it decides whether to
retrain; a retrain selects customers as production does (untrained first, then those with
unused labels, then the rest, in seeded order, at most ``max_customers``), fits with
:func:`predelinq.modeling.fit.fit_challenger` and asks the production gate
(:func:`predelinq.retraining.gate.judge`) whether the challenger replaces the champion.
The champion then scores the label rows observed in ``[S, next step)``.

Retrains are memoised by lineage (step, customers selected, the champion's lineage): two
policies that retrain at the same step from the same state get the same model (same data,
same seed), and each is charged the seconds that retrain took.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np
import xgboost as xgb

from predelinq.config import Settings
from predelinq.errors import TrainingError
from predelinq.features.declarations import FeatureSet, Source
from predelinq.modeling.booster import predict
from predelinq.modeling.fit import Challenger, TrainingConfig, fit_challenger, train_rounds
from predelinq.modeling.metrics import evaluate, same_score_share
from predelinq.modeling.split import holdout_rows
from predelinq.monitoring.backtest_plan import Policy, StepOutcome
from predelinq.retraining.gate import (
    GateDecision,
    Scored,
    auc_interval,
    cross_validated_auc,
    judge,
)

if TYPE_CHECKING:
    from predelinq.monitoring.profile import Profile, Psi
    from predelinq.monitoring.triggers import Realised


FAILED = "training failed: "


@dataclass(frozen=True)
class History:
    """Every label row the replay may use, with its point-in-time features, and the steps.

    ``customer`` holds codes 0..n-1 in customer-id order; ``first_seen`` is each customer's
    first day (``created_at``'s date). ``population`` rows (customer, step) are every customer
    first seen before each step, with features as of the step: the drift population."""

    customer: np.ndarray  # per label row: customer code
    observed: np.ndarray  # per label row: observation date, datetime64[D]
    label: np.ndarray  # per label row: 0/1
    X: np.ndarray  # per label row: features
    names: list[str]
    features: FeatureSet
    starts: Mapping[Source, date | None]  # each event source's first day (drift's rule B)
    first_seen: np.ndarray  # per customer code: datetime64[D]
    steps: list[date]
    ends: list[date]  # each step's period ends before this date
    population_step: np.ndarray  # per population row: step index (not in arrears then)
    population_X: np.ndarray

    @property
    def customers(self) -> int:
        return int(self.first_seen.size)


@dataclass(frozen=True)
class Model:
    """A model of the replay, as the registry would hold it."""

    version: str
    lineage: str  # what it came from (step, customers, champion): unique in a replay
    booster: xgb.Booster
    trained_at: date  # the step it was trained at
    learnt: np.ndarray  # per customer code: the artifact learnt from this customer
    expected_auc: float  # its AUC as estimated at training (the registry's auc_score)
    profile: Profile | None  # reference profile over its training rows (triggers only)


@dataclass(frozen=True)
class Attempt:
    """One retrain: the challenger, whether the gate let it in and why, its cost."""

    model: Model | None  # None: training failed
    promoted: bool
    explanation: str
    seconds: float


@dataclass
class _State:
    """One policy's replay so far: its champion, whom its retrains included, and when."""

    champion: Model
    included: np.ndarray  # per customer code: some retrain included the customer
    last_included: np.ndarray  # per customer code: day of the last retrain including it
    last_retrain: date


@dataclass
class Replayer:
    """Replays policies over one ``History`` with one seed; retrains are shared (memoised)."""

    history: History
    settings: Settings
    config: TrainingConfig
    gate: bool = True  # False: every challenger that trains is promoted
    profiles: bool = False  # build each model's reference profile (for the drift trigger)
    memo: dict[str, Attempt] = field(default_factory=dict)  # by lineage

    def replay(self, policy: Policy) -> list[StepOutcome]:
        h = self.history
        first = self.retrain(0, None, self._selection(0, None))
        if first.model is None:
            raise TrainingError(first.explanation.removeprefix(FAILED))
        never = np.datetime64("NaT", "D")
        state = _State(
            first.model,
            np.zeros(h.customers, dtype=bool),
            np.full(h.customers, never, dtype="datetime64[D]"),
            h.steps[0],
        )
        self._include(state, 0, self._selection(0, None))
        outcomes = [self._outcome(0, policy, state, True, True, first.explanation, first.seconds)]
        for k in range(1, len(h.steps)):
            fire, reason = self._decide(policy, k, state)
            retrained, promoted, seconds = fire, False, 0.0
            if fire:
                chosen = self._selection(k, state)
                attempt = self.retrain(k, state.champion, chosen)
                seconds, promoted = attempt.seconds, attempt.promoted
                reason = f"{reason}; {attempt.explanation}"
                if attempt.model is not None:
                    self._include(state, k, chosen)
                state.last_retrain = h.steps[k]
                if promoted and attempt.model is not None:
                    state.champion = attempt.model
            outcomes.append(self._outcome(k, policy, state, retrained, promoted, reason, seconds))
        return outcomes

    # --- what a policy sees -------------------------------------------------------------

    def matured(self, k: int) -> np.ndarray:
        """Label rows visible at step ``k``: matured, of customers first seen before it."""
        h, step = self.history, np.datetime64(self.history.steps[k], "D")
        horizon = np.timedelta64(self.settings.label_horizon_days, "D")
        visible: np.ndarray = (h.observed <= step - horizon) & (h.first_seen[h.customer] < step)
        return visible

    def served(self, k: int) -> np.ndarray:
        """Label rows the champion scores after step ``k``: observed in its period."""
        h = self.history
        start, end = np.datetime64(h.steps[k], "D"), np.datetime64(h.ends[k], "D")
        return (h.observed >= start) & (h.observed < end)

    def _labelled(self, k: int) -> np.ndarray:
        """Per customer code: has a visible label at step ``k``."""
        found = np.zeros(self.history.customers, dtype=bool)
        found[self.history.customer[self.matured(k)]] = True
        return found

    def _selection(self, k: int, state: _State | None) -> np.ndarray:
        """Per customer code: chosen for a retrain at step ``k`` as production chooses
        (``retraining.selection.select_customers``): untrained first, then customers with
        labels no retrain used, then the rest, each group in seeded order."""
        h = self.history
        candidates = np.flatnonzero(self._labelled(k))
        included = np.zeros(h.customers, dtype=bool)
        unused = np.zeros(h.customers, dtype=bool)
        if state is not None:
            included = state.included
            rows = self.matured(k)
            unused[h.customer[rows][self._unused(rows, state)]] = True
        used = (included & ~unused)[candidates]
        shuffle = np.random.default_rng(self.config.seed).permutation(candidates.size)
        ranked = candidates[np.lexsort((shuffle, used, included[candidates]))]
        cap = self.settings.max_customers
        chosen = np.zeros(h.customers, dtype=bool)
        chosen[ranked if cap == "all" else ranked[:cap]] = True
        return chosen

    def _include(self, state: _State, k: int, chosen: np.ndarray) -> None:
        state.included |= chosen
        state.last_included[chosen] = np.datetime64(self.history.steps[k], "D")

    # --- deciding ----------------------------------------------------------------------

    def new_customers(self, k: int, state: _State) -> int:
        return int(np.count_nonzero(self._labelled(k) & ~state.included))

    def new_labels(self, k: int, state: _State) -> int:
        return int(np.count_nonzero(self._unused(self.matured(k), state)))

    def _unused(self, rows: np.ndarray, state: _State) -> np.ndarray:
        """Of the label rows ``rows`` (a mask), those no retrain used: of customers never
        included, or matured after the customer's last retrain (a label "arrives" when it
        matures)."""
        h = self.history
        horizon = np.timedelta64(self.settings.label_horizon_days, "D")
        last = state.last_included[h.customer[rows]]
        unused: np.ndarray = np.isnat(last) | (h.observed[rows] + horizon > last)
        return unused

    def _decide(self, policy: Policy, k: int, state: _State) -> tuple[bool, str]:
        if policy is Policy.NEVER:
            return False, "never retrains"
        if policy is Policy.ALWAYS:
            return True, "every step"
        if policy is Policy.SEED:
            count, threshold = self.new_customers(k, state), self.settings.new_customer_threshold
            return count >= threshold, f"new customers: {count} (threshold {threshold})"
        return self._triggers(k, state)

    def _triggers(self, k: int, state: _State) -> tuple[bool, str]:
        """The configured triggers as ``check`` evaluates them, on what the step sees; the
        cooldown runs in replayed time (since the last retrain step)."""
        from predelinq.monitoring.triggers import Observed, evaluate, trigger_reason

        enabled, step, champion = self.settings.triggers, self.history.steps[k], state.champion
        drift = self._drift(k, champion) if enabled.drift.enabled else None
        observed = Observed(
            champion=champion.version,
            new_customers=self.new_customers(k, state),
            new_labels=self.new_labels(k, state),
            score_psi=None if drift is None else drift.score,
            feature_psi=None if drift is None else drift.features,
            realised=self._realised(k, champion) if enabled.performance.enabled else None,
            champion_age_days=float((step - champion.trained_at).days),
            hours_since_retrain=(step - state.last_retrain) / timedelta(hours=1),
            as_of=step,
        )
        results = evaluate(self.settings, observed)
        if not any(result.fired for result in results):
            return False, "no trigger fired"
        return True, trigger_reason(results)

    def _drift(self, k: int, champion: Model) -> Psi | None:
        """PSI of the population at step ``k`` (customers first seen before it, features as
        of it) against the champion's training rows."""
        from predelinq.monitoring.profile import compare
        from predelinq.monitoring.scope import monitoring_scope

        h = self.history
        X = h.population_X[h.population_step == k]
        if champion.profile is None or not X.shape[0]:
            return None
        scores = predict(champion.booster, X, threads=self.config.threads)
        scope = monitoring_scope(champion.profile, h.features, h.steps[k], h.starts)
        return compare(champion.profile, X, h.names, scores, only=scope.monitored)

    def _realised(self, k: int, champion: Model) -> Realised | None:
        """The champion's AUC, with its interval, on the matured labels observed since it
        went into service, next to the AUC expected at its training."""
        from predelinq.monitoring.triggers import Realised

        h = self.history
        since = np.datetime64(champion.trained_at, "D")
        rows = np.flatnonzero(self.matured(k) & (h.observed >= since))
        if not rows.size:
            return None
        scores = predict(champion.booster, h.X[rows], threads=self.config.threads)
        auc = auc_interval(Scored(h.label[rows], scores, h.customer[rows]))
        if not np.isfinite(auc.estimate):
            return None
        return Realised(
            auc=auc.estimate,
            auc_low=auc.low,
            auc_high=auc.high,
            rows=int(rows.size),
            expected_auc=champion.expected_auc,
        )

    # --- training ----------------------------------------------------------------------

    def retrain(self, k: int, champion: Model | None, chosen: np.ndarray) -> Attempt:
        """A retrain at step ``k`` of the ``chosen`` customers against ``champion``, run once
        per replay (models are named by their step, so the champion counts by lineage)."""
        digest = hashlib.sha256(np.packbits(chosen).tobytes()).hexdigest()[:16]
        lineage = f"{champion.lineage if champion else ''}/{k}:{digest}"
        if lineage not in self.memo:
            started = time.perf_counter()
            attempt = self._train(k, champion, chosen, lineage)
            self.memo[lineage] = Attempt(
                attempt.model,
                attempt.promoted,
                attempt.explanation,
                time.perf_counter() - started,
            )
        return self.memo[lineage]

    def _train(self, k: int, champion: Model | None, chosen: np.ndarray, lineage: str) -> Attempt:
        h, config = self.history, self.config
        rows = np.flatnonzero(self.matured(k) & chosen[h.customer])
        X, y, ids = h.X[rows], h.label[rows].astype(float), h.customer[rows]
        dates = h.observed[rows]
        eligible = ~champion.learnt[ids] if champion else np.ones(rows.size, dtype=bool)
        holdout = holdout_rows(
            ids, dates, y, eligible=eligible, share=config.holdout_share, seed=config.seed
        )
        try:
            challenger = fit_challenger(
                X,
                y,
                customer_ids=ids,
                observation_dates=dates,
                holdout=holdout,
                feature_names=h.names,
                config=config,
            )
        except TrainingError as error:
            return Attempt(None, False, f"{FAILED}{error}", 0.0)
        refit = challenger.method == "cross_validation"
        artifact = train_rounds(X, y, challenger.rounds, h.names, config) if refit else None
        booster = artifact or challenger.booster
        scores = predict(booster, X, threads=config.threads)
        decision = self._judge(y, ids, challenger, scores, champion, X)
        learnt = np.zeros(h.customers, dtype=bool)
        learnt[ids if refit else ids[challenger.fit]] = True
        model = Model(
            version=f"backtest-{h.steps[k].isoformat()}",
            lineage=lineage,
            booster=booster,
            trained_at=h.steps[k],
            learnt=learnt,
            expected_auc=float(challenger.metrics["auc"]),
            profile=self._profile(X, dates, booster),
        )
        promoted = decision.promoted or not self.gate
        explanation = decision.explanation
        if not self.gate and not decision.promoted:
            explanation = f"promoted without the gate, which would have said: {explanation}"
        return Attempt(model, promoted, explanation, 0.0)

    def _profile(self, X: np.ndarray, dates: np.ndarray, booster: xgb.Booster) -> Profile | None:
        """The reference profile drift is measured against, as registration stores it
        (``monitoring.reference``); only the drift trigger needs it."""
        if not self.profiles:
            return None
        from predelinq.monitoring.scope import reference_profile

        def score(rows: np.ndarray) -> np.ndarray:
            return predict(booster, rows, threads=self.config.threads)

        h = self.history
        return reference_profile(
            X, dates, score, h.features, h.starts, self.settings.monitoring.bins
        )

    def _judge(
        self,
        y: np.ndarray,
        ids: np.ndarray,
        challenger: Challenger,
        scores: np.ndarray,
        champion: Model | None,
        X: np.ndarray,
    ) -> GateDecision:
        """The production gate on the same evidence ``retraining.run`` gives it."""
        if challenger.method == "cross_validation":
            folds, fit = len(challenger.fold_metrics), challenger.fit
            skill = cross_validated_auc(
                Scored(y[fit], challenger.out_of_fold_scores, ids[fit]), folds
            )
            basis = f"out-of-fold scores of {folds}-fold cross-validation, {fit.size} rows"
        else:
            rows = challenger.out_of_sample
            skill = auc_interval(Scored(y[rows], challenger.out_of_sample_scores, ids[rows]))
            basis = f"{rows.size} validation and holdout rows"
        held = challenger.holdout
        newest = Scored(y[held], challenger.holdout_scores, ids[held]) if held.size else None
        holdout = None
        if champion is not None:
            theirs = predict(champion.booster, X[held], threads=self.config.threads)
            holdout = Scored(y[held], challenger.holdout_scores, ids[held], theirs)
        return judge(
            skill,
            basis,
            same_score_share(scores),
            newest=newest,
            holdout=holdout,
            champion=champion.version if champion else None,
            tolerance=self.settings.gate_tolerance,
        )

    # --- measuring ---------------------------------------------------------------------

    def _outcome(
        self,
        k: int,
        policy: Policy,
        state: _State,
        retrained: bool,
        promoted: bool,
        reason: str,
        seconds: float,
    ) -> StepOutcome:
        rows = np.flatnonzero(self.served(k))
        y = self.history.label[rows]
        auc = None
        if rows.size:
            scores = predict(
                state.champion.booster, self.history.X[rows], threads=self.config.threads
            )
            value = evaluate(y, scores, 0.5)["auc"]
            auc = None if np.isnan(value) else float(value)
        return StepOutcome(
            period=self.history.steps[k],
            policy=policy,
            model_version=state.champion.version,
            retrained=retrained,
            promoted=promoted,
            reason=reason,
            rows=int(rows.size),
            positives=int(y.sum()),
            auc=auc,
            seconds=seconds,
        )
