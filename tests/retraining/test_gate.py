"""Tests for the quality gate: clustered DeLong intervals checked against scikit-learn, a
customer-level bootstrap and classic DeLong, and every branch of the decision.

The data is synthetic: customers with 1 to 10 rows each, a per-customer risk that drives
both the labels and the scores (so a customer's rows are far from independent), and scores
rounded to one decimal (so ties are everywhere).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from predelinq.retraining.gate import (
    MIN_HOLDOUT_POSITIVES,
    MIN_HOLDOUT_ROWS,
    SAME_SCORE_SHARE,
    GateDecision,
    Interval,
    Scored,
    auc_difference,
    auc_interval,
    cross_validated_auc,
    judge,
)

Z = NormalDist().inv_cdf(0.975)
TOLERANCE = 0.02
BASE_EVIDENCE = {
    "auc_interval",
    "auc_interval_basis",
    "same_score_share",
    "tolerance",
    "confidence",
    "forced",
}
COMPARED_EVIDENCE = BASE_EVIDENCE | {
    "holdout_rows",
    "holdout_positives",
    "delta_auc",
    "challenger_auc",
    "champion_auc",
}


@dataclass(frozen=True)
class Clustered:
    labels: np.ndarray
    customers: np.ndarray
    model: Callable[[float], np.ndarray]  # noise -> scores of a model that sees the risk

    def scored(self, noise: float, champion_noise: float | None = None) -> Scored:
        champion = None if champion_noise is None else self.model(champion_noise)
        return Scored(self.labels, self.model(noise), self.customers, champion)


def clustered(seed: int, customers: int = 400, max_rows: int = 10) -> Clustered:
    rng = np.random.default_rng(seed)
    cust = np.repeat(np.arange(customers), rng.integers(1, max_rows + 1, customers))
    risk = rng.normal(size=customers)[cust]
    labels = (rng.random(cust.size) < 1 / (1 + np.exp(1.5 - 1.5 * risk))).astype(np.int64)

    def model(noise: float) -> np.ndarray:
        return np.round(risk + rng.normal(scale=noise, size=cust.size), 1)

    return Clustered(labels, cust + 5000, model)


def half_width(interval) -> float:
    assert interval.high - interval.estimate == pytest.approx(interval.estimate - interval.low)
    return (interval.high - interval.low) / 2


def weighted_auc(labels: np.ndarray, bins: np.ndarray, weights: np.ndarray) -> float:
    """Mann-Whitney AUC with row weights; ``bins`` are the scores' ranks (ties share one)."""
    size = int(bins.max()) + 1
    pos = np.bincount(bins, weights=weights * labels, minlength=size)
    neg = np.bincount(bins, weights=weights * (1 - labels), minlength=size)
    below = np.cumsum(neg) - neg
    return float(np.sum(pos * (below + neg / 2)) / (pos.sum() * neg.sum()))


def bootstrap_se(scored: Scored, resamples: int = 1000, seed: int = 1) -> float:
    """Standard error of the AUC (or of ΔAUC with champion scores) over resampled customers,
    each drawn customer bringing all its rows (a weight per row: times its customer drawn)."""
    rng = np.random.default_rng(seed)
    codes = np.unique(scored.customer_ids, return_inverse=True)[1]
    count = int(codes.max()) + 1
    models = [scored.scores] + ([] if scored.champion_scores is None else [scored.champion_scores])
    bins = [np.unique(s, return_inverse=True)[1] for s in models]
    values = []
    for _ in range(resamples):
        weights = np.bincount(rng.integers(0, count, count), minlength=count)[codes]
        aucs = [weighted_auc(scored.labels, b, weights.astype(float)) for b in bins]
        values.append(aucs[0] - aucs[1] if len(aucs) == 2 else aucs[0])
    return float(np.std(values, ddof=1))


def classic_delong_se(labels: np.ndarray, scores: np.ndarray) -> float:
    """DeLong et al. (1988), rows independent, from the full comparison matrix."""
    positives, negatives = scores[labels == 1], scores[labels == 0]
    psi = (positives[:, None] > negatives[None, :]) + 0.5 * (positives[:, None] == negatives)
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return float(np.sqrt(v10.var(ddof=1) / v10.size + v01.var(ddof=1) / v01.size))


