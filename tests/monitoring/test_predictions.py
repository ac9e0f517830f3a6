"""The prediction log's writer and reader on both databases: buffered rows land (on the
writer's pace, sooner when many wait), close writes what is queued, retention deletes only
expired rows, and a failing database or a full queue never reaches the caller: rows are
dropped, counted, and warned about once."""

from __future__ import annotations

import logging
import re
import time
from datetime import date, timedelta

import numpy as np
import pytest
from sqlalchemy import func, insert, select

from predelinq.api.telemetry import Telemetry
from predelinq.clock import utc_now
from predelinq.db.schema import predictions
from predelinq.monitoring.predictions import (
    FLUSH_ROWS,
    PredictionLog,
    customer_predictions,
    delete_expired,
    log_scores,
)
from predelinq.statuses import PredictionSource

AS_OF = date(2024, 10, 1)
WAIT_SECONDS = 30


def _count(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(predictions)).scalar_one()


def _rows(engine) -> list:
    query = select(predictions).order_by(
        predictions.c.customer_id, predictions.c.source, predictions.c.request_id
    )
    with engine.connect() as connection:
        return list(connection.execute(query))


def _wait_for(engine, rows: int) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while _count(engine) < rows:
        assert time.monotonic() < deadline, f"{rows} rows never landed"
        time.sleep(0.05)


def _value(telemetry: Telemetry, name: str) -> float:
    value = telemetry.registry.get_sample_value(name)
    assert value is not None
    return value


def test_recorded_chunks_land_on_the_writers_pace(database):
    telemetry = Telemetry()
    log = PredictionLog(
        database.engine,
        400,
        logged=telemetry.predictions_logged,
        dropped=telemetry.predictions_dropped,
        flush_seconds=0.05,
    )
    log.start()
    before = utc_now()
    try:
        scores = np.array([0.1, 0.5, 0.9])
        log.record(["a", "b", "c"], AS_OF, "v1", scores, ["low", "medium", "high"],
                   PredictionSource.BATCH, "batch-request")  # fmt: skip
        log.record(["a", "a"], AS_OF + timedelta(days=1), "v2", [0.25, 0.75], ["low", "high"],
                   PredictionSource.PREDICT, ["first", "second"])  # fmt: skip
        log.record([], AS_OF, "v1", np.empty(0), [], PredictionSource.PREDICT, [])  # nothing
        _wait_for(database.engine, 5)
    finally:
        log.close()
    after = utc_now()

    rows = _rows(database.engine)
    assert [(r.customer_id, r.as_of, r.model_version, r.score, r.band, r.source, r.request_id)
            for r in rows] == [
        ("a", AS_OF, "v1", 0.1, "low", "batch", "batch-request"),
        ("a", AS_OF + timedelta(days=1), "v2", 0.25, "low", "predict", "first"),
        ("a", AS_OF + timedelta(days=1), "v2", 0.75, "high", "predict", "second"),
        ("b", AS_OF, "v1", 0.5, "medium", "batch", "batch-request"),
        ("c", AS_OF, "v1", 0.9, "high", "batch", "batch-request"),
    ]  # fmt: skip
    assert all(before <= r.served_at <= after for r in rows)  # served time, naive UTC
    assert log.written == 5 and log.dropped == 0
    assert _value(telemetry, "predelinq_predictions_logged_total") == 5
    assert _value(telemetry, "predelinq_predictions_log_dropped_total") == 0


def test_record_never_writes_and_close_writes_what_is_queued(database):
    log = PredictionLog(database.engine, 400, flush_seconds=3600)  # the thread never started
    log.record(["a", "b"], AS_OF, "v1", [0.2, 0.3], ["low", "low"], PredictionSource.PREDICT,
               ["r1", "r2"])  # fmt: skip
    assert _count(database.engine) == 0  # buffered: the caller never waits on the database
    log.close()
    assert _count(database.engine) == 2
    log.record(["c"], AS_OF, "v1", [0.2], ["low"], PredictionSource.PREDICT, ["r3"])
    log.flush()
    assert _count(database.engine) == 2 and log.dropped == 1  # refused once closed


def test_many_waiting_rows_wake_the_writer_early(database):
    log = PredictionLog(database.engine, 400, flush_seconds=3600)
    log.start()
    try:
        time.sleep(0.2)  # its first pass (retention, an empty flush) is over: it now sleeps
        ids = [f"c{i}" for i in range(FLUSH_ROWS)]
        scores = np.linspace(0, 1, FLUSH_ROWS)
        log.record(ids, AS_OF, "v1", scores, ["low"] * FLUSH_ROWS, PredictionSource.BATCH, "r")
        _wait_for(database.engine, FLUSH_ROWS)  # long before an hour
    finally:
        log.close()
    with database.engine.connect() as connection:
        stored = connection.execute(select(func.sum(predictions.c.score))).scalar_one()
    assert stored == pytest.approx(scores.sum())


