"""Realised performance on matured labels: the logged score of each label (the latest one
served), else the model of record's re-score, per version and month, on both databases."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score
from sqlalchemy import delete, insert, select, update

from predelinq.clock import utc_now
from predelinq.db.schema import (
    champion_changes,
    model_champion,
    model_versions,
    predictions,
)
from predelinq.db.schema import (
    labels as label_rows,
)
from predelinq.features.parse import configured_features
from predelinq.modeling.registry import get_version, load_champion
from predelinq.monitoring.performance import (
    EXCLUDED,
    LOGGED,
    RESCORED,
    SKIPPED,
    UNSCORED,
    champion_performance,
    matured_scores,
    realised_performance,
)
from predelinq.monitoring.predictions import log_scores
from predelinq.retraining.run import retrain
from predelinq.retraining.selection import training_customers
from predelinq.serving.score import for_serving, risk_bands, score, score_customers
from predelinq.statuses import ChampionAction, PredictionSource
from support.synthetic import Loaded

AFTER_ALL = date(2025, 1, 1)  # every synthetic label (April to November 2024) has matured


def _months(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(period=pl.col("observation_date").dt.strftime("%Y-%m"))


def _serve_every_label(loaded: Loaded) -> None:
    """Score every labelled customer at its observation date with ``score_customers``, which
    logs the scores; before that, log through the log's writer the reversed scores (to be
    superseded: the join must take the latest) and scores for the next day (no label's)."""
    engine, settings = loaded.engine, loaded.settings
    assert settings.log_predictions
    quiet = settings.model_copy(update={"log_predictions": False})
    for (day,), group in loaded.data.labels.partition_by("observation_date", as_dict=True).items():
        first = score_customers(engine, quiet, as_of=day, customer_ids=group["customer_id"])
        ids, scores = first["customer_id"].to_list(), 1 - first["risk_score"].to_numpy()
        for as_of in (day, day + timedelta(days=1)):
            log_scores(
                engine,
                customer_ids=ids,
                as_of=as_of,
                model_version=first["model_version"][0],
                scores=scores,
                bands=risk_bands(scores, settings.risk_bands),
                source=PredictionSource.SCORE,
                request_id=str(uuid.uuid4()),
                retention_days=settings.prediction_retention_days,
            )
        score_customers(engine, settings, as_of=day, customer_ids=group["customer_id"])


def _latest_logged(loaded: Loaded) -> pl.DataFrame:
    """The labels joined to the latest score logged for their customer and date, with each
    label's month: read here from the two tables, apart from the code under test."""
    with loaded.engine.connect() as connection:
        logged = pl.DataFrame(
            connection.execute(select(predictions)).all(),
            schema=[column.name for column in predictions.columns],
            orient="row",
        )
        labels = pl.DataFrame(
            connection.execute(
                select(label_rows.c.customer_id, label_rows.c.observation_date, label_rows.c.label)
            ).all(),
            schema=["customer_id", "observation_date", "label"],
            orient="row",
        )
    latest = (
        logged.sort("served_at")
        .group_by("customer_id", "as_of")
        .last()
        .rename({"as_of": "observation_date"})
    )
    return _months(labels.join(latest, on=["customer_id", "observation_date"]))


def test_realised_auc_equals_one_computed_from_the_log_and_the_labels(champion: Loaded):
    """The acceptance test: per month and pooled, the AUC is sklearn's on the join of the
    labels with the latest logged score, computed here independently."""
    _serve_every_label(champion)
    joined = _latest_logged(champion)
    version = champion_version(champion)
    assert joined.height == champion.data.labels.height
    assert set(joined["source"]) == {PredictionSource.SCORE.value}

    performance = realised_performance(champion.engine, champion.settings, AFTER_ALL)

    assert [p.period for p in performance] == sorted(joined["period"].unique().to_list())
    for period in performance:
        rows = joined.filter(pl.col("period") == period.period)
        y, s = rows["label"].to_numpy(), rows["score"].to_numpy()
        assert period.model_version == version
        assert (period.rows, period.logged, period.rescored) == (rows.height, rows.height, 0)
        assert period.positives == int(y.sum())
        assert period.auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert period.auc is not None and period.auc_low is not None
        assert period.auc > 0.5  # the older, reversed scores were not used
        # a bootstrap interval around the AUC; it is a point only where every resample ranks
        # perfectly (a month of 120 rows can be separated entirely by the training data's model)
        assert period.auc_high is not None
        assert period.auc_low <= period.auc <= period.auc_high
        assert period.auc_low < period.auc_high or period.auc == 1.0
        assert period.brier == pytest.approx(brier_score_loss(y, s), abs=1e-12)
        assert period.calibration == pytest.approx(s.mean() - y.mean(), abs=1e-12)
    pooled = champion_performance(champion.engine, champion.settings, AFTER_ALL)
    assert pooled is not None and pooled.period == "all" and pooled.rows == joined.height
    y, s = joined["label"].to_numpy(), joined["score"].to_numpy()
    assert pooled.auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    as_json = pooled.as_json()
    assert list(as_json)[:8] == [
        "model_version",
        "period",
        "rows",
        "positives",
        "auc",
        "auc_low",
        "auc_high",
        "expected_auc",
    ]


def champion_version(loaded: Loaded) -> str:
    with loaded.engine.connect() as connection:
        return connection.execute(select(model_champion.c.model_version)).scalar_one()


def test_immature_labels_are_left_out(champion: Loaded):
    """At 2024-09-30 with a 60-day horizon, labels dated 2024-08-01 (60 days old) have
    matured and those of 2024-09-01 (29 days) have not; at 2024-09-29 (59 days) neither."""
    _serve_every_label(champion)
    labels = _months(champion.data.labels)
    settings = champion.settings
    assert settings.label_horizon_days == 60

    at_horizon = realised_performance(champion.engine, settings, date(2024, 9, 30))
    a_day_short = realised_performance(champion.engine, settings, date(2024, 9, 29))
    since_june = realised_performance(
        champion.engine, settings, date(2024, 9, 30), since=date(2024, 6, 1)
    )
    shorter = settings.model_copy(update={"label_horizon_days": 29})
    with_september = realised_performance(champion.engine, shorter, date(2024, 9, 30))

    def periods(performance):
        return [p.period for p in performance]

    assert periods(at_horizon) == ["2024-04", "2024-05", "2024-06", "2024-07", "2024-08"]
    assert periods(a_day_short) == periods(at_horizon)[:-1]
    assert periods(since_june) == periods(at_horizon)[2:]
    assert periods(with_september) == [*periods(at_horizon), "2024-09"]
    counts = dict(labels.group_by("period").len().iter_rows())
    assert all(p.rows == counts[p.period] for p in at_horizon)
    assert realised_performance(champion.engine, settings, date(2024, 5, 1)) == []


@pytest.fixture
def partly_learnt(loaded: Loaded) -> Loaded:
    """A champion that learnt from 100 of the 160 customers: the others' rows are out of
    sample, so the fallback re-scores them."""
    settings = loaded.settings.model_copy(update={"threads": 1})
    result = retrain(loaded.engine, settings, reason="first model", max_customers=100, seed=7)
    assert result.promoted
    return replace(loaded, settings=settings)


def test_the_fallback_rescores_as_serving_scores_and_leaves_learnt_rows_out(
    partly_learnt: Loaded,
):
    engine, settings = partly_learnt.engine, partly_learnt.settings
    features = configured_features(settings)
    model = load_champion(engine, settings.model_dir, features)
    assert model is not None
    model = for_serving(model, settings)
    with engine.connect() as connection:
        customers = training_customers(connection, model.version)
    assert customers is not None
    learnt = set(customers.to_list())
    assert 0 < len(learnt) < 160

    matured = matured_scores(engine, settings, AFTER_ALL).rows
    labels = partly_learnt.data.labels
    assert matured.height == labels.height
    assert set(matured["model_version"]) == {model.version}
    is_learnt = matured["customer_id"].is_in(list(learnt))
    assert (matured.filter(is_learnt)["source"] == EXCLUDED).all()
    assert matured.filter(is_learnt)["score"].is_null().all()
    rescored = matured.filter(~is_learnt)
    assert (rescored["source"] == RESCORED).all() and rescored.height > 100

    for (day,), group in rescored.partition_by("observation_date", as_dict=True).items():
        ids = group["customer_id"].sort().to_list()
        served = score(engine, settings, model, features, ids, day, bulk=True)
        assert served.ids == ids
        mine = group.sort("customer_id")["score"].to_numpy()
        np.testing.assert_allclose(mine, served.scores, rtol=1e-6, atol=1e-7)

    performance = realised_performance(engine, settings, AFTER_ALL)
    assert sum(p.rescored for p in performance) == rescored.height
    assert sum(p.excluded for p in performance) == matured.height - rescored.height
    assert all(p.logged == 0 and p.rows == p.rescored for p in performance)


def test_a_logged_score_is_used_before_a_rescore(partly_learnt: Loaded):
    """Logged rows keep their score, even for customers the version learnt from."""
    engine, settings = partly_learnt.engine, partly_learnt.settings
    version = champion_version(partly_learnt)
    one = partly_learnt.data.labels.row(0, named=True)
    with engine.begin() as connection:
        connection.execute(
            insert(predictions).values(
                customer_id=one["customer_id"],
                as_of=one["observation_date"],
                model_version=version,
                score=0.123,
                band="low",
                served_at=utc_now(),
                source=PredictionSource.PREDICT.value,
                request_id=str(uuid.uuid4()),
            )
        )
    matured = matured_scores(engine, settings, AFTER_ALL).rows
    row = matured.filter(
        (pl.col("customer_id") == one["customer_id"])
        & (pl.col("observation_date") == one["observation_date"])
    )
    assert row.select("source", "score").row(0) == (LOGGED, 0.123)


def test_each_month_goes_to_its_model_of_record_with_its_expected_auc(partly_learnt: Loaded):
    """Two versions, the second promoted on 2024-07-15: April to July are the first's
    (before its first move: the earliest champion), August on the second's; each period
    carries its version's AUC recorded at training."""
    engine, settings = partly_learnt.engine, partly_learnt.settings
    first = champion_version(partly_learnt)
    second = retrain(engine, settings, reason="second", max_customers=100, seed=8, force=True)
    assert second.promoted and second.model_version != first
    with engine.begin() as connection:  # a history as if they had served in 2024
        connection.execute(delete(champion_changes))
        for changed_at, from_version, to_version in (
            (datetime(2024, 5, 2, 9), None, first),
            (datetime(2024, 7, 15, 23, 59), first, second.model_version),
        ):
            connection.execute(
                insert(champion_changes).values(
                    changed_at=changed_at,
                    from_version=from_version,
                    to_version=to_version,
                    action=ChampionAction.PROMOTE.value,
                    actor="test",
                )
            )
        expected = {
            name: auc
            for name, auc in connection.execute(
                select(model_versions.c.model_version, model_versions.c.auc_score)
            )
        }
        connection.execute(update(model_champion).values(model_version=second.model_version))

    performance = realised_performance(engine, settings, AFTER_ALL)

    by_period = {p.period: p for p in performance}
    assert sorted(by_period) == [f"2024-{m:02d}" for m in range(4, 12)]
    assert len(performance) == len(by_period)  # one version of record per month
    for p in performance:
        version = first if p.period <= "2024-07" else second.model_version
        assert p.model_version == version
        assert p.expected_auc == expected[version] and p.expected_auc is not None
        assert p.rows == p.rescored > 0 and p.excluded > 0 and p.logged == p.unscored == 0
        if p.auc is not None:
            assert p.auc_low is not None and p.auc_low <= p.auc <= (p.auc_high or 0)
    # the second version's rows are re-scored by its own booster, as serving scores them
    rows = matured_scores(engine, settings, AFTER_ALL).rows.filter(
        (pl.col("model_version") == second.model_version) & (pl.col("source") == RESCORED)
    )
    features = configured_features(settings)
    model = load_champion(engine, settings.model_dir, features)
    assert model is not None and model.version == second.model_version
    day = rows["observation_date"].max()
    assert isinstance(day, date)
    on_day = rows.filter(pl.col("observation_date") == day).sort("customer_id")
    served = score(engine, settings, model, features, on_day["customer_id"].to_list(), day)
    np.testing.assert_allclose(on_day["score"].to_numpy(), served.scores, rtol=1e-6, atol=1e-7)
    # the champion's pooled figure covers its rows since 2024-07-15 only
    pooled = champion_performance(engine, settings, AFTER_ALL)
    assert pooled is not None and pooled.model_version == second.model_version
    assert pooled.rows == sum(p.rows for p in performance if p.period >= "2024-08")
    assert pooled.expected_auc == expected[second.model_version]


def test_a_month_of_one_class_has_no_auc(champion: Loaded):
    _serve_every_label(champion)
    with champion.engine.begin() as connection:  # April's positives removed: one class left
        connection.execute(
            delete(label_rows).where(
                label_rows.c.observation_date == date(2024, 4, 1), label_rows.c.label == 1
            )
        )
    april, may, *_ = realised_performance(champion.engine, champion.settings, AFTER_ALL)
    assert april.period == "2024-04" and april.positives == 0 and april.rows > 100
    assert april.auc is april.auc_low is april.auc_high is april.ks is None
    assert april.brier is not None and april.calibration is not None and april.calibration > 0
    assert may.auc is not None and may.ks is not None


def test_nothing_promoted_nothing_logged_gives_no_performance(loaded: Loaded):
    assert realised_performance(loaded.engine, loaded.settings, AFTER_ALL) == []
    assert champion_performance(loaded.engine, loaded.settings, AFTER_ALL) is None


def test_rescoring_is_capped_to_a_seeded_sample_of_whole_customers(partly_learnt: Loaded):
    engine, settings = partly_learnt.engine, partly_learnt.settings
    everyone = matured_scores(engine, settings, AFTER_ALL).rows
    capped = matured_scores(engine, settings, AFTER_ALL, max_rescored_customers=20).rows
    again = matured_scores(engine, settings, AFTER_ALL, max_rescored_customers=20).rows

    rescored = capped.filter(pl.col("source") == RESCORED)
    assert rescored["customer_id"].n_unique() == 20
    assert rescored.equals(again.filter(pl.col("source") == RESCORED))  # the same sample
    skipped = capped.filter(pl.col("source") == SKIPPED)
    assert skipped["score"].is_null().all()
    assert not set(skipped["customer_id"]) & set(rescored["customer_id"])  # whole customers
    assert skipped.height + rescored.height == (everyone["source"] == RESCORED).sum()
    # the sampled rows keep the scores they get when everyone is re-scored
    full = everyone.join(rescored, on=["customer_id", "observation_date"])
    assert full.height == rescored.height and full["score"].equals(full["score_right"])
    performance = realised_performance(engine, settings, AFTER_ALL, max_rescored_customers=20)
    assert sum(p.skipped for p in performance) == skipped.height
    assert sum(p.rows for p in performance) == rescored.height


def test_rows_a_version_cannot_rescore_are_counted_unscored(partly_learnt: Loaded):
    engine, settings = partly_learnt.engine, partly_learnt.settings
    with engine.connect() as connection:
        version = get_version(connection, champion_version(partly_learnt))
    (settings.model_dir / version.artifact_path).unlink()  # its artifact is gone

    performance = realised_performance(engine, settings, AFTER_ALL)

    assert performance and all(p.rows == p.rescored == 0 for p in performance)
    assert all(p.unscored > 0 and p.auc is None and p.brier is None for p in performance)
    matured = matured_scores(engine, settings, AFTER_ALL).rows
    assert set(matured["source"]) == {EXCLUDED, UNSCORED}