def obuchowski(labels, models, customers) -> tuple[list[float], np.ndarray]:
    """Obuchowski (1997) written out from the paper with loops: the AUCs and covariance
    matrix of several models' scores on clustered rows (a reference for small data)."""
    clusters = sorted(set(customers.tolist()))
    count = len(clusters)
    pos = [
        [j for j in range(labels.size) if customers[j] == c and labels[j] == 1] for c in clusters
    ]
    neg = [
        [j for j in range(labels.size) if customers[j] == c and labels[j] == 0] for c in clusters
    ]
    big_m, big_n = sum(map(len, pos)), sum(map(len, neg))
    every_pos, every_neg = sum(pos, []), sum(neg, [])

    def psi(x: float, y: float) -> float:
        return 1.0 if x > y else 0.5 if x == y else 0.0

    thetas, d10, d01 = [], [], []
    for s in models:
        v10 = [sum(sum(psi(s[p], s[q]) for q in every_neg) / big_n for p in ps) for ps in pos]
        v01 = [sum(sum(psi(s[p], s[q]) for p in every_pos) / big_m for q in qs) for qs in neg]
        theta = sum(v10) / big_m
        thetas.append(theta)
        d10.append([v10[i] - len(pos[i]) * theta for i in range(count)])
        d01.append([v01[i] - len(neg[i]) * theta for i in range(count)])
    k = count / (count - 1)
    cov = np.zeros((len(models), len(models)))
    for a in range(len(models)):
        for b in range(len(models)):
            s10 = k / big_m * sum(d10[a][i] * d10[b][i] for i in range(count))
            s01 = k / big_n * sum(d01[a][i] * d01[b][i] for i in range(count))
            s11_ab = k * sum(d10[a][i] * d01[b][i] for i in range(count))
            s11_ba = k * sum(d10[b][i] * d01[a][i] for i in range(count))
            cov[a, b] = s10 / big_m + s01 / big_n + (s11_ab + s11_ba) / (big_m * big_n)
    return thetas, cov


@pytest.fixture(scope="module")
def data() -> Clustered:
    return clustered(0)


@pytest.fixture(scope="module")
def useful(data: Clustered) -> Scored:
    return data.scored(0.5)


def decide(skill: Interval, share: float = 0.1, **kw) -> GateDecision:
    kw.setdefault("newest", None)
    kw.setdefault("holdout", None)
    kw.setdefault("champion", None)
    kw.setdefault("tolerance", TOLERANCE)
    return judge(skill, BASIS, share, **kw)


def exact_holdout(rows: int, positives: int) -> Scored:
    """A holdout of ``rows`` rows (two per customer) with exactly ``positives`` positives,
    scored well by both models."""
    rng = np.random.default_rng(rows + positives)
    labels = np.r_[np.ones(positives), np.zeros(rows - positives)].astype(np.int64)
    ids = np.array([f"H{i // 2:04d}" for i in range(rows)])
    challenger = labels + rng.normal(scale=0.6, size=rows)
    champion = labels + rng.normal(scale=0.6, size=rows)
    return Scored(labels, challenger, ids, champion)


