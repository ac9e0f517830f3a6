"""Reference profiles stored at registration (both databases), drift reports on the standard
lender, and the acceptance figures on a larger synthetic lender: with no shift every
adjacent-month PSI of the score and of each monitored feature is under 0.1; with a regime
change the score's PSI goes over 0.25 and the shifted features are named."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from sqlalchemy import Engine, delete, insert, select

from predelinq.config import Settings
from predelinq.db.schema import labels, model_profiles, predictions
from predelinq.features import compute_features, configured_features
from predelinq.features.export import customers_as_of
from predelinq.modeling.booster import predict
from predelinq.modeling.registry import current_champion, load_champion
from predelinq.monitoring.drift import (
    drift_report,
    in_arrears,
    read_population,
    sample_customers,
)
from predelinq.monitoring.profile import Profile, bins_of, build_profile, compare, psi
from predelinq.monitoring.reference import load_profile
from predelinq.monitoring.scope import REFERENCE_DAYS, data_starts, profile_starts
from predelinq.serving.score import NoChampionError
from predelinq.statuses import PredictionSource
from support.synthetic import Loaded, trained_lender

AS_OF = date(2024, 12, 1)  # the standard lender's data run through 2024


def _champion_profile(loaded: Loaded) -> tuple[str, Profile | None]:
    with loaded.engine.connect() as connection:
        version = current_champion(connection)
        assert version is not None
        return version, load_profile(connection, version)


def test_a_registered_version_stores_the_profile_of_its_newest_training_rows(
    champion: Loaded,
) -> None:
    version, profile = _champion_profile(champion)
    assert profile is not None
    with champion.engine.connect() as connection:
        stored = connection.execute(select(model_profiles)).one()
        rows = pl.DataFrame(
            connection.execute(select(labels.c.customer_id, labels.c.observation_date)).all(),
            schema=["customer_id", "observation_date"],
            orient="row",
        )
    newest = rows["observation_date"].max()
    assert isinstance(newest, date)
    recent = rows.filter(pl.col("observation_date") > newest - timedelta(days=REFERENCE_DAYS))
    assert stored.model_version == version and stored.rows == profile.rows == recent.height
    features = configured_features(champion.settings)
    assert list(profile.features) == list(features.names)
    # the score's bins are the artifact's own predictions on those rows
    frame = compute_features(champion.engine, recent, settings=champion.settings)
    model = load_champion(champion.engine, champion.settings.model_dir, features)
    assert model is not None
    X = frame.select(features.names).to_numpy()
    scores = predict(model.booster, X[:, model.columns], threads=1)
    assert profile.score == bins_of(scores, champion.settings.monitoring.bins)
    assert profile.features["bal_mean_30"].rows == recent.height
    with champion.engine.connect() as connection:
        assert profile_starts(profile) == data_starts(connection)


def test_drift_report_on_the_standard_lender(champion: Loaded) -> None:
    engine, settings = champion.engine, champion.settings
    version, profile = _champion_profile(champion)
    report = drift_report(engine, settings, AS_OF)
    assert report.model_version == version and report.population == "customers"
    with engine.connect() as connection:
        behind = set(in_arrears(connection, AS_OF).to_list())
    everyone = set(customers_as_of(engine, AS_OF).to_list())
    assert report.excluded == len(everyone & behind) > 0
    assert report.rows == len(everyone - behind)
    names = set(configured_features(settings).names)
    assert set(report.features) | set(report.not_monitored) == names
    assert not set(report.features) & set(report.not_monitored)
    assert report.not_monitored["prof_account_age_days"].startswith("elapsed time")
    assert report.features and all(np.isfinite(list(report.features.values())))
    assert report.drifted_features == sorted(
        (n for n, v in report.features.items() if v >= settings.monitoring.psi_threshold),
        key=lambda n: -report.features[n],
    )
    # the score's PSI, computed here from the population the report describes
    model = load_champion(engine, settings.model_dir, configured_features(settings))
    assert model is not None and profile is not None
    population = read_population(engine, settings, AS_OF, model, configured_features(settings))
    assert set(population.customer_ids.to_list()) == everyone - behind
    assert report.score_psi == pytest.approx(psi(profile.score, population.scores))
    assert set(report.as_json()) >= {"as_of", "model_version", "score_psi", "features"}


def test_the_prediction_log_population_uses_the_logged_scores(champion: Loaded) -> None:
    engine = champion.engine
    settings = champion.settings.model_copy(
        update={
            "monitoring": champion.settings.monitoring.model_copy(
                update={"population": "predictions", "window_days": 10}
            )
        }
    )
    version, profile = _champion_profile(champion)
    assert profile is not None
    with engine.connect() as connection:
        behind = set(in_arrears(connection, AS_OF).to_list())
    ids = sorted(set(customers_as_of(engine, AS_OF).to_list()) - behind)[:40]
    served = datetime(2024, 11, 28, 12)
    rows = [
        # inside the window: the champion's newest score wins over its older one
        *({"customer_id": c, "score": 0.9, "served_at": served} for c in ids[:30]),
        *({"customer_id": c, "score": 0.1, "served_at": served - timedelta(days=1)} for c in ids),
        # 0.5 logged 20 days before: outside the window
        *({"customer_id": c, "score": 0.5, "served_at": served - timedelta(days=20)} for c in ids),
    ]
    with engine.begin() as connection:
        connection.execute(
            insert(predictions),
            [
                row
                | {
                    "as_of": AS_OF,
                    "model_version": version,
                    "band": "low",
                    "source": PredictionSource.BATCH,
                    "request_id": f"r{k}",
                }
                for k, row in enumerate(rows)
            ],
        )
    report = drift_report(engine, settings, AS_OF)
    assert report.population == "predictions" and report.rows == 40
    logged = np.array([0.9] * 30 + [0.1] * 10)
    assert report.score_psi == pytest.approx(psi(profile.score, logged))


def test_a_version_without_a_profile_gives_no_psi(champion: Loaded) -> None:
    with champion.engine.begin() as connection:
        connection.execute(delete(model_profiles))
    report = drift_report(champion.engine, champion.settings, AS_OF)
    assert report.score_psi is None and report.features == {}
    assert report.note is not None and "no reference profile" in report.note


def test_no_champion_is_a_user_error(loaded: Loaded) -> None:
    with pytest.raises(NoChampionError):
        drift_report(loaded.engine, loaded.settings, AS_OF)


# --- the acceptance figures on a larger lender (SQLite) ------------------------------------


@pytest.fixture(scope="module")
def steady(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Engine]]:
    settings, engine = trained_lender(
        tmp_path_factory.mktemp("steady"), shift_from=None, labels_before=None
    )
    yield settings, engine
    engine.dispose()


def test_no_shift_no_adjacent_month_psi_reaches_a_tenth(steady: tuple[Settings, Engine]) -> None:
    """Month m's population as the reference, month m+1 compared, for the score and every
    feature drift monitors at both dates."""
    settings, engine = steady
    features = configured_features(settings)
    model = load_champion(engine, settings.model_dir, features)
    assert model is not None
    months = [date(2025, m, 1) for m in range(2, 9)]  # windows full: 360 days after the start
    reports = {d: drift_report(engine, settings, d) for d in months}
    populations = {d: read_population(engine, settings, d, model, features) for d in months}
    worst: dict[str, float] = {}
    for before, after in zip(months, months[1:], strict=False):
        a, b = populations[before], populations[after]
        monitored = sorted(set(reports[before].features) & set(reports[after].features))
        assert len(monitored) >= 40
        found = compare(
            build_profile(a.X, a.names, a.scores, 10), b.X, b.names, b.scores, only=monitored
        )
        for name, value in {"score": found.score, **found.features}.items():
            worst[name] = max(worst.get(name, 0.0), value)
    assert max(worst.values()) < 0.1, sorted(worst.items(), key=lambda kv: -kv[1])[:5]
    # and against the model's own profile, after its training rows: nothing drifted
    last = reports[months[-1]]
    assert last.score_psi is not None and last.score_psi < 0.1
    assert last.drifted_features == []


def test_a_regime_change_drives_the_score_psi_over_the_threshold(
    shifted_lender: tuple[Settings, Engine],
) -> None:
    """A model trained before the shift (labels observed before 2025-02, so matured before
    it), compared with the population before and after the shift."""
    settings, engine = shifted_lender
    before = drift_report(engine, settings, date(2025, 3, 1))
    after = drift_report(engine, settings, date(2025, 7, 1))
    assert before.score_psi is not None and before.score_psi < 0.1
    assert after.score_psi is not None and after.score_psi > 0.25
    assert after.score_psi >= settings.monitoring.psi_threshold
    assert len(after.drifted_features) >= 3
    assert after.drifted_features[0] in after.features


def test_a_large_population_is_compared_on_a_seeded_sample(steady: tuple[Settings, Engine]):
    """Above [monitoring] max_customers eligible customers, that many are compared: the same
    ones for the same date, and a PSI close to the whole population's."""
    settings, engine = steady
    day = date(2025, 6, 1)
    whole = drift_report(engine, settings, day)
    assert whole.rows > 1_000
    sampled = settings.model_copy(
        update={"monitoring": settings.monitoring.model_copy(update={"max_customers": 1_000})}
    )
    features = configured_features(settings)
    model = load_champion(engine, settings.model_dir, features)
    assert model is not None
    first = read_population(engine, sampled, day, model, features)
    again = read_population(engine, sampled, day, model, features)
    assert first.customer_ids.len() == 1_000
    assert first.customer_ids.to_list() == again.customer_ids.to_list()
    report = drift_report(engine, sampled, day)
    assert report.rows == 1_000
    assert report.excluded == whole.excluded  # only the customers in arrears, not the sample
    assert whole.score_psi is not None and report.score_psi is not None
    assert abs(report.score_psi - whole.score_psi) < 0.05


def test_the_sample_is_nested_across_dates():
    """A customer sampled from the larger set stays sampled from any smaller set that holds
    it: month after month a drift history compares the same customers."""
    everyone = pl.Series("customer_id", [f"C{k:05d}" for k in range(5_000)])
    later = sample_customers(everyone, 500)
    earlier_ids = everyone.sample(3_000, seed=3)
    earlier = sample_customers(earlier_ids, 500)
    assert later.len() == earlier.len() == 500
    assert later.to_list() == sorted(later.to_list())
    assert set(later) & set(earlier_ids) <= set(earlier)
    assert sample_customers(everyone.head(10), 500).to_list() == everyone.head(10).to_list()
