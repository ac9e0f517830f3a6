"""Tests for the regime change: ``generate(..., shift_from=DATE)`` and ``synth --shift-from``.

Without a shift the data is what it always was; with one, nothing before the shift month
changes, more customers default after it, stress shows through other channels, and a model
trained before the shift decays on the shifted data (not on the same data unshifted) while
a retrained one recovers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from predelinq.cli.common import ExitCode
from predelinq.features import feature_set, features_for_observations
from predelinq.modeling.fit import default_params
from predelinq.synth import SyntheticData, generate
from support.cli import run_cli

START, MONTHS, SHIFT = dt.date(2024, 1, 1), 18, dt.date(2024, 10, 1)
HORIZON = dt.timedelta(days=60)
RETRAIN_AT = dt.date(2025, 2, 1)  # labels matured by then include three months after the shift
# sha256 of generate(n_customers=300, seed=0) written as CSV (``_sha256``), taken before the
# regime change existed: without a shift, not one byte may change
UNSHIFTED_SHA256 = "0f8b72d06685131ec2ae7b5c82ab3cb918beea153be7e6082fd12c665ee9f39f"
FEATURES = feature_set()
observed = pl.col("observation_date")


def _sha256(data: SyntheticData) -> str:
    digest = hashlib.sha256()
    for name, frame in data.tables().items():
        digest.update(name.encode())
        digest.update(frame.write_csv().encode())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def pair() -> tuple[SyntheticData, SyntheticData]:
    """The same lender without and with a shift: 2,500 customers, 18 months, shift after 9."""
    unshifted = generate(n_customers=2500, seed=1, start=START, months=MONTHS)
    shifted = generate(n_customers=2500, seed=1, start=START, months=MONTHS, shift_from=SHIFT)
    return unshifted, shifted


@pytest.fixture(scope="module")
def features(pair: tuple[SyntheticData, SyntheticData]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Point-in-time features and the label of every labelled observation, for both."""
    return tuple(  # type: ignore[return-value]
        features_for_observations(data.labels, data.tables(), FEATURES).with_columns(
            label=data.labels["label"]
        )
        for data in pair
    )


def test_without_a_shift_the_data_is_what_it_was() -> None:
    assert _sha256(generate(n_customers=300, seed=0)) == UNSHIFTED_SHA256
    assert _sha256(generate(n_customers=300, seed=0, shift_from=None)) == UNSHIFTED_SHA256


def test_a_shift_is_deterministic_for_a_seed() -> None:
    shift = dt.date(2024, 6, 15)
    a, b = (generate(n_customers=300, seed=5, shift_from=shift) for _ in range(2))
    for name, frame in a.tables().items():
        assert frame.equals(b.tables()[name]), name
    unshifted = generate(n_customers=300, seed=5)
    later = generate(n_customers=300, seed=5, shift_from=dt.date(2024, 8, 1))
    assert not a.transactions.equals(unshifted.transactions)
    assert not a.transactions.equals(later.transactions)


@pytest.mark.parametrize(
    ("shift", "month"),
    [
        (dt.date(2024, 6, 15), dt.date(2024, 6, 1)),
        (dt.date(2024, 1, 1), dt.date(2024, 1, 1)),  # the first day: all of it is shifted
        (dt.date(2024, 12, 31), dt.date(2024, 12, 1)),
    ],
)
def test_nothing_before_the_shift_month_changes(shift: dt.date, month: dt.date) -> None:
    unshifted = generate(n_customers=600, seed=5)
    shifted = generate(n_customers=600, seed=5, shift_from=shift)
    assert shifted.customers.equals(unshifted.customers)
    since = dt.datetime.combine(month, dt.time())
    for name, column, bound in (
        ("transactions", "txn_time", since),
        ("payments", "due_date", month),
    ):
        before, after = (
            (getattr(data, name).filter(pl.col(column) < bound)) for data in (unshifted, shifted)
        )
        assert after.equals(before), name
        assert before.height == 0 if month == START else before.height > 1000
        rest = [
            getattr(data, name).filter(pl.col(column) >= bound) for data in (unshifted, shifted)
        ]
        assert rest[0].height > 0 and not rest[0].equals(rest[1]), name
    # the balance runs on across the shift: each one is the previous plus the signed amount
    t = shifted.transactions.sort(
        "customer_id", pl.col("txn_id").str.extract(r"-T(\d+)$").cast(int)
    )
    signed = pl.when(pl.col("txn_type") == "credit").then("amount").otherwise(-pl.col("amount"))
    step = pl.col("balance_after") - pl.col("balance_after").shift().over("customer_id") - signed
    assert t.select(step.abs().max()).item() < 1e-6


def test_more_customers_default_after_the_shift(pair: tuple[SyntheticData, SyntheticData]) -> None:
    rates = [
        (
            data.labels.filter(observed + HORIZON <= SHIFT)["label"].mean(),
            data.labels.filter(observed >= SHIFT)["label"].mean(),
        )
        for data in pair
    ]
    (unshifted_before, unshifted_after), (shifted_before, shifted_after) = rates
    assert shifted_before == unshifted_before  # labels matured before the shift: the same
    assert isinstance(unshifted_after, float) and isinstance(shifted_after, float)
    assert 0.10 < unshifted_after < 0.19
    assert unshifted_after + 0.05 < shifted_after < 0.30


