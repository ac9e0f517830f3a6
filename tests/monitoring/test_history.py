"""Drift history: every point equals the drift report at its date (both databases, both
populations, a sampled population), the score shares follow the reference bins, dates before
the first customer are skipped, and on a lender shifted at some month the score's PSI rises
after the shift."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, delete, insert

from predelinq.config import Settings
from predelinq.db.schema import model_profiles, predictions
from predelinq.features import configured_features
from predelinq.features.export import customers_as_of
from predelinq.modeling.registry import current_champion, load_champion
from predelinq.monitoring.drift import (
    DriftReport,
    drift_report,
    in_arrears,
    read_population,
    read_populations,
)
from predelinq.monitoring.history import DriftHistory, drift_history, history_dates
from predelinq.monitoring.reference import load_profile
from predelinq.serving.score import NoChampionError
from predelinq.statuses import PredictionSource
from support.synthetic import DRIFT_SHIFT, Loaded

AS_OF = date(2024, 12, 1)  # the standard lender's data run through 2024
FIRST_CUSTOMER = datetime(2024, 1, 1, 0, 0, 28)  # the standard lender's first created_at


def _assert_points_are_the_reports(history: DriftHistory, settings: Settings, engine: Engine):
    reports: list[DriftReport] = [drift_report(engine, settings, p.as_of) for p in history.points]
    for point, report in zip(history.points, reports, strict=True):
        assert report.model_version == history.model_version
        assert (point.as_of, point.rows) == (report.as_of, report.rows)
        assert point.score_psi == report.score_psi  # exactly: the same rows, the same bins
        assert point.features == report.features


def _with_monitoring(settings: Settings, **changes: object) -> Settings:
    monitoring = settings.monitoring.model_copy(update=changes)
    return settings.model_copy(update={"monitoring": monitoring})


def test_each_point_is_the_drift_report_at_its_date(champion: Loaded) -> None:
    engine, settings = champion.engine, champion.settings
    history = drift_history(engine, settings, AS_OF, months=6)
    assert [p.as_of for p in history.points] == [date(2024, m, 1) for m in range(7, 13)]
    assert history.points[-1].as_of == AS_OF and history.note is None
    _assert_points_are_the_reports(history, settings, engine)
    assert all(p.rows > 100 and p.features and p.score_psi is not None for p in history.points)
    # the reference's score bins, as stored
    with engine.connect() as connection:
        version = current_champion(connection)
        assert version is not None
        profile = load_profile(connection, version)
    assert profile is not None and history.model_version == version
    assert history.score_edges == list(profile.score.edges)
    assert history.reference_shares == list(profile.score.shares)
    assert abs(sum(history.reference_shares) - 1) < 1e-9


def test_score_shares_are_the_population_in_the_reference_bins(champion: Loaded) -> None:
    engine, settings = champion.engine, champion.settings
    history = drift_history(engine, settings, AS_OF, months=3)
    bins = len(history.score_edges) + 1
    assert bins >= 5  # enough distinct scores on 160 customers for most of the 10 bins
    for point in history.points:
        assert len(point.score_shares) == bins
        assert abs(sum(point.score_shares) - 1) < 1e-9
        assert all(share >= 0 for share in point.score_shares)
    # counted here from the population the last point describes: right-closed bins
    features = configured_features(settings)
    model = load_champion(engine, settings.model_dir, features)
    assert model is not None
    scores = read_population(engine, settings, AS_OF, model, features).scores
    edges = [-np.inf, *history.score_edges, np.inf]
    expected = [
        np.count_nonzero((scores > low) & (scores <= high)) / scores.size
        for low, high in zip(edges, edges[1:], strict=False)
    ]
    assert history.points[-1].score_shares == pytest.approx(expected, abs=1e-12)


def test_dates_before_the_first_customer_are_skipped(champion: Loaded) -> None:
    engine, settings = champion.engine, champion.settings
    as_of = date(2024, 3, 1)
    history = drift_history(engine, settings, as_of, months=6)
    # 2024-01-01 is not after the first customer's creation (00:00:28 that day)
    assert [p.as_of for p in history.points] == [date(2024, 2, 1), as_of]
    skipped = drift_report(engine, settings, date(2024, 1, 1))
    assert skipped.rows == 0 and skipped.note == "no customers to compare at this date"
    _assert_points_are_the_reports(history, settings, engine)
    before = drift_history(engine, settings, date(2023, 12, 1), months=3)
    assert before.points == [] and before.note is not None
    assert before.note.startswith("no customer was first seen before")


def test_the_prediction_log_population_is_the_reports(champion: Loaded) -> None:
    engine = champion.engine
    settings = _with_monitoring(champion.settings, population="predictions", window_days=10)
    with engine.connect() as connection:
        version = current_champion(connection)
    days = [date(2024, 11, 1), AS_OF]
    rows = []
    for k, day in enumerate(days):
        with engine.connect() as connection:
            behind = set(in_arrears(connection, day).to_list())
        ids = sorted(set(customers_as_of(engine, day).to_list()) - behind)[k * 10 : k * 10 + 40]
        served = datetime.combine(day, datetime.min.time()) - timedelta(days=2)
        rows += [
            {"customer_id": c, "score": 0.05 * (n % 20), "served_at": served, "as_of": day}
            for n, c in enumerate(ids[:30])
        ]
        # served by another version only: rescored by the champion
        rows += [
            {"customer_id": c, "score": 0.99, "served_at": served, "as_of": day, "v": "old"}
            for c in ids[30:]
        ]
    with engine.begin() as connection:
        connection.execute(
            insert(predictions),
            [
                {
                    "customer_id": row["customer_id"],
                    "score": row["score"],
                    "served_at": row["served_at"],
                    "as_of": row["as_of"],
                    "model_version": "old" if "v" in row else version,
                    "band": "low",
                    "source": PredictionSource.BATCH,
                    "request_id": f"r{k}",
                }
                for k, row in enumerate(rows)
            ],
        )
    history = drift_history(engine, settings, AS_OF, months=2)
    assert [(p.as_of, p.rows) for p in history.points] == [(days[0], 40), (AS_OF, 40)]
    _assert_points_are_the_reports(history, settings, engine)


def test_populations_read_together_are_those_read_one_by_one(champion: Loaded) -> None:
    """Dates in any order, one with nobody yet (2024-01-01): the shared read slices each
    date's rows back out exactly."""
    engine, settings = champion.engine, champion.settings
    features = configured_features(settings)
    model = load_champion(engine, settings.model_dir, features)
    assert model is not None
    dates = [AS_OF, date(2024, 1, 1), date(2024, 6, 15)]
    together = read_populations(engine, settings, dates, model, features)
    assert [p.customer_ids.len() for p in together][1] == 0
    for day, population in zip(dates, together, strict=True):
        alone = read_population(engine, settings, day, model, features)
        assert population.customer_ids.to_list() == alone.customer_ids.to_list()
        assert np.array_equal(population.X, alone.X, equal_nan=True)
        assert np.array_equal(population.scores, alone.scores)
        assert (population.excluded, population.names) == (alone.excluded, alone.names)
    assert together[0].customer_ids.len() > together[2].customer_ids.len() > 0


