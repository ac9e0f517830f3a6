"""Reference profiles and the population stability index (PSI), pure numpy.

A profile holds, for the score and for every feature, quantile bins of a sample (a model's
training rows) and each bin's share. ``psi`` puts new values into the same bins and
measures how far their shares moved:

    PSI = sum over bins of (actual - expected) * ln(actual / expected)

The usual reading in credit-risk monitoring: below 0.1 stable, 0.1 to 0.25 a moderate shift,
0.25 or more a major one.

The rules kept here:

* **Bins are right-closed.** Bin ``i`` holds values in ``(edges[i-1], edges[i]]``; the first
  is unbounded below, the last above. The edges are quantiles of the finite values
  (``inverted_cdf``: each edge is a value of the sample), so ``bins`` bins of about equal
  shares for a continuous feature.
* **Point masses and few distinct values.** Quantiles that coincide collapse to one edge
  (``np.unique``): a 0/1 flag has edges ``[0, 1]`` and bins ``<= 0``, ``(0, 1]`` and an
  empty ``> 1``; a constant ``c`` has the one edge ``c``: everything in ``<= c``, and a
  value above it later shows as drift.
* **Missing values are their own bin.** NaN (a feature with no rows in its window, a ratio
  over zero) is counted in ``missing`` besides the bins, and compared like a bin.
* **Empty bins are floored.** A share of 0 on either side is taken as ``SHARE_FLOOR``
  (1e-4), so a bin that empties or fills gives a large but finite PSI.
* **Infinite values** fall into the end bins; the edges come from finite values only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SHARE_FLOOR = 1e-4
MONTH_SAMPLE = 20_000  # rows per month for ``stability``: PSI's noise is negligible there


@dataclass(frozen=True)
class Bins:
    """Quantile bins of one variable and the share of a sample in each."""

    edges: tuple[float, ...]  # inner cut points, increasing; len(edges) + 1 bins
    shares: tuple[float, ...]  # of all rows (missing included), per bin
    missing: float  # share of NaN values
    rows: int  # the sample's size

    def expected(self) -> np.ndarray:
        """The shares per bin and, last, the missing share."""
        return np.array([*self.shares, self.missing], dtype=np.float64)

    def counts(self, values: np.ndarray) -> np.ndarray:
        """How many ``values`` fall into each bin and, last, how many are NaN."""
        values = np.asarray(values, dtype=np.float64).ravel()
        missing = np.isnan(values)
        edges = np.asarray(self.edges, dtype=np.float64)
        index = np.searchsorted(edges, values[~missing], side="left")  # right-closed bins
        counts = np.bincount(index, minlength=edges.size + 1)
        return np.append(counts, np.count_nonzero(missing))

    def as_json(self) -> dict[str, Any]:
        return {
            "edges": list(self.edges),
            "shares": list(self.shares),
            "missing": self.missing,
            "rows": self.rows,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Bins:
        edges = tuple(float(e) for e in data["edges"])
        shares = tuple(float(s) for s in data["shares"])
        if len(shares) != len(edges) + 1 or list(edges) != sorted(set(edges)):
            raise ValueError("bins need increasing edges and one share more than edges")
        return cls(edges, shares, float(data["missing"]), int(data["rows"]))


def bins_of(values: np.ndarray, bins: int) -> Bins:
    """``bins`` quantile bins of ``values`` (fewer where quantiles coincide)."""
    if bins < 2:
        raise ValueError("a profile needs at least 2 bins")
    values = np.asarray(values, dtype=np.float64).ravel()
    finite = values[np.isfinite(values)]
    if finite.size:
        cuts = np.arange(1, bins) / bins
        edges = np.unique(np.quantile(finite, cuts, method="inverted_cdf"))
    else:
        edges = np.empty(0)
    empty = Bins(tuple(float(e) for e in edges), (0.0,) * (edges.size + 1), 0.0, 0)
    if not values.size:
        return empty
    shares = empty.counts(values) / values.size
    return Bins(empty.edges, tuple(shares[:-1].tolist()), float(shares[-1]), int(values.size))


def psi(reference: Bins, values: np.ndarray) -> float:
    """The PSI of ``values`` against ``reference``'s bins (NaN when either side is empty)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if not values.size or not reference.rows:
        return float("nan")
    actual = np.maximum(reference.counts(values) / values.size, SHARE_FLOOR)
    expected = np.maximum(reference.expected(), SHARE_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


@dataclass(frozen=True)
class Profile:
    """A sample's bins: of the score and of every feature."""

    rows: int
    score: Bins
    features: dict[str, Bins]
    # per feature, its largest PSI between adjacent months of the sample (see ``stability``)
    stability: dict[str, float] = field(default_factory=dict)
    # where the data began when the profile was built: source -> ISO date of its first row
    starts: dict[str, str | None] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "score": self.score.as_json(),
            "features": {name: bins.as_json() for name, bins in self.features.items()},
            "stability": dict(self.stability),
            "starts": dict(self.starts),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Profile:
        return cls(
            rows=int(data["rows"]),
            score=Bins.from_json(data["score"]),
            features={name: Bins.from_json(b) for name, b in data["features"].items()},
            stability={name: float(v) for name, v in data.get("stability", {}).items()},
            starts=dict(data.get("starts", {})),
        )


def build_profile(
    X: np.ndarray,
    names: Sequence[str],
    scores: np.ndarray,
    bins: int,
    *,
    rows: Mapping[str, np.ndarray] | None = None,
) -> Profile:
    """The profile of the rows of ``X`` (columns ``names``) and their ``scores``.

    ``rows`` optionally restricts a feature's bins to some rows (a boolean mask per name),
    e.g. those whose window was full; the others use every row."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(names) or X.shape[0] != np.size(scores):
        raise ValueError("X needs one column per name and one row per score")
    rows = rows or {}
    features = {}
    for k, name in enumerate(names):
        column = X[:, k]
        if name in rows:
            column = column[rows[name]]
        features[name] = bins_of(column, bins)
    return Profile(int(X.shape[0]), bins_of(scores, bins), features)


def stability(
    X: np.ndarray,
    names: Sequence[str],
    months: np.ndarray,
    bins: int,
    *,
    rows: Mapping[str, np.ndarray] | None = None,
    min_rows: int = 1,
) -> dict[str, float]:
    """Each feature's largest PSI between adjacent months of ``months`` (one per row of
    ``X``), the earlier month's bins as reference: how much it moves with no change but the
    date. Months with fewer than ``min_rows`` rows (after ``rows``' mask) are left out; a
    feature with no two such months is left out of the result."""
    X = np.asarray(X, dtype=np.float64)
    months = np.asarray(months)
    rows = rows or {}
    found: dict[str, float] = {}
    for k, name in enumerate(names):
        keep = rows.get(name, np.ones(months.shape, dtype=bool))
        column, month = X[keep, k], months[keep]
        order = np.argsort(month, kind="stable")
        column, month = column[order], month[order]
        labels, starts, sizes = np.unique(month, return_index=True, return_counts=True)
        groups = [
            column[start : start + size][:: max(1, size // MONTH_SAMPLE)]
            for start, size in zip(starts, sizes, strict=True)
            if size >= min_rows
        ]
        values = [psi(bins_of(a, bins), b) for a, b in zip(groups, groups[1:], strict=False)]
        if values and labels.size:
            found[name] = float(np.nanmax(values))
    return found


@dataclass(frozen=True)
class Psi:
    """PSI of the score and of each feature against a profile."""

    score: float
    features: dict[str, float]  # every feature both in the profile and in the data
    absent: tuple[str, ...] = ()  # profiled features the data does not have


def compare(
    reference: Profile,
    X: np.ndarray,
    names: Sequence[str],
    scores: np.ndarray,
    *,
    only: Sequence[str] | None = None,
) -> Psi:
    """The PSI of the score and of each feature of ``X`` (columns ``names``) against
    ``reference``; ``only`` limits the features compared. Features the profile has and
    ``names`` lacks are listed in ``absent``; features it never profiled are skipped."""
    X = np.asarray(X, dtype=np.float64)
    position = {name: k for k, name in enumerate(names)}
    wanted = list(reference.features) if only is None else [n for n in only]
    features = {
        name: psi(reference.features[name], X[:, position[name]])
        for name in wanted
        if name in position and name in reference.features
    }
    absent = tuple(name for name in wanted if name in reference.features and name not in position)
    return Psi(psi(reference.score, scores), features, absent)