def _insert_served(engine, served_days_ago: list[float]) -> None:
    now = utc_now()
    rows = [
        {
            "customer_id": f"old{days}",
            "as_of": AS_OF,
            "model_version": "v1",
            "score": 0.5,
            "band": "medium",
            "served_at": now - timedelta(days=days),
            "source": "predict",
            "request_id": "r",
        }
        for days in served_days_ago
    ]
    with engine.begin() as connection:
        connection.execute(insert(predictions), rows)


def test_retention_deletes_expired_rows_only(database):
    _insert_served(database.engine, [400.01, 30, 0, 399.9, 1000])
    with database.engine.begin() as connection:
        assert delete_expired(connection, 400) == 2
    assert {r.customer_id for r in _rows(database.engine)} == {"old30", "old0", "old399.9"}
    # the writer deletes expired rows when it starts
    log = PredictionLog(database.engine, 10, flush_seconds=0.05)
    log.start()
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while _count(database.engine) > 1:
            assert time.monotonic() < deadline, "the writer never applied retention"
            time.sleep(0.05)
    finally:
        log.close()
    assert [r.customer_id for r in _rows(database.engine)] == ["old0"]


def test_a_failing_database_drops_rows_counts_them_and_warns_once(database, caplog):
    telemetry = Telemetry()
    log = PredictionLog(
        database.engine, 400, logged=telemetry.predictions_logged,
        dropped=telemetry.predictions_dropped, max_pending_rows=4,
    )  # fmt: skip
    with database.engine.begin() as connection:
        predictions.drop(connection)  # every write now fails
    with caplog.at_level(logging.WARNING, logger="predelinq.monitoring.predictions"):
        log.record(["a", "b"], AS_OF, "v1", [0.1, 0.2], ["low"] * 2, PredictionSource.BATCH, "r")
        log.flush()  # fails: the rows are dropped, nothing raised
        for _ in range(3):  # the queue holds 4 rows: the third chunk of 2 is dropped
            log.record(["c", "d"], AS_OF, "v1", [0.1, 0.2], ["low"] * 2, PredictionSource.BATCH,
                       "r")  # fmt: skip
        log.flush()
    assert log.dropped == 2 + 2 + 4 and log.written == 0
    assert _value(telemetry, "predelinq_predictions_log_dropped_total") == 8
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].getMessage() == "prediction log dropping rows"
    fields = warnings[0].fields  # the error's type, never its text (it can name host and user)
    assert set(fields) == {"reason", "dropped"} and fields["dropped"] == 2
    assert re.fullmatch(r"write failed \(\w+\)", fields["reason"]), fields

    with database.engine.begin() as connection:
        predictions.create(connection)  # the database is back
    log.record(["e"], AS_OF, "v1", [0.3], ["low"], PredictionSource.PREDICT, ["r9"])
    log.close()
    assert [r.customer_id for r in _rows(database.engine)] == ["e"] and log.written == 1


def test_log_scores_writes_a_run_in_one_go_and_applies_retention(database):
    _insert_served(database.engine, [500, 5])
    ids = [f"c{i:03d}" for i in range(300)]
    scores = np.linspace(0.0, 1.0, 300)
    bands = ["low"] * 100 + ["medium"] * 100 + ["high"] * 100
    logged = log_scores(
        database.engine, customer_ids=ids, as_of=AS_OF, model_version="v3", scores=scores,
        bands=bands, source=PredictionSource.SCORE, request_id="run-1", retention_days=30,
    )  # fmt: skip
    assert logged == 300
    rows = [r for r in _rows(database.engine) if r.model_version == "v3"]
    assert [r.customer_id for r in rows] == ids and [r.band for r in rows] == bands
    assert np.allclose([r.score for r in rows], scores)
    assert {(r.source, r.request_id, r.as_of) for r in rows} == {("score", "run-1", AS_OF)}
    assert _count(database.engine) == 301  # the 500-day-old row went, the 5-day-old one stayed


def test_customer_predictions_are_the_customers_newest_first(database):
    now = utc_now()
    rows = [
        {"customer_id": customer, "as_of": AS_OF + timedelta(days=day), "model_version": "v1",
         "score": day / 10, "band": "low", "served_at": now - timedelta(hours=hours),
         "source": "batch", "request_id": f"r{day}"}
        for customer, day, hours in [("a", 1, 5), ("a", 2, 1), ("b", 3, 0), ("a", 3, 3),
                                     ("a", 4, 1)]
    ]  # fmt: skip
    with database.engine.begin() as connection:
        connection.execute(insert(predictions), rows)
        history = customer_predictions(connection, "a", 3)
        assert customer_predictions(connection, "nobody", 100) == []
    # newest served first; served together: the later date first
    assert [(p.as_of.day, p.request_id) for p in history] == [(5, "r4"), (3, "r2"), (4, "r3")]
    assert history[0].source is PredictionSource.BATCH and history[0].score == 0.4
