"""The quality gate: a new model goes into service only if it beats chance and is not worse
than the champion (pure computation: scores in, a decision out; the caller loads models).

**Never a useless model.** Whatever else holds, a challenger is kept out when the 95%
interval of its AUC reaches 0.5, when its AUC on the newest held-out rows is not above 0.5
(a replication on rows no fit has touched, judged when they hold ``MIN_HOLDOUT_POSITIVES``
of each class: on 46 rows with 4 positives a good model's AUC came out 0.32; with shuffled
labels on 300 customers, 2 runs in 100 passed the interval, 1 both), or when the model to be
served gives at least ``SAME_SCORE_SHARE`` of its training rows the same score. The AUC and
its interval come from cross-validation (:func:`cross_validated_auc`) when the challenger
was cross-validated, else from rows its model did not learn (:func:`auc_interval` on the
validation and holdout rows).

**First model**, or a champion whose features no longer exist or are declared differently
(it could not be served either): a useful challenger is promoted. A champion whose artifact
is missing or fails verification is replaced only with ``force``: a retrain does not quietly
paper over a damaged model in service.

**Against a champion**: both are scored on exactly the same rows, the holdout (the newest
customers that no earlier retrain included, held out of the challenger's fit). With fewer
than ``MIN_HOLDOUT_ROWS`` rows or ``MIN_HOLDOUT_POSITIVES`` positives (or negatives) there,
the champion stays: too little evidence. Otherwise the challenger is promoted when the lower
end of the 95% interval of ΔAUC = AUC(challenger) - AUC(champion) is at least
``-tolerance``: not worse by more than the tolerance, at 95% confidence.

**Intervals** of one model's AUC on fixed rows are 95% normal intervals from DeLong's method
with each customer's rows as one cluster (Obuchowski 1997, *Biometrics* 53:567): a customer's
rows are not independent, and plain DeLong would make the intervals too narrow. For ΔAUC the
two models' AUCs are paired (their covariance is estimated from the same rows). Pooled
out-of-fold scores come from several models fitted to one sample, and DeLong understates
their spread (with shuffled labels, the out-of-fold AUC varied 1.6 times more than its
DeLong standard error); the cross-validated interval therefore scales that variance by
Nadeau and Bengio's correction, 1 + K/(K - 1), 2.25 for 5 folds (*Machine Learning* 52:239,
2003). ``force`` promotes anyway and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from predelinq.modeling.metrics import evaluate
from predelinq.modeling.split import customer_codes

MIN_HOLDOUT_ROWS = 200
MIN_HOLDOUT_POSITIVES = 20
SAME_SCORE_SHARE = 0.95
CONFIDENCE = 0.95
Z = 1.959963984540054  # the standard normal's 97.5% quantile: a two-sided 95% interval


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}

    def __str__(self) -> str:
        return f"{self.estimate:.4f} [{self.low:.4f}, {self.high:.4f}]"


@dataclass(frozen=True)
class Scored:
    """Rows scored by one or two models: labels, scores and each row's customer."""

    labels: np.ndarray
    scores: np.ndarray
    customer_ids: np.ndarray
    champion_scores: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return int(self.labels.size)

    @property
    def positives(self) -> int:
        return int(np.sum(self.labels))


@dataclass(frozen=True)
class GateDecision:
    promoted: bool
    champion_auc: float | None  # the champion's AUC on the holdout, when compared
    explanation: str
    evidence: dict[str, Any] = field(default_factory=dict)