def test_stress_shows_through_other_channels_after_the_shift(
    pair: tuple[SyntheticData, SyntheticData], features: tuple[pl.DataFrame, pl.DataFrame]
) -> None:
    # fees and returned direct debits: only after a shift, and from its month on
    since = dt.datetime.combine(SHIFT, dt.time())
    distress = pl.col("category").is_in(["fees", "returned_payment"])
    unshifted, shifted = (data.transactions.filter(distress) for data in pair)
    assert unshifted.height == 0 and shifted.height > 1000
    assert (shifted["txn_time"] >= since).all()

    def mean(frame: pl.DataFrame, name: str, label: int | None = None) -> float:
        rows = frame if label is None else frame.filter(pl.col("label") == label)
        value = rows[name].fill_nan(None).mean()  # NaN: no transactions (card-only)
        assert isinstance(value, float)
        return value

    # two months into the shift, point-in-time features of the labelled observations
    was, now = (f.filter(observed >= SHIFT + HORIZON) for f in features)
    cash = "cash_withdrawal_count_30"
    assert mean(now, cash) > 1.6 * mean(was, cash)  # everybody draws more cash ...
    assert mean(was, cash, 1) > 1.2 * mean(was, cash, 0)  # ... once a stress signal ...
    assert mean(now, cash, 1) < mean(now, cash, 0)  # ... it no longer is
    fees = "od_fee_count_90"
    assert mean(now, fees, 1) > 2 * mean(now, fees, 0) > 0  # the new signal
    # a statement unpaid at t: once mostly the stressed, now common among those who pay
    unpaid = pl.col("pay_unpaid_past_due_count") > 0
    shares = [f.filter(pl.col("label") == 0).select(unpaid.mean()).item() for f in (was, now)]
    assert shares[1] > 2 * shares[0]


def _fit(rows: pl.DataFrame) -> xgb.Booster:
    params = {**default_params(), "max_depth": 4, "nthread": 1, "seed": 0}
    matrix = xgb.DMatrix(rows.select(FEATURES.names).to_numpy(), rows["label"].to_numpy())
    return xgb.train(params, matrix, num_boost_round=120)


def _scores(model: xgb.Booster, rows: pl.DataFrame) -> np.ndarray:
    return np.asarray(model.predict(xgb.DMatrix(rows.select(FEATURES.names).to_numpy())))


def _auc(model: xgb.Booster, rows: pl.DataFrame) -> float:
    return float(roc_auc_score(rows["label"].to_numpy(), _scores(model, rows)))


def _psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """PSI over the reference's quantile bins, shares floored at 1e-4."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    expected, actual = (
        np.maximum(np.bincount(np.searchsorted(edges, x, side="right"), minlength=edges.size + 1)
                   / x.size, 1e-4)
        for x in (reference, current)
    )  # fmt: skip
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def test_psi_helper() -> None:
    reference = np.random.default_rng(0).normal(size=5000)
    assert _psi(reference, reference) == 0
    assert _psi(reference, reference + 1) > 0.25


def test_a_model_trained_before_the_shift_decays_and_a_retrained_one_recovers(
    features: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    unshifted, shifted = features
    in_test = pl.col("customer_id").hash(seed=7) % 10 < 4
    train = shifted.filter(~in_test & (observed + HORIZON <= SHIFT))
    assert train.equals(unshifted.filter(~in_test & (observed + HORIZON <= SHIFT)))
    old = _fit(train)
    after = [f.filter(in_test & (observed >= SHIFT)) for f in features]
    auc = [_auc(old, rows) for rows in after]
    assert auc[0] > 0.84  # on the same lender unshifted it holds ...
    assert auc[1] < auc[0] - 0.04  # ... and on the shifted one it decays
    # its scores of the held-out customers before the shift, against those after it
    reference = _scores(old, shifted.filter(in_test & (observed + HORIZON <= SHIFT)))
    assert _psi(reference, _scores(old, after[0])) < 0.1
    assert _psi(reference, _scores(old, after[1])) > 0.25
    retrained = _fit(shifted.filter(~in_test & (observed + HORIZON <= RETRAIN_AT)))
    later = shifted.filter(in_test & (observed >= RETRAIN_AT))
    assert _auc(retrained, later) > _auc(old, later) + 0.03


def test_the_cli_writes_shifted_data(tmp_path: Path) -> None:
    args = ["synth", "--customers", "60", "--seed", "2", "--out", str(tmp_path)]
    result = run_cli(*args, "--shift-from", "2024-06-15", "--format", "parquet")
    assert result.returncode == 0, result.stderr
    written = pl.read_parquet(tmp_path / "transactions.parquet")
    expected = generate(n_customers=60, seed=2, shift_from=dt.date(2024, 6, 15)).transactions
    assert written.equals(expected)


@pytest.mark.parametrize(
    ("shift", "period"),
    [
        (["--shift-from", "2023-12-31"], []),
        (["--shift-from", "2025-01-01"], []),  # the day after the period
        (["--shift-from", "2024-05-01"], ["--months", "4"]),
    ],
)
def test_the_cli_rejects_a_shift_outside_the_period(
    tmp_path: Path, shift: list[str], period: list[str]
) -> None:
    out = tmp_path / "out"
    result = run_cli("synth", "--customers", "10", "--out", str(out), *shift, *period)
    assert result.returncode == ExitCode.USAGE
    assert "--shift-from" in result.stderr and "outside the period" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()