def test_a_version_without_a_profile_gives_a_note_and_no_points(champion: Loaded) -> None:
    with champion.engine.begin() as connection:
        connection.execute(delete(model_profiles))
    history = drift_history(champion.engine, champion.settings, AS_OF)
    assert history.points == [] and history.score_edges == []
    assert history.note is not None and "no reference profile" in history.note


def test_no_champion_is_a_user_error(loaded: Loaded) -> None:
    with pytest.raises(NoChampionError):
        drift_history(loaded.engine, loaded.settings, AS_OF)


def test_history_dates_keep_the_day_of_the_month() -> None:
    assert history_dates(date(2024, 3, 31), 3) == [
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
    ]
    assert history_dates(date(2025, 2, 15), 4) == [
        date(2024, 11, 15),
        date(2024, 12, 15),
        date(2025, 1, 15),
        date(2025, 2, 15),
    ]
    assert history_dates(date(2025, 2, 15), 1) == [date(2025, 2, 15)]
    with pytest.raises(ValueError, match="at least one month"):
        history_dates(date(2025, 2, 15), 0)


# --- a lender shifted at some month (SQLite) -------------------------------------------------


@pytest.fixture
def shifted(shifted_lender: tuple[Settings, Engine]) -> tuple[Settings, Engine]:
    """The package's shifted lender; drift compares a seeded sample of 1,000 where more are
    eligible (1,039 to 1,071 from February to May, 912 to 989 from June, as the shift sends
    customers into arrears)."""
    settings, engine = shifted_lender
    return _with_monitoring(settings, max_customers=1_000), engine


def test_the_score_psi_rises_after_the_shift(shifted: tuple[Settings, Engine]) -> None:
    settings, engine = shifted
    history = drift_history(engine, settings, date(2025, 8, 1), months=7)
    assert [p.as_of for p in history.points] == [date(2025, m, 1) for m in range(2, 9)]
    psi = {p.as_of: p.score_psi for p in history.points}
    assert all(value is not None for value in psi.values())
    before = [v for d, v in psi.items() if v is not None and d <= DRIFT_SHIFT]
    after = [v for d, v in psi.items() if v is not None and d > DRIFT_SHIFT]
    assert len(before) == 3 and len(after) == 4
    assert min(after) > max(before), psi
    assert max(before) < 0.1 and min(after) > settings.monitoring.psi_threshold
    # sampled where more than 1,000 are eligible (before the shift sends many into arrears):
    # the very customers drift_report compares there
    assert [p.rows for p in history.points[:4]] == [1_000] * 4
    assert all(p.rows < 1_000 for p in history.points[4:])
    _assert_points_are_the_reports(history, settings, engine)
