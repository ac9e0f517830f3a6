"""Scoring off the event loop: ``/predict`` micro-batches and ``/predict/batch`` in chunks.

Reading rows, computing features and calling the model take milliseconds to seconds of CPU.
On the event loop they starved everything else: ``/health`` answered 6 s late behind a burst
of 2,000 ``/predict`` calls and 18 s late behind eight 100,000-id batches. So all of it runs in
worker threads, and the loop only parses requests, queues them and writes responses.

``/predict``: each request puts its customer on a queue and awaits the result. While no
batch is being scored, the first request starts one; every request that arrives while a
batch is scored waits for the next, so an idle server scores one request at once and adds no
wait, and a busy one forms larger batches on its own. A batch is one ``score`` call
(``score.py``) per (model, date): one query per table, one feature pass, one ``predict`` and
one ``contributions`` call. Scores are per row, so a customer's score does not depend on its
batch.

``/predict/batch``: the ids are scored ``BATCH_CHUNK`` at a time, each chunk read over a
pooled connection (no process, no temporary table) in its own thread hop; batches take turns
chunk by chunk on a thread of their own, so they neither hold the loop nor queue every
``/predict`` behind a whole batch.

Every score served goes to the prediction log (``monitoring/predictions.py``), when one is
given: from the worker thread, a chunk per micro-batch or batch chunk (ids, scores and bands
as arrays and lists), never from the event loop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from predelinq.features.declarations import FeatureSet
from predelinq.serving.score import Scores, risk_bands, score
from predelinq.statuses import PredictionSource

if TYPE_CHECKING:
    from prometheus_client import Histogram
    from sqlalchemy import Engine

    from predelinq.config import Settings
    from predelinq.modeling.registry import Champion
    from predelinq.monitoring.predictions import PredictionLog


MAX_BATCH = 256  # customers per /predict model call
# Customers per /predict/batch step, read over a pooled connection. 2,000 customers of 130
# transactions each took 2.0 s in steps of 250 and 2.1-3.4 s in steps of 1,000 (shared
# machine), and a small step holds the GIL for less at a time, which keeps the event loop's
# waits short.
BATCH_CHUNK = 250


@dataclass(frozen=True)
class Scored:
    """One customer's score, explained."""

    score: float
    features: np.ndarray  # the model's features for this customer
    contributions: np.ndarray  # per feature, without the bias term
    newest_event_us: float  # microseconds since the epoch; NaN: no event before as_of


@dataclass
class _Request:
    customer_id: str
    as_of: date
    model: Champion
    request_id: str
    result: asyncio.Future[Scored | None]


