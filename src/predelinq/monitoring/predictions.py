"""The prediction log: every score served, appended to the ``predictions`` table, and read back
per customer.

The rule it keeps: logging never slows or fails a request. The API's scoring threads hand
``PredictionLog.record`` columnar chunks (the ids, scores and bands they already hold); a
background thread drains the queue every ``FLUSH_SECONDS`` (sooner once ``FLUSH_ROWS`` wait)
and writes each drain in one bulk write (``db/bulk.py``: COPY on PostgreSQL, ``executemany``
on SQLite), and ``close`` writes what is left. The queue is bounded: while the database is
down or slow, chunks beyond ``MAX_PENDING_ROWS`` are dropped, counted, and reported by at
most one warning line a minute (the error's type, never its text: a driver's message can name
the host and user). Rows older than the retention setting are deleted when the writer starts and
about hourly after (one DELETE by ``served_at``).

``predelinq score`` logs its whole frame in one write (``log_scores``); ``customer_predictions``
is the reader behind ``GET /predictions``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import chain, repeat
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import polars as pl
from sqlalchemy import Connection, Engine, delete, select

from predelinq.clock import utc_now
from predelinq.db.bulk import append_rows
from predelinq.db.schema import predictions
from predelinq.statuses import PredictionSource

if TYPE_CHECKING:
    from prometheus_client import Counter

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5  # the writer's pace: a served score is stored within about this
FLUSH_ROWS = 10_000  # rows waiting that wake the writer early
MAX_PENDING_ROWS = 200_000  # rows waiting beyond which new chunks are dropped (~60 MB)
RETENTION_SECONDS = 3600  # between two deletions of expired rows
WARN_SECONDS = 60  # at most one warning about dropped rows this often
CLOSE_SECONDS = 30  # the longest ``close`` waits for the last write


@dataclass(frozen=True)
class LoggedPrediction:
    """One row of the prediction log."""

    customer_id: str
    as_of: date
    model_version: str
    score: float
    band: str
    served_at: datetime
    source: PredictionSource
    request_id: str


class _Chunk(NamedTuple):
    """Scores served together: one (date, version, source, time) for many customers."""

    customer_ids: Sequence[str]
    as_of: date
    model_version: str
    scores: np.ndarray | Sequence[float]
    bands: Sequence[str]
    source: PredictionSource
    request_ids: str | Sequence[str]  # one for the chunk, or one per row
    served_at: datetime


def _frame(chunks: Sequence[_Chunk]) -> pl.DataFrame:
    """The chunks as one frame in the table's column order: per-chunk values repeated in C
    (``repeat``), per-row columns concatenated."""
    sizes = [len(chunk.customer_ids) for chunk in chunks]

    def spread(values: Sequence[object]) -> list[object]:
        return list(chain.from_iterable(map(repeat, values, sizes)))

    def rows(column: Sequence[Sequence[str]]) -> list[str]:
        return list(chain.from_iterable(column))

    request_ids = [
        repeat(chunk.request_ids, size) if isinstance(chunk.request_ids, str) else chunk.request_ids
        for chunk, size in zip(chunks, sizes, strict=True)
    ]
    scores = [np.asarray(chunk.scores, dtype=np.float64) for chunk in chunks]
    return pl.DataFrame(
        [
            pl.Series("customer_id", rows([chunk.customer_ids for chunk in chunks]), pl.String),
            pl.Series("as_of", spread([chunk.as_of for chunk in chunks]), pl.Date),
            pl.Series("model_version", spread([c.model_version for c in chunks]), pl.String),
            pl.Series("score", np.concatenate(scores) if scores else [], pl.Float64),
            pl.Series("band", rows([chunk.bands for chunk in chunks]), pl.String),
            pl.Series("served_at", spread([c.served_at for c in chunks]), pl.Datetime("us")),
            pl.Series("source", spread([str(c.source) for c in chunks]), pl.String),
            pl.Series("request_id", list(chain.from_iterable(request_ids)), pl.String),
        ]
    )


def delete_expired(connection: Connection, retention_days: int) -> int:
    """Delete the rows served more than ``retention_days`` ago; how many went."""
    cutoff = utc_now() - timedelta(days=retention_days)
    result = connection.execute(delete(predictions).where(predictions.c.served_at < cutoff))
    return result.rowcount


def log_scores(
    engine: Engine,
    *,
    customer_ids: Sequence[str],
    as_of: date,
    model_version: str,
    scores: np.ndarray,
    bands: Sequence[str],
    source: PredictionSource,
    request_id: str,
    retention_days: int,
) -> int:
    """Log one run's scores (``predelinq score``) in one bulk write, and delete the rows past
    retention in the same transaction; the number of rows logged."""
    chunk = _Chunk(customer_ids, as_of, model_version, scores, bands, source, request_id, utc_now())
    frame = _frame([chunk])
    with engine.begin() as connection:
        if frame.height:
            append_rows(connection, predictions, frame)
        delete_expired(connection, retention_days)
    return frame.height


def customer_predictions(
    connection: Connection, customer_id: str, limit: int
) -> list[LoggedPrediction]:
    """The customer's logged scores, newest first (by time served, then date scored), at most
    ``limit``."""
    query = (
        select(predictions)
        .where(predictions.c.customer_id == customer_id)
        .order_by(predictions.c.served_at.desc(), predictions.c.as_of.desc())
        .limit(limit)
    )
    return [
        LoggedPrediction(
            customer_id=row.customer_id,
            as_of=row.as_of,
            model_version=row.model_version,
            score=row.score,
            band=row.band,
            served_at=row.served_at,
            source=PredictionSource(row.source),
            request_id=row.request_id,
        )
        for row in connection.execute(query)
    ]


class PredictionLog:
    """The API's buffered writer. ``start`` the thread, ``record`` from any thread, ``close``
    to write what is left and stop. ``written`` and ``dropped`` count rows (and feed the
    optional Prometheus counters)."""

    def __init__(
        self,
        engine: Engine,
        retention_days: int,
        *,
        logged: Counter | None = None,
        dropped: Counter | None = None,
        flush_seconds: float = FLUSH_SECONDS,
        max_pending_rows: int = MAX_PENDING_ROWS,
    ) -> None:
        self.engine, self.retention_days = engine, retention_days
        self.flush_seconds, self.max_pending_rows = flush_seconds, max_pending_rows
        self._logged, self._dropped = logged, dropped
        self.written = 0
        self.dropped = 0
        self._chunks: deque[_Chunk] = deque()
        self._pending = 0  # rows in _chunks
        self._lock = threading.Lock()  # _chunks, _pending, _closed
        self._write_lock = threading.Lock()  # one drain at a time
        self._wake = threading.Event()
        self._closed = False
        self._failing = False  # rows dropped since the last good write
        self._warned_at = -float(WARN_SECONDS)  # time.monotonic() of the last warning
        self._thread = threading.Thread(
            target=self._run, name="predelinq-prediction-log", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def record(
        self,
        customer_ids: Sequence[str],
        as_of: date,
        model_version: str,
        scores: np.ndarray | Sequence[float],
        bands: Sequence[str],
        source: PredictionSource,
        request_ids: str | Sequence[str],
    ) -> None:
        """Queue scores served together (``request_ids``: one for all, or one per row). Never
        blocks on the database and never raises for it: a full queue drops the chunk."""
        size = len(customer_ids)
        if not size:
            return
        chunk = _Chunk(
            customer_ids, as_of, model_version, scores, bands, source, request_ids, utc_now()
        )
        with self._lock:
            closed = self._closed
            accepted = not closed and self._pending + size <= self.max_pending_rows
            if accepted:
                self._chunks.append(chunk)
                self._pending += size
            waiting = self._pending
        if not accepted:
            self._drop(size, "closed" if closed else "queue full")
        elif waiting >= FLUSH_ROWS:
            self._wake.set()

    def flush(self) -> None:
        """Write every queued row now, in the calling thread."""
        with self._write_lock:
            with self._lock:
                chunks, self._chunks, self._pending = list(self._chunks), deque(), 0
            if chunks:
                self._write(chunks)

    def close(self) -> None:
        """Stop accepting rows, write what is queued, stop the thread."""
        with self._lock:
            self._closed = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(CLOSE_SECONDS)
        if not self._thread.is_alive():  # else a write hangs: leave the rest to it
            self.flush()  # rows the thread's last pass missed; all, if it never started

    def _run(self) -> None:
        next_prune = 0.0
        while True:
            stopping = self._closed
            if time.monotonic() >= next_prune:
                self._prune()
                next_prune = time.monotonic() + RETENTION_SECONDS
            self.flush()
            if stopping:
                return
            self._wake.wait(self.flush_seconds)
            self._wake.clear()

    def _write(self, chunks: list[_Chunk]) -> None:
        rows = sum(len(chunk.customer_ids) for chunk in chunks)
        try:
            frame = _frame(chunks)
            with self.engine.begin() as connection:
                append_rows(connection, predictions, frame)
        except Exception as error:  # noqa: BLE001  (a log write must never stop the writer)
            self._drop(rows, f"write failed ({type(error).__name__})")
            return
        with self._lock:
            self.written += rows
            recovered, self._failing = self._failing, False
        if self._logged is not None:
            self._logged.inc(rows)
        if recovered:
            log.info("prediction log writing again", extra={"fields": {"dropped": self.dropped}})

    def _prune(self) -> None:
        try:
            with self.engine.begin() as connection:
                deleted = delete_expired(connection, self.retention_days)
        except Exception as error:  # noqa: BLE001  (retried within the hour)
            log.warning(
                "prediction log retention failed",
                extra={"fields": {"error": type(error).__name__}},
            )
            return
        if deleted:
            fields = {"deleted": deleted, "retention_days": self.retention_days}
            log.info("prediction log rows expired", extra={"fields": fields})

    def _drop(self, rows: int, reason: str) -> None:
        now = time.monotonic()
        with self._lock:
            self.dropped += rows
            self._failing = True
            warn = now - self._warned_at >= WARN_SECONDS
            if warn:
                self._warned_at = now
        if self._dropped is not None:
            self._dropped.inc(rows)
        if warn:
            fields = {"reason": reason, "dropped": self.dropped}
            log.warning("prediction log dropping rows", extra={"fields": fields})