def _placements(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's placement values: for each positive, the share of negatives scored below it
    (ties half); for each negative, the share of positives scored above it (ties half)."""
    positives, negatives = np.sort(scores[labels]), np.sort(scores[~labels])

    def share_below(sorted_values: np.ndarray, at: np.ndarray) -> np.ndarray:
        left = np.searchsorted(sorted_values, at, side="left")
        right = np.searchsorted(sorted_values, at, side="right")
        return (left + right) / 2 / sorted_values.size

    v10 = share_below(negatives, scores[labels])
    v01 = 1 - share_below(positives, scores[~labels])
    return v10, v01


def _clustered_auc_moments(
    labels: np.ndarray, scores: list[np.ndarray], customer_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of each score array and their covariance matrix, clustered by customer
    (Obuchowski 1997: DeLong's method with a customer's rows as one cluster)."""
    labels = np.asarray(labels).astype(bool)
    codes = customer_codes(customer_ids)
    clusters = int(codes.max()) + 1 if codes.size else 0
    if clusters < 2 or labels.all() or not labels.any():
        count = len(scores)  # no spread to measure: NaN, which the gate keeps out
        return np.full(count, np.nan), np.full((count, count), np.nan)
    m = np.bincount(codes[labels], minlength=clusters).astype(float)  # positives per customer
    n = np.bincount(codes[~labels], minlength=clusters).astype(float)
    big_m, big_n = m.sum(), n.sum()
    aucs, d10, d01 = [], [], []
    for score in scores:
        v10, v01 = _placements(labels, np.asarray(score, dtype=float))
        auc = v10.mean()
        aucs.append(auc)
        d10.append(np.bincount(codes[labels], weights=v10, minlength=clusters) - m * auc)
        d01.append(np.bincount(codes[~labels], weights=v01, minlength=clusters) - n * auc)
    a10, a01 = np.array(d10), np.array(d01)  # (models, customers)
    scale = clusters / (clusters - 1)
    s10 = scale / big_m * a10 @ a10.T
    s01 = scale / big_n * a01 @ a01.T
    s11 = scale * a10 @ a01.T
    covariance = s10 / big_m + s01 / big_n + (s11 + s11.T) / (big_m * big_n)
    return np.array(aucs), covariance


def cross_validated_auc(out_of_fold: Scored, folds: int) -> Interval:
    """The AUC of pooled out-of-fold scores with a 95% interval whose clustered-DeLong
    variance is scaled by Nadeau and Bengio's correction for cross-validation,
    (1/K + n_test/n_train) / (1/K) = 1 + K/(K - 1): the folds' models share most of their
    training rows, so their errors are not independent. (Their corrected t interval over
    the K fold AUCs themselves was too wide to be of use with a few positives per fold:
    [0.17, 1.38] around 0.78 on 184 rows with 18 positives.)"""
    aucs, covariance = _clustered_auc_moments(
        out_of_fold.labels, [out_of_fold.scores], out_of_fold.customer_ids
    )
    return _interval(aucs[0], covariance[0, 0] * (1 + folds / (folds - 1)))


def _interval(estimate: float, variance: float) -> Interval:
    half = Z * float(np.sqrt(max(variance, 0.0)))
    return Interval(float(estimate), float(estimate) - half, float(estimate) + half)


def auc_interval(scored: Scored) -> Interval:
    """The AUC of ``scored.scores`` with its 95% interval."""
    aucs, covariance = _clustered_auc_moments(scored.labels, [scored.scores], scored.customer_ids)
    return _interval(aucs[0], covariance[0, 0])


def auc_difference(scored: Scored) -> tuple[Interval, float, float]:
    """ΔAUC (challenger - champion) with its paired 95% interval, and the two AUCs."""
    assert scored.champion_scores is not None
    aucs, cov = _clustered_auc_moments(
        scored.labels, [scored.scores, scored.champion_scores], scored.customer_ids
    )
    variance = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    return _interval(aucs[0] - aucs[1], variance), float(aucs[0]), float(aucs[1])


def judge(
    skill: Interval,
    skill_basis: str,
    same_score_share: float,
    *,
    newest: Scored | None,
    holdout: Scored | None,
    champion: str | None,
    not_comparable: str | None = None,
    champion_broken: str | None = None,
    tolerance: float,
    force: bool = False,
) -> GateDecision:
    """Decide whether the challenger goes into service (see the module docstring).

    ``skill`` is the challenger's AUC with its 95% interval, measured as ``skill_basis``
    says; ``newest`` is its decision model's scores on the holdout rows; ``holdout`` carries
    both models' scores when there is a comparable ``champion``; ``not_comparable`` says why
    a champion cannot be compared (its features changed, or its artifact cannot be used:
    ``champion_broken`` then says why, and only ``force`` replaces it)."""
    evidence: dict[str, Any] = {
        "auc_interval": skill.as_dict(),
        "auc_interval_basis": skill_basis,
        "same_score_share": same_score_share,
        "tolerance": tolerance,
        "confidence": CONFIDENCE,
    }
    verdict, champion_auc = _verdict(
        skill,
        skill_basis,
        same_score_share,
        newest,
        holdout,
        champion,
        not_comparable,
        tolerance,
        evidence,
    )
    promoted, explanation = verdict
    if force and not promoted:
        explanation += "; promoted by --force"
    evidence["forced"] = bool(force and not promoted)
    decision = GateDecision(promoted or force, champion_auc, explanation, evidence)
    if champion_broken is None:
        return decision
    return _broken_champion(decision, champion, champion_broken, force=force)


def _broken_champion(
    decision: GateDecision, champion: str | None, problem: str, *, force: bool
) -> GateDecision:
    """The verdict when the champion's artifact cannot be used (see the module docstring)."""
    if force:
        explanation = f"{decision.explanation} (--force replaces a champion that cannot be loaded)"
        return GateDecision(True, None, explanation, decision.evidence)
    return GateDecision(
        False,
        None,
        f"kept out: the champion {champion} cannot be loaded ({problem}); a retrain replaces "
        f"it only with --force (the gate alone: {decision.explanation})",
        decision.evidence | {"champion_broken": problem},
    )


def _verdict(
    skill: Interval,
    basis: str,
    same_score_share: float,
    newest: Scored | None,
    holdout: Scored | None,
    champion: str | None,
    not_comparable: str | None,
    tolerance: float,
    evidence: dict[str, Any],
) -> tuple[tuple[bool, str], float | None]:
    if not np.isfinite(skill.low):
        return (False, f"kept out: no AUC interval could be measured ({basis})"), None
    if skill.low <= 0.5:
        return (False, f"kept out, no better than chance: AUC {skill} ({basis})"), None
    if newest is not None and min(newest.positives, newest.rows - newest.positives) >= (
        MIN_HOLDOUT_POSITIVES
    ):
        newest_auc = evaluate(newest.labels, newest.scores, 0.5)["auc"]
        evidence["auc_newest"] = newest_auc
        if newest_auc <= 0.5:
            return (
                False,
                f"kept out, no better than chance on the {newest.rows} newest held-out rows: "
                f"AUC {newest_auc:.4f} (AUC {skill} by {basis})",
            ), None
    if same_score_share >= SAME_SCORE_SHARE:
        share = f"{same_score_share:.0%}"
        return (False, f"kept out: it gives {share} of its training rows the same score"), None
    if champion is None or not_comparable is not None:
        first = "first model" if champion is None else f"champion {champion} {not_comparable}"
        return (True, f"{first}: promoted, AUC {skill} ({basis})"), None
    assert holdout is not None
    evidence |= {"holdout_rows": holdout.rows, "holdout_positives": holdout.positives}
    negatives = holdout.rows - holdout.positives
    if holdout.rows < MIN_HOLDOUT_ROWS or min(holdout.positives, negatives) < MIN_HOLDOUT_POSITIVES:
        return (
            False,
            f"champion {champion} kept, too little evidence to compare: the holdout has "
            f"{holdout.rows} rows with {holdout.positives} positives and {negatives} "
            f"negatives (needs {MIN_HOLDOUT_ROWS} rows and {MIN_HOLDOUT_POSITIVES} of each)",
        ), None
    delta, challenger_auc, champion_auc = auc_difference(holdout)
    evidence |= {
        "delta_auc": delta.as_dict(),
        "challenger_auc": challenger_auc,
        "champion_auc": champion_auc,
    }
    passed = delta.low >= -tolerance
    explanation = (
        f"gate {'passed' if passed else 'failed'} on the same {holdout.rows} holdout rows "
        f"({holdout.positives} positives): AUC {challenger_auc:.4f} vs champion {champion} "
        f"{champion_auc:.4f}, ΔAUC {delta.estimate:+.4f} [{delta.low:+.4f}, {delta.high:+.4f}]"
        f" {'within' if passed else 'beyond'} the tolerance {tolerance}"
    )
    return (passed, explanation), champion_auc