class PredictionBatcher:
    """Scores customers in worker threads: single ones in micro-batches (``None`` for a
    customer the database lacks), many in chunks, each score handed to ``log`` (if any) with
    its request's id. ``close`` stops the threads."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        features: FeatureSet,
        batch_size: Histogram,
        log: PredictionLog | None = None,
    ) -> None:
        self.engine, self.settings, self.batch_size = engine, settings, batch_size
        self.features, self.log = features, log
        self._queue: list[_Request] = []
        self._scoring = False  # a micro-batch is being scored
        self._drainer: asyncio.Task[None] | None = None
        # One thread each: the work is mostly Python (the GIL), so more threads would only
        # take turns; two let a /predict batch run while a /predict/batch chunk does.
        self._single = ThreadPoolExecutor(1, thread_name_prefix="predelinq-predict")
        self._many = ThreadPoolExecutor(1, thread_name_prefix="predelinq-predict-batch")

    def close(self) -> None:
        self._single.shutdown(wait=False, cancel_futures=True)
        self._many.shutdown(wait=False, cancel_futures=True)

    async def score(
        self, customer_id: str, as_of: date, model: Champion, request_id: str | None = None
    ) -> Scored | None:
        """``customer_id``'s score, logged under ``request_id`` (default: a new uuid4)."""
        loop = asyncio.get_running_loop()
        identifier = request_id or str(uuid.uuid4())
        request = _Request(customer_id, as_of, model, identifier, loop.create_future())
        self._queue.append(request)
        if not self._scoring:
            self._scoring = True
            self._drainer = loop.create_task(self._drain())  # referenced: not collected
        return await request.result

    async def score_many(
        self, ids: list[str], as_of: date, model: Champion, request_id: str | None = None
    ) -> Scores:
        """Scores of the known customers among ``ids``, ``BATCH_CHUNK`` at a time, logged under
        ``request_id`` (default: a new uuid4)."""
        loop = asyncio.get_running_loop()
        request_id = request_id or str(uuid.uuid4())
        parts = []
        for start in range(0, len(ids), BATCH_CHUNK):
            chunk = ids[start : start + BATCH_CHUNK]
            part = await loop.run_in_executor(
                self._many, self._score_chunk, chunk, as_of, model, request_id
            )
            parts.append(part)
        return Scores.concat(parts)

    def _score_chunk(self, ids: list[str], as_of: date, model: Champion, request_id: str) -> Scores:
        scored = score(self.engine, self.settings, model, self.features, ids, as_of)
        if self.log is not None and scored.ids:
            bands = risk_bands(scored.scores, self.settings.risk_bands)
            source = PredictionSource.BATCH
            self.log.record(
                scored.ids, as_of, model.version, scored.scores, bands, source, request_id
            )
        return scored

    async def _drain(self) -> None:
        """Score the queue, then what queued meanwhile, until it is empty."""
        try:
            while self._queue:
                queue, self._queue = self._queue, []
                self.batch_size.observe(len(queue))
                groups: dict[tuple[int, date], list[_Request]] = defaultdict(list)
                for request in queue:  # in-flight requests keep the model they started with
                    groups[(id(request.model), request.as_of)].append(request)
                for group in groups.values():
                    for start in range(0, len(group), MAX_BATCH):
                        await self._answer(group[start : start + MAX_BATCH])
        finally:
            self._scoring = False

    async def _answer(self, requests: list[_Request]) -> None:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._single, self._score, requests)
        except asyncio.CancelledError:  # the server is stopping: none is left waiting
            for request in requests:
                request.result.cancel()
            raise
        except Exception as error:  # every waiting request gets the error, none hangs
            for request in requests:
                if not request.result.done():
                    request.result.set_exception(error)
            return
        for request in requests:
            if not request.result.done():  # a client that went away cancelled it
                request.result.set_result(results.get(request.customer_id))

    def _score(self, requests: list[_Request]) -> dict[str, Scored]:
        model, as_of = requests[0].model, requests[0].as_of
        asked = list(dict.fromkeys(request.customer_id for request in requests))
        scored = score(self.engine, self.settings, model, self.features, asked, as_of, explain=True)
        if scored.features is None or scored.contributions is None:  # none of them is known
            return {}
        X, shares = scored.features, scored.contributions
        results = {
            customer_id: Scored(
                float(scored.scores[row]), X[row], shares[row], float(scored.newest_event_us[row])
            )
            for row, customer_id in enumerate(scored.ids)
        }
        self._log_single(requests, results, model, as_of)
        return results

    def _log_single(
        self, requests: list[_Request], results: dict[str, Scored], model: Champion, as_of: date
    ) -> None:
        """A row per answered request (two requests for one customer: two rows)."""
        if self.log is None:
            return
        answered = [request for request in requests if request.customer_id in results]
        if not answered:
            return
        ids = [request.customer_id for request in answered]
        scores = np.fromiter((results[customer_id].score for customer_id in ids), np.float64)
        bands = risk_bands(scores, self.settings.risk_bands)
        request_ids = [request.request_id for request in answered]
        self.log.record(
            ids, as_of, model.version, scores, bands, PredictionSource.PREDICT, request_ids
        )