# ---- intervals -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_interval_estimate_is_the_roc_auc_with_ties(seed: int) -> None:
    scored = clustered(seed).scored(0.8)
    assert np.unique(scored.scores).size < scored.rows / 10  # ties everywhere
    interval = auc_interval(scored)
    expected = roc_auc_score(scored.labels, scored.scores)
    assert interval.estimate == pytest.approx(expected, abs=1e-12)
    assert interval.low < expected < interval.high
    # customer ids are opaque keys: strings give the same interval
    named = Scored(scored.labels, scored.scores, np.array([f"C{c}" for c in scored.customer_ids]))
    assert auc_interval(named) == interval


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_intervals_match_obuchowski_written_out(seed: int) -> None:
    """Few customers, so that small slips (the I/(I-1) factor, a term's sign) show."""
    small = clustered(seed, customers=12, max_rows=5)
    scored = small.scored(0.6, champion_noise=1.0)
    models = [scored.scores, scored.champion_scores]
    thetas, cov = obuchowski(scored.labels, models, scored.customer_ids)
    interval = auc_interval(scored)
    assert interval.estimate == pytest.approx(thetas[0], abs=1e-12)
    assert half_width(interval) == pytest.approx(Z * np.sqrt(cov[0, 0]), rel=1e-9)
    delta = auc_difference(scored)[0]
    assert delta.estimate == pytest.approx(thetas[0] - thetas[1], abs=1e-12)
    paired = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    assert half_width(delta) == pytest.approx(Z * np.sqrt(paired), rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_auc_interval_matches_a_customer_bootstrap(seed: int) -> None:
    scored = clustered(seed).scored(0.5)
    bootstrap = bootstrap_se(scored)
    unit = np.ones(scored.rows)
    bins = np.unique(scored.scores, return_inverse=True)[1]
    assert weighted_auc(scored.labels, bins, unit) == pytest.approx(
        roc_auc_score(scored.labels, scored.scores), abs=1e-12
    )
    clustered_se = half_width(auc_interval(scored)) / Z
    assert clustered_se == pytest.approx(bootstrap, rel=0.15)
    # the same rows treated as independent: too narrow, beyond what the check above allows
    rows_apart = Scored(scored.labels, scored.scores, np.arange(scored.rows))
    assert half_width(auc_interval(rows_apart)) / Z < 0.85 * bootstrap


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_row_per_customer_is_close_to_classic_delong(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = (rng.random(600) < 0.2).astype(np.int64)
    scores = np.round(labels + rng.normal(size=600), 1)
    interval = auc_interval(Scored(labels, scores, rng.permutation(600)))
    assert interval.estimate == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert half_width(interval) / Z == pytest.approx(classic_delong_se(labels, scores), rel=0.02)


def test_the_same_model_twice_differs_by_exactly_nothing(useful: Scored) -> None:
    twice = Scored(useful.labels, useful.scores, useful.customer_ids, useful.scores.copy())
    delta, challenger_auc, champion_auc = auc_difference(twice)
    assert (delta.estimate, delta.low, delta.high) == (0.0, 0.0, 0.0)
    assert challenger_auc == champion_auc == pytest.approx(auc_interval(useful).estimate)


def test_a_clearly_better_model_has_an_interval_above_zero(data: Clustered) -> None:
    scored = data.scored(0.3, champion_noise=1.5)
    delta, challenger_auc, champion_auc = auc_difference(scored)
    assert challenger_auc == pytest.approx(roc_auc_score(scored.labels, scored.scores))
    assert champion_auc == pytest.approx(roc_auc_score(scored.labels, scored.champion_scores))
    assert delta.estimate == pytest.approx(challenger_auc - champion_auc)
    assert delta.low > 0
    # swapped roles: the same interval, mirrored
    assert scored.champion_scores is not None
    swapped = Scored(scored.labels, scored.champion_scores, scored.customer_ids, scored.scores)
    mirrored = auc_difference(swapped)[0]
    assert (mirrored.estimate, mirrored.low, mirrored.high) == pytest.approx(
        (-delta.estimate, -delta.high, -delta.low)
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_paired_difference_is_narrower_than_unpaired_and_matches_a_bootstrap(seed) -> None:
    data = clustered(seed)
    challenger = data.model(0.5)
    champion = np.round(challenger + np.random.default_rng(9).normal(0, 0.4, challenger.size), 1)
    scored = Scored(data.labels, challenger, data.customers, champion)
    assert np.corrcoef(challenger, champion)[0, 1] > 0.8
    delta = auc_difference(scored)[0]
    alone = [auc_interval(Scored(data.labels, s, data.customers)) for s in (challenger, champion)]
    unpaired = np.hypot(half_width(alone[0]), half_width(alone[1]))
    assert half_width(delta) < 0.5 * unpaired
    assert half_width(delta) / Z == pytest.approx(bootstrap_se(scored), rel=0.15)


# ---- cross-validated interval -------------------------------------------------------------


@pytest.mark.parametrize("folds", [2, 3, 5, 10, 20])
def test_cross_validated_auc_is_delong_widened_by_the_nadeau_bengio_factor(folds: int) -> None:
    rng = np.random.default_rng(folds)
    customers = np.repeat(np.arange(150), 2)
    labels = rng.random(customers.size) < 0.2
    scored = Scored(labels, labels * 0.6 + rng.random(customers.size), customers)
    plain, widened = auc_interval(scored), cross_validated_auc(scored, folds)
    assert widened.estimate == plain.estimate
    # the variance of a cross-validated estimate: 1/K + n_test/n_train over 1/K
    factor = np.sqrt(1 + folds / (folds - 1))
    assert half_width(widened) == pytest.approx(factor * half_width(plain), rel=1e-12)


def test_cross_validated_auc_without_both_classes_is_nan() -> None:
    one_class = Scored(np.zeros(10), np.arange(10.0), np.arange(10))
    interval = cross_validated_auc(one_class, 5)
    assert np.isnan(interval.low) and np.isnan(interval.high)


# ---- the decision --------------------------------------------------------------------------

BASIS = "5-fold cross-validation of 1800 rows"


@pytest.mark.parametrize(
    "skill",
    [
        Interval(0.56, 0.49, 0.63),
        Interval(0.6, 0.5, 0.7),  # reaches 0.5 exactly
        Interval(0.3, 0.2, 0.4),  # worse than chance
    ],
)
@pytest.mark.parametrize("champion", [None, "v7"])
def test_a_useless_challenger_is_kept_out(skill: Interval, champion) -> None:
    holdout = exact_holdout(400, 100) if champion else None
    decision = decide(skill, holdout=holdout, champion=champion)
    assert not decision.promoted and decision.champion_auc is None
    assert decision.explanation == f"kept out, no better than chance: AUC {skill} ({BASIS})"
    assert decision.evidence["auc_interval"] == skill.as_dict()


def test_random_scores_are_kept_out(data: Clustered) -> None:
    scored = Scored(data.labels, np.random.default_rng(3).random(data.labels.size), data.customers)
    skill = auc_interval(scored)
    assert skill.low < 0.5 < skill.high
    decision = decide(skill)
    assert not decision.promoted and "no better than chance" in decision.explanation


def test_just_above_chance_is_not_useless() -> None:
    assert decide(Interval(0.6, 0.5001, 0.7)).promoted
    big = clustered(5, customers=2000)  # a weak but real signal on many rows
    skill = auc_interval(big.scored(6.0))
    assert skill.low > 0.5 and skill.estimate < 0.6
    assert decide(skill).promoted


@pytest.mark.parametrize("low", [float("nan"), float("inf")])
def test_no_measurable_interval_is_kept_out(low: float) -> None:
    decision = decide(Interval(0.7, low, low))
    assert not decision.promoted
    assert decision.explanation == f"kept out: no AUC interval could be measured ({BASIS})"


def newest_rows(auc_above_half: bool | None) -> Scored:
    """300 held-out rows of 150 customers whose AUC is above 0.5, below it, or exactly 0.5
    (``None``: one score for all)."""
    rng = np.random.default_rng(21)
    labels = (rng.random(300) < 0.3).astype(np.int64)
    if auc_above_half is None:
        scores = np.full(300, 0.4)
    else:
        scores = labels * (0.3 if auc_above_half else -0.3) + rng.normal(size=300)
    return Scored(labels, scores, np.arange(300) // 2)


@pytest.mark.parametrize("auc_above_half", [False, None])
@pytest.mark.parametrize("champion", [None, "v7"])
def test_no_better_than_chance_on_the_newest_rows_is_kept_out(
    useful: Scored, auc_above_half, champion
) -> None:
    """A replication: a good interval from cross-validation is not enough on its own."""
    newest = newest_rows(auc_above_half)
    auc = roc_auc_score(newest.labels, newest.scores)
    assert auc <= 0.5
    skill = auc_interval(useful)
    holdout = exact_holdout(400, 100) if champion else None
    decision = decide(skill, newest=newest, holdout=holdout, champion=champion)
    assert not decision.promoted and decision.champion_auc is None
    assert decision.explanation == (
        f"kept out, no better than chance on the 300 newest held-out rows: AUC {auc:.4f} "
        f"(AUC {skill} by {BASIS})"
    )
    assert decision.evidence["auc_newest"] == pytest.approx(auc, abs=1e-12)


def test_better_than_chance_on_the_newest_rows_passes(useful: Scored) -> None:
    newest = newest_rows(True)
    auc = roc_auc_score(newest.labels, newest.scores)
    assert 0.5 < auc < 0.7  # weakly: no interval is asked of the replication
    decision = decide(auc_interval(useful), newest=newest)
    assert decision.promoted
    assert set(decision.evidence) == BASE_EVIDENCE | {"auc_newest"}
    assert decision.evidence["auc_newest"] == pytest.approx(auc, abs=1e-12)


def test_newest_rows_of_one_class_are_not_judged(useful: Scored) -> None:
    newest = newest_rows(False)
    one_class = Scored(np.zeros(newest.rows, dtype=np.int64), newest.scores, newest.customer_ids)
    decision = decide(auc_interval(useful), newest=one_class)
    assert decision.promoted and "auc_newest" not in decision.evidence


def test_the_interval_is_judged_before_the_newest_rows() -> None:
    skill = Interval(0.55, 0.45, 0.65)
    decision = decide(skill, newest=newest_rows(False))
    assert decision.explanation == f"kept out, no better than chance: AUC {skill} ({BASIS})"


@pytest.mark.parametrize(
    ("share", "promoted"), [(1.0, False), (SAME_SCORE_SHARE, False), (0.9499, True)]
)
def test_a_model_giving_most_rows_the_same_score_is_kept_out(useful, share, promoted) -> None:
    decision = decide(auc_interval(useful), share)
    assert decision.promoted is promoted
    assert decision.evidence["same_score_share"] == share
    if not promoted:
        assert f"gives {share:.0%} of its training rows the same score" in decision.explanation


def test_a_useful_first_model_is_promoted(useful: Scored) -> None:
    skill = auc_interval(useful)
    decision = decide(skill)
    assert decision.promoted and decision.champion_auc is None
    assert decision.explanation == f"first model: promoted, AUC {skill} ({BASIS})"
    assert set(decision.evidence) == BASE_EVIDENCE
    assert decision.evidence["auc_interval"] == skill.as_dict()
    assert decision.evidence["auc_interval_basis"] == BASIS
    assert decision.evidence["tolerance"] == TOLERANCE
    assert decision.evidence["confidence"] == 0.95
    assert decision.evidence["forced"] is False


def test_a_champion_that_cannot_be_compared_gives_way(useful: Scored) -> None:
    reason = "not comparable (feature days_late_90d is declared differently)"
    decision = decide(auc_interval(useful), champion="v3", not_comparable=reason)
    assert decision.promoted and decision.champion_auc is None
    assert decision.explanation.startswith(f"champion v3 {reason}: promoted")


def test_a_champion_that_cannot_be_loaded_is_replaced_only_with_force(useful: Scored) -> None:
    """Even a useful challenger stays out: a retrain must not hide a damaged champion."""
    problem = "its artifact /m/versions/v3/model.json is missing"
    reason = f"cannot be loaded ({problem})"
    skill = auc_interval(useful)
    kept = decide(skill, champion="v3", not_comparable=reason, champion_broken=problem)
    assert not kept.promoted and kept.champion_auc is None
    assert kept.explanation.startswith(f"kept out: the champion v3 cannot be loaded ({problem})")
    assert "only with --force" in kept.explanation
    assert f"(the gate alone: champion v3 {reason}: promoted" in kept.explanation
    assert kept.evidence["champion_broken"] == problem

    forced = decide(
        skill, champion="v3", not_comparable=reason, champion_broken=problem, force=True
    )
    assert forced.promoted
    assert forced.explanation.endswith("(--force replaces a champion that cannot be loaded)")
    assert "champion_broken" not in forced.evidence
    useless = decide(Interval(0.5, 0.4, 0.6), champion="v3", champion_broken=problem)
    assert not useless.promoted and "no better than chance" in useless.explanation


def test_the_gate_does_no_io() -> None:
    """Pure: scores in, a decision out. It imports no database, file, model or settings
    module (the run loads and scores the champion)."""
    import ast
    from pathlib import Path

    import predelinq.retraining.gate as gate

    tree = ast.parse(Path(gate.__file__).read_text())
    imported = {
        alias.name if isinstance(node, ast.Import) else node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported == {
        "__future__",
        "dataclasses",
        "typing",
        "numpy",
        "predelinq.modeling.metrics",
        "predelinq.modeling.split",
    }
    source = ast.unparse(tree)
    assert not [call for call in ("open(", "connect(", "execute(", "load_") if call in source]


@pytest.mark.parametrize(
    ("rows", "positives", "compared"),
    [
        (MIN_HOLDOUT_ROWS - 1, 60, False),
        (300, MIN_HOLDOUT_POSITIVES - 1, False),
        (300, 300 - MIN_HOLDOUT_POSITIVES + 1, False),  # too few negatives
        (MIN_HOLDOUT_ROWS, MIN_HOLDOUT_POSITIVES, True),
        (MIN_HOLDOUT_ROWS, MIN_HOLDOUT_ROWS - MIN_HOLDOUT_POSITIVES, True),
    ],
)
def test_too_small_a_holdout_keeps_the_champion(useful, rows, positives, compared) -> None:
    holdout = exact_holdout(rows, positives)
    decision = decide(auc_interval(useful), holdout=holdout, champion="v3", tolerance=1.0)
    assert decision.evidence["holdout_rows"] == rows
    assert decision.evidence["holdout_positives"] == positives
    if compared:  # the tolerance of 1 lets any challenger through
        assert decision.promoted and decision.explanation.startswith("gate passed")
        assert set(decision.evidence) == COMPARED_EVIDENCE
    else:
        assert not decision.promoted and decision.champion_auc is None
        assert decision.explanation.startswith("champion v3 kept, too little evidence")
        assert f"{rows} rows with {positives} positives" in decision.explanation


def test_a_challenger_worse_than_the_champion_is_kept_out(useful: Scored) -> None:
    holdout = clustered(11, customers=600).scored(2.0, champion_noise=0.3)
    delta, challenger_auc, champion_auc = auc_difference(holdout)
    assert delta.high < -TOLERANCE
    decision = decide(auc_interval(useful), holdout=holdout, champion="v3")
    assert not decision.promoted
    assert decision.champion_auc == pytest.approx(
        roc_auc_score(holdout.labels, holdout.champion_scores)
    )
    text = decision.explanation
    assert text.startswith(f"gate failed on the same {holdout.rows} holdout rows")
    assert f"ΔAUC {delta.estimate:+.4f} [{delta.low:+.4f}, {delta.high:+.4f}]" in text
    assert f"beyond the tolerance {TOLERANCE}" in text
    assert f"AUC {challenger_auc:.4f} vs champion v3 {champion_auc:.4f}" in text
    evidence = decision.evidence
    assert set(evidence) == COMPARED_EVIDENCE
    assert evidence["delta_auc"] == delta.as_dict()
    assert evidence["challenger_auc"] == challenger_auc
    assert evidence["champion_auc"] == champion_auc == decision.champion_auc
    assert evidence["holdout_rows"] == holdout.rows
    assert evidence["holdout_positives"] == int(holdout.labels.sum())


def test_an_equal_challenger_on_a_large_holdout_is_promoted(useful: Scored) -> None:
    holdout = clustered(12, customers=3000).scored(0.7, champion_noise=0.7)  # equally good
    delta = auc_difference(holdout)[0]
    assert delta.low < 0 < delta.high  # not better either
    decision = decide(auc_interval(useful), holdout=holdout, champion="v3")
    assert decision.promoted
    assert decision.explanation.startswith("gate passed")
    assert f"within the tolerance {TOLERANCE}" in decision.explanation


def test_the_tolerance_bounds_the_lower_end_of_the_interval(useful: Scored) -> None:
    holdout = clustered(13, customers=600).scored(0.9, champion_noise=0.6)
    low = auc_difference(holdout)[0].low
    assert low < 0
    skill = auc_interval(useful)
    at = decide(skill, holdout=holdout, champion="v3", tolerance=-low)
    below = decide(skill, holdout=holdout, champion="v3", tolerance=-low * 0.999)
    assert at.promoted and not below.promoted


def test_force_promotes_and_says_so(useful: Scored) -> None:
    for forced in (
        decide(Interval(0.52, 0.45, 0.59), force=True),
        decide(auc_interval(useful), newest=newest_rows(False), force=True),
    ):
        assert forced.promoted
        assert "no better than chance" in forced.explanation
        assert forced.explanation.endswith("; promoted by --force")
        assert forced.evidence["forced"] is True
    skill = auc_interval(useful)
    worse = clustered(11, customers=600).scored(2.0, champion_noise=0.3)
    over_champion = decide(skill, holdout=worse, champion="v3", force=True)
    assert over_champion.promoted and "gate failed" in over_champion.explanation
    assert "--force" in over_champion.explanation and over_champion.evidence["forced"] is True
    # a model that passes anyway is not "forced"
    passed = decide(skill, force=True)
    assert passed.promoted and "--force" not in passed.explanation
    assert passed.evidence["forced"] is False


def test_a_newest_part_too_small_to_judge_is_not_judged(useful: Scored) -> None:
    """46 rows with 4 positives: a good model's AUC there came out 0.32 by chance."""
    labels = np.r_[np.ones(4, dtype=np.int64), np.zeros(42, dtype=np.int64)]
    scores = np.r_[np.full(4, 0.1), np.linspace(0.2, 0.9, 42)]  # AUC 0: every positive lowest
    small = Scored(labels, scores, np.arange(46))
    decision = decide(auc_interval(useful), newest=small)
    assert decision.promoted and "auc_newest" not in decision.evidence
