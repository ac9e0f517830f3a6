"""Metrics of a score against 0/1 labels: AUC, PR AUC, KS, Brier, the F1 threshold.

They are computed with numpy rather than imported from scikit-learn: with scikit-learn
installed, ``import xgboost`` imports it too, which cost 0.8 s of every CLI start (measured).
tests/modeling/test_training.py checks them against scikit-learn.
"""

from __future__ import annotations

import numpy as np


def same_score_share(scores: np.ndarray) -> float:
    """The share of rows given the most common score (to 6 decimals): 1.0 for a constant."""
    scores = np.asarray(scores, dtype=float)
    if not scores.size:
        return float("nan")
    _, counts = np.unique(np.round(scores, 6), return_counts=True)
    return float(counts.max() / scores.size)


def choose_threshold(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """The score maximising F1 when flagging ``score >= threshold``; ties -> the highest."""
    y_true, y_score = np.asarray(y_true), np.asarray(y_score, dtype=float)
    if y_score.size == 0 or y_true.shape != y_score.shape:
        raise ValueError("y_true and y_score must be non-empty and of the same shape")
    order = np.argsort(-y_score, kind="stable")
    scores, hits = y_score[order], y_true[order].astype(np.int64)
    last = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]  # last row of each score
    tp = np.cumsum(hits)[last]
    fp = last + 1 - tp
    fn = hits.sum() - tp
    f1 = 2 * tp / (2 * tp + fp + fn)  # the denominator is > 0: each candidate flags a row
    return float(scores[last][int(np.argmax(f1))])  # argmax: first = highest score


def evaluate(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> dict[str, float]:
    """Metrics of ``y_score`` against ``y_true``, flagging ``score >= threshold``."""
    y_true = np.asarray(y_true).astype(np.int64)
    y_score = np.asarray(y_score, dtype=float)
    flagged = (y_score >= threshold).astype(np.int64)
    positives = int(y_true.sum())
    both = 0 < positives < y_true.size
    nan = float("nan")
    true_positives = int((flagged & y_true).sum())
    flagged_count = int(flagged.sum())
    precision = true_positives / flagged_count if flagged_count else 0.0
    recall = true_positives / positives if positives else 0.0
    f1 = 2 * true_positives / (flagged_count + positives) if flagged_count + positives else 0.0
    return {
        "auc": _auc(y_true, y_score) if both else nan,
        "pr_auc": _average_precision(y_true, y_score) if both else nan,
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "brier": float(np.mean((y_score - y_true) ** 2)) if y_true.size else nan,
        "ks": _ks(y_true, y_score) if both else nan,
        "rows": float(y_true.size),
        "positives": float(positives),
        "positive_rate": positives / y_true.size if y_true.size else nan,
    }


def _auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic, ties counted half."""
    order = np.argsort(y_score, kind="mergesort")
    _, first, counts = np.unique(y_score[order], return_index=True, return_counts=True)
    ranks = np.empty(y_score.size)
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    positives = int(y_true.sum())
    negatives = y_true.size - positives
    rank_sum = ranks[y_true == 1].sum() - positives * (positives + 1) / 2
    return float(rank_sum / (positives * negatives))


def _ranking_curve(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives flagged at each distinct score, highest score first."""
    order = np.argsort(-y_score, kind="mergesort")
    ends = np.r_[np.flatnonzero(np.diff(y_score[order])), y_score.size - 1]
    true_positives = np.cumsum(y_true[order])[ends]
    return true_positives, ends + 1 - true_positives


def _average_precision(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Precision at each distinct threshold, weighted by the recall it adds."""
    true_positives, false_positives = _ranking_curve(y_true, y_score)
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / true_positives[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _ks(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Kolmogorov-Smirnov: the largest gap between the ROC curve's TPR and FPR."""
    true_positives, false_positives = _ranking_curve(y_true, y_score)
    tpr = true_positives / true_positives[-1]
    fpr = false_positives / false_positives[-1]
    return float(np.max(np.abs(tpr - fpr)))
