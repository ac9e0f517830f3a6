"""Tests for the synthetic data generator: contract, label rule, and a learnable signal."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from predelinq.features.declarations import CATEGORIES as CANONICAL_CATEGORIES
from predelinq.ingest.contract import TABLE_SPECS
from predelinq.synth import CATEGORIES, SyntheticData, derive_labels, generate, write

START, MONTHS = dt.date(2024, 1, 1), 12
END = dt.date(2025, 1, 1)
SCHEMAS = {
    "customers": pl.Schema(
        {
            "customer_id": pl.String(),
            "created_at": pl.Datetime("us"),
            "monthly_income": pl.Float64(),
            "salary_day": pl.Int32(),
            "credit_limit": pl.Float64(),
        }
    ),
    "transactions": pl.Schema(
        {
            "txn_id": pl.String(),
            "customer_id": pl.String(),
            "txn_time": pl.Datetime("us"),
            "amount": pl.Float64(),
            "txn_type": pl.String(),
            "category": pl.String(),
            "merchant_id": pl.String(),
            "channel": pl.String(),
            "balance_after": pl.Float64(),
        }
    ),
    "payments": pl.Schema(
        {
            "customer_id": pl.String(),
            "due_date": pl.Date(),
            "amount_due": pl.Float64(),
            "amount_paid": pl.Float64(),
            "paid_date": pl.Date(),
        }
    ),
    "labels": pl.Schema(
        {
            "customer_id": pl.String(),
            "observation_date": pl.Date(),
            "label": pl.Int32(),
            "days_to_default": pl.Int32(),
        }
    ),
}
TABLES = tuple(SCHEMAS)


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return generate(n_customers=1500, seed=3)


def test_same_seed_is_identical_and_seeds_have_disjoint_ids() -> None:
    a, b = generate(n_customers=300, seed=5), generate(n_customers=300, seed=5)
    for name in TABLES:
        assert getattr(a, name).equals(getattr(b, name)), name
    c = generate(n_customers=300, seed=55)
    assert not set(a.customers["customer_id"]) & set(c.customers["customer_id"])
    assert not set(a.transactions["txn_id"]) & set(c.transactions["txn_id"])


def test_schema(data: SyntheticData) -> None:
    for name, schema in SCHEMAS.items():
        assert getattr(data, name).schema == schema, name


def test_the_tables_are_the_contract_files_with_every_column_in_order(
    data: SyntheticData,
) -> None:
    assert list(data.tables()) == list(TABLE_SPECS)
    for name, frame in data.tables().items():
        assert frame.columns == TABLE_SPECS[name].column_names, name


def test_values_and_unique_keys(data: SyntheticData) -> None:
    c, t, p, lab = data.customers, data.transactions, data.payments, data.labels
    assert c["customer_id"].is_unique().all() and t["txn_id"].is_unique().all()
    assert not p.select("customer_id", "due_date").is_duplicated().any()
    assert not lab.select("customer_id", "observation_date").is_duplicated().any()
    assert (t["amount"] > 0).all() and (t["amount"] == t["amount"].round(2)).all()
    assert set(t["txn_type"]) == {"credit", "debit"}
    assert set(t["category"]) == {
        "salary", "rent", "utilities", "groceries", "dining",
        "entertainment", "shopping", "transfer", "cash",
    }  # fmt: skip
    assert set(t["channel"]) <= {"card", "atm", "transfer", "online", "branch"}
    no_merchant = t["category"].is_in(["salary", "transfer"])
    assert (t["merchant_id"].is_null() == no_merchant).all()
    assert (t.filter(pl.col("category") == "salary")["txn_type"] == "credit").all()
    assert c["salary_day"].drop_nulls().is_between(1, 28).all()
    assert 0 < c["monthly_income"].null_count() < 0.1 * c.height
    assert (p["amount_due"] >= 0).all() and (p["amount_paid"].drop_nulls() > 0).all()
    assert (p["amount_paid"].is_null() == p["paid_date"].is_null()).all()
    assert set(lab["label"]) == {0, 1}
    assert (lab["days_to_default"].is_null() == (lab["label"] == 0)).all()
    assert lab["days_to_default"].drop_nulls().is_between(0, 59).all()


def test_the_categories_are_the_canonical_ones_the_features_read() -> None:
    # transfer: a category no built-in feature reads, kept as it is
    assert set(CATEGORIES) - {"transfer"} <= set(CANONICAL_CATEGORIES)


def test_balance_after_is_an_opening_balance_plus_the_running_flow(data: SyntheticData) -> None:
    t = data.transactions
    assert t["balance_after"].null_count() == 0
    assert (t["balance_after"] == t["balance_after"].round(2)).all()
    seq = pl.col("txn_id").str.extract(r"-T(\d+)$").cast(pl.Int64)
    signed = pl.when(pl.col("txn_type") == "credit").then("amount").otherwise(-pl.col("amount"))
    ordered = t.sort("customer_id", seq)
    # txn_id numbers follow (txn_time, then txn order): the balance runs in that order
    assert ordered.select((pl.col("txn_time").diff().over("customer_id") >= 0).all()).item()
    steps = ordered.select(
        (pl.col("balance_after") - pl.col("balance_after").shift().over("customer_id") - signed)
        .abs()
        .max()
    )
    assert steps.item() < 1e-6
    first = ordered.group_by("customer_id", maintain_order=True).first()
    opening = first["balance_after"] - first.select(signed).to_series()
    income = first.join(data.customers, on="customer_id")["monthly_income"]
    assert (opening >= 0).all()
    months_of_income = (opening / income).drop_nulls()
    median, nearly_nothing = months_of_income.median(), (months_of_income < 0.05).mean()
    assert isinstance(median, float) and isinstance(nearly_nothing, float)
    assert 0.4 <= median <= 1.5  # around a month of income
    assert nearly_nothing >= 0.1  # some start with next to nothing
    # stress drives balances below zero, more often for customers who go on to default
    went_negative = t.group_by("customer_id").agg(negative=(pl.col("balance_after") < 0).any())
    ever = data.labels.group_by("customer_id").agg(pl.col("label").max())
    rate = dict(
        ever.join(went_negative, on="customer_id")
        .group_by("label")
        .agg(pl.col("negative").mean())
        .iter_rows()
    )
    assert 0.05 < rate[0] < rate[1]


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [(START, MONTHS, END), (dt.date(2023, 5, 31), 5, dt.date(2023, 10, 31))],
)
def test_events_inside_customer_lifetime_and_period(
    start: dt.date, months: int, end: dt.date
) -> None:
    data = generate(n_customers=400, seed=1, start=start, months=months)
    created = data.customers.select("customer_id", "created_at")
    lo, hi = (dt.datetime.combine(day, dt.time()) for day in (start, end))
    assert created["created_at"].is_between(lo, hi, closed="left").all()
    assert data.labels.height > 0 and data.payments.height > 0
    checks = {
        "transactions": ["txn_time"],
        "payments": ["due_date", "paid_date"],
        "labels": ["observation_date"],
    }
    for name, columns in checks.items():
        frame = getattr(data, name).join(created, on="customer_id", how="left")
        assert frame["created_at"].null_count() == 0, f"{name}: unknown customer"
        for col in columns:
            at = pl.col(col)
            first = pl.col("created_at") if col == "txn_time" else pl.col("created_at").dt.date()
            ok = frame.select(after=(at >= first).all(), before=(at < end).all())
            assert ok.row(0) == (True, True), (name, col)
    window_end = data.labels.select(pl.col("observation_date").max() + pl.duration(days=60))
    assert window_end.item() <= end


@pytest.mark.parametrize(
    ("start", "months"), [(dt.date(2024, 2, 1), 1), (dt.date(2024, 1, 31), 1), (START, 2)]
)
def test_a_period_too_short_for_labels_still_gives_the_four_tables(
    start: dt.date, months: int
) -> None:
    """One month once failed inside numpy (no room for late arrivals); now every customer
    arrives by the third day, and no observation has 90 days of history."""
    data = generate(n_customers=40, seed=4, start=start, months=months)
    for name, schema in SCHEMAS.items():
        assert getattr(data, name).schema == schema, name
    assert data.customers.height == 40 and data.transactions.height > 0
    assert data.labels.height == 0
    latest = dt.datetime.combine(start, dt.time()) + dt.timedelta(days=2)
    if months == 1:
        assert (data.customers["created_at"] <= latest).all()


def _expected_labels(data: SyntheticData, customers: list[str]) -> tuple[dict, int]:
    """The label rule in plain Python, independent of derive_labels; also counts exclusions."""
    statements = defaultdict(list)
    for row in data.payments.filter(pl.col("customer_id").is_in(customers)).iter_rows(named=True):
        statements[row["customer_id"]].append((row["due_date"], row["paid_date"]))
    created = dict(data.customers.select("customer_id", "created_at").iter_rows())
    expected, excluded = {}, 0
    for cid in customers:
        for month in range(1, MONTHS + 1):
            t = dt.date(2024 + (month // 12), month % 12 + 1, 1)
            if t < created[cid].date() + dt.timedelta(days=90):
                continue
            if t + dt.timedelta(days=60) > END:
                continue
            defaults = []  # (d30, paid_date) of statements not paid by due + 30 days
            for due, paid in statements[cid]:
                d30 = due + dt.timedelta(days=30)
                if paid is None or paid > d30:
                    defaults.append((d30, paid))
            if any(d30 < t and (paid is None or paid >= t) for d30, paid in defaults):
                excluded += 1  # already 30+ days past due: in collections, not observed
                continue
            ahead = [d30 for d30, _ in defaults if t <= d30 < t + dt.timedelta(days=60)]
            expected[(cid, t)] = (1, (min(ahead) - t).days) if ahead else (0, None)
    return expected, excluded


def test_labels_follow_the_rule_on_a_sample(data: SyntheticData) -> None:
    ids = data.customers["customer_id"]
    positives = data.labels.filter(pl.col("label") == 1)["customer_id"].unique().sort()
    sample = sorted(set(ids.sample(150, seed=0)) | set(positives.head(50)))
    expected, excluded = _expected_labels(data, sample)
    got = {
        (r[0], r[1]): (r[2], r[3])
        for r in data.labels.filter(pl.col("customer_id").is_in(sample)).iter_rows()
    }
    assert got == expected
    assert sum(v[0] for v in expected.values()) >= 30 and excluded >= 10


def test_derive_labels_boundaries_and_exclusion() -> None:
    d = dt.date
    statements = [  # customer, due_date, amount_paid, paid_date (amount_due is 100)
        ("a", d(2024, 2, 1), 100.0, d(2024, 2, 1)),
        ("a", d(2024, 3, 1), None, None),  # defaults on 2024-03-31, never paid
        ("b", d(2024, 4, 2), 50.0, d(2024, 5, 2)),  # partial, paid on due + 30: not a default
        ("c", d(2024, 3, 2), None, None),  # defaults on 2024-04-01
        ("e", d(2024, 1, 1), 100.0, d(2024, 3, 5)),  # defaulted 2024-01-31, cured 2024-03-05
        ("f", d(2024, 4, 1), 100.0, d(2024, 5, 2)),  # paid one day too late: default 05-01
    ]
    payments = pl.DataFrame(
        [(c, due, 100.0, amount, when) for c, due, amount, when in statements],
        schema=list(SCHEMAS["payments"]),
        orient="row",
    )
    expected = {  # (customer, observation date): (label, days_to_default) or None = excluded
        ("a", d(2024, 3, 1)): (1, 30),
        ("a", d(2024, 3, 31)): (1, 0),
        ("a", d(2024, 5, 1)): None,
        ("b", d(2024, 4, 1)): (0, None),
        ("c", d(2024, 2, 1)): (0, None),  # 2024-04-01 is outside [t, t + 60 days)
        ("c", d(2024, 2, 2)): (1, 59),
        ("d", d(2024, 5, 1)): (0, None),  # no statements at all
        ("e", d(2024, 3, 5)): None,  # paid on the observation date: still 30+ dpd at t
        ("e", d(2024, 3, 6)): (0, None),
        ("f", d(2024, 4, 1)): (1, 30),
    }
    obs = pl.DataFrame(list(expected), schema=["customer_id", "observation_date"], orient="row")
    got = derive_labels(payments, obs.reverse())
    assert got.schema == SCHEMAS["labels"]
    assert got.select("customer_id", "observation_date").equals(
        obs.filter(pl.Series([v is not None for v in expected.values()]))
    )
    assert {(r[0], r[1]): (r[2], r[3]) for r in got.iter_rows()} == {
        k: v for k, v in expected.items() if v is not None
    }


def test_population_shape(data: SyntheticData) -> None:
    c, lab, p = data.customers, data.labels, data.payments
    assert 0.10 <= lab["label"].to_numpy().mean() <= 0.20
    assert 4.5 <= lab.height / c.height <= 8
    with_txns = set(data.transactions["customer_id"])
    card_only = set(p["customer_id"]) - with_txns
    assert 0.04 * c.height <= len(card_only) <= 0.14 * c.height
    txns_per_month = data.transactions.group_by("customer_id").len()["len"] / MONTHS
    assert 8 <= txns_per_month.to_numpy().mean() <= 16
    assert (txns_per_month.to_numpy() < 3).mean() > 0.05  # thin histories
    month = c["created_at"].dt.month()
    assert 0.75 <= (c["created_at"] < dt.datetime(2024, 1, 8)).to_numpy().mean() <= 0.95
    assert month.n_unique() >= 11  # new customers arrive all year


def test_late_and_partial_payments_concentrate_on_positives(data: SyntheticData) -> None:
    ever = data.labels.group_by("customer_id").agg(pl.col("label").max())
    rates = (
        data.payments.join(ever, on="customer_id")
        .group_by("label")
        .agg(
            late=(pl.col("paid_date") > pl.col("due_date")).mean(),
            partial=(pl.col("amount_paid") < pl.col("amount_due")).mean(),
        )
    )
    rate = {r["label"]: r for r in rates.iter_rows(named=True)}
    for kind in ("late", "partial"):  # per statement: healthy customers are late sometimes
        assert 0.01 < rate[0][kind] < 0.5 * rate[1][kind], kind


# --- signal check: point-in-time features -> xgboost -> customer-grouped test AUC ---------

PAYMENT_FEATURES = ["max_late_90", "unpaid_at_t", "partial_90", "late_share", "last_due"]
TXN_FEATURES = [
    "days_since_salary", "salary_delay", "net30", "net_prev", "net_delta", "atm30",
    "atm_prev", "atm_delta", "disc30", "disc_prev", "disc_ratio", "n30",
]  # fmt: skip


def _payment_features(data: SyntheticData) -> pl.DataFrame:
    """From statements due strictly before t; a statement paid at/after t is unpaid at t."""
    t = pl.col("observation_date")
    paid = pl.col("paid_date").is_not_null() & (pl.col("paid_date") < t)
    late = (pl.when(paid).then("paid_date").otherwise(t) - pl.col("due_date")).dt.total_days()
    recent = pl.col("due_date") >= t - pl.duration(days=90)
    return (
        data.labels.select("customer_id", "observation_date")
        .join(data.payments, on="customer_id")
        .filter(pl.col("due_date") < t)
        .group_by("customer_id", "observation_date")
        .agg(
            max_late_90=late.clip(0).filter(recent).max(),
            unpaid_at_t=(~paid).sum(),
            partial_90=(paid & recent & (pl.col("amount_paid") < pl.col("amount_due"))).sum(),
            late_share=(late > 0).mean(),
            last_due=pl.col("amount_due").sort_by("due_date").last(),
        )
    )


def _txn_features(data: SyntheticData) -> pl.DataFrame:
    """From transactions strictly before t: last 30 days vs the customer's earlier months."""
    t = pl.col("observation_date").cast(pl.Datetime("us"))
    last30 = pl.col("txn_time") >= t - pl.duration(days=30)
    signed = pl.when(pl.col("txn_type") == "credit").then("amount").otherwise(-pl.col("amount"))
    disc = pl.col("category").is_in(["dining", "entertainment", "shopping"])
    atm, salary = pl.col("category") == "cash", pl.col("category") == "salary"
    months_before = ((t - pl.col("created_at")).dt.total_days() - 30).clip(1).first() / 30
    income = pl.col("monthly_income").first()
    people = data.customers.select("customer_id", "created_at", "monthly_income", "salary_day")
    return (
        data.labels.select("customer_id", "observation_date")
        .join(people, on="customer_id")
        .join(data.transactions, on="customer_id")
        .filter(pl.col("txn_time") < t)
        .group_by("customer_id", "observation_date")
        .agg(
            days_since_salary=(t.first() - pl.col("txn_time").filter(salary).max()).dt.total_days(),
            salary_delay=pl.col("txn_time").filter(salary).max().dt.day()
            - pl.col("salary_day").first(),
            net30=signed.filter(last30).sum() / income,
            net_prev=signed.filter(~last30).sum() / months_before / income,
            atm30=atm.filter(last30).sum(),
            atm_prev=atm.filter(~last30).sum() / months_before,
            disc30=pl.col("amount").filter(disc & last30).sum(),
            disc_prev=pl.col("amount").filter(disc & ~last30).sum() / months_before,
            n30=last30.sum(),
        )
        .with_columns(
            net_delta=pl.col("net30") - pl.col("net_prev"),
            atm_delta=pl.col("atm30") - pl.col("atm_prev"),
            disc_ratio=pl.col("disc30") / (pl.col("disc_prev") + 1),
        )
    )


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC, ties counted half (scikit-learn's, the tests' oracle for metrics)."""
    return float(roc_auc_score(y, score))


def _test_auc(frame: pl.DataFrame, columns: list[str]) -> float:
    in_test = (frame["customer_id"].hash(seed=7) % 10 < 3).to_numpy()  # grouped by customer
    x, y = frame.select(columns).to_numpy().astype(np.float32), frame["label"].to_numpy()
    params = {"objective": "binary:logistic", "max_depth": 4, "eta": 0.1, "nthread": 2}
    model = xgb.train(params, xgb.DMatrix(x[~in_test], y[~in_test]), num_boost_round=100)
    return _auc(y[in_test], model.predict(xgb.DMatrix(x[in_test])))


def test_auc_helper() -> None:
    assert _auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert _auc(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    assert _auc(np.array([1, 0, 1, 0]), np.array([0.1, 0.2, 0.3, 0.4])) == 0.25


def test_signal_is_learnable_not_leaked_and_behaviour_leads_payments() -> None:
    data = generate(n_customers=4000, seed=11)
    keys = ["customer_id", "observation_date"]
    frame = data.labels.join(_payment_features(data), on=keys, how="left").join(
        _txn_features(data), on=keys, how="left"
    )
    test_ids = set(frame.filter(frame["customer_id"].hash(seed=7) % 10 < 3)["customer_id"])
    assert test_ids and test_ids.isdisjoint(
        frame.filter(frame["customer_id"].hash(seed=7) % 10 >= 3)["customer_id"]
    )
    payment_only = _test_auc(frame, PAYMENT_FEATURES)
    combined = _test_auc(frame, PAYMENT_FEATURES + TXN_FEATURES)
    print(f"test AUC: payments only {payment_only:.3f}, all features {combined:.3f}")
    assert 0.80 <= combined <= 0.93  # learnable, but not a leak (~0.99)
    assert payment_only > 0.65
    assert combined >= payment_only + 0.03  # transaction behaviour adds signal ahead of time


# --- write() ----------------------------------------------------------------------------


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_write_round_trip(tmp_path: Path, file_format: str) -> None:
    data = generate(n_customers=60, seed=2)
    paths = write(data, tmp_path / "out" / "nested", file_format=file_format)
    assert list(paths) == list(TABLES)
    for name, path in paths.items():
        assert path == tmp_path / "out" / "nested" / f"{name}.{file_format}" and path.exists()
        if file_format == "csv":
            back = pl.read_csv(path, schema=SCHEMAS[name])
        else:
            back = pl.read_parquet(path)
        assert back.equals(getattr(data, name)), name


def test_csv_text_format(tmp_path: Path) -> None:
    paths = write(generate(n_customers=60, seed=2), tmp_path)
    customers = paths["customers"].read_text().splitlines()
    assert customers[0] == "customer_id,created_at,monthly_income,salary_day,credit_limit"
    assert re.fullmatch(r"C2-\d{6},\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d,.*", customers[1])
    payment_lines = paths["payments"].read_text().splitlines()
    assert all(re.match(r"C2-\d{6},\d{4}-\d\d-\d\d,", line) for line in payment_lines[1:])
    assert any(line.endswith(",,") for line in payment_lines)  # unpaid: empty fields
    header, first = paths["transactions"].read_text().splitlines()[:2]
    assert header == ",".join(SCHEMAS["transactions"])
    assert re.search(r",\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d,", first)


def test_write_rejects_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="csv"):
        write(generate(n_customers=5, seed=0), tmp_path, file_format="json")
