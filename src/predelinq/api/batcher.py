"""Micro-batching for ``/predict``: single-customer requests that arrive together are scored
together.

Each request puts its customer on a queue and awaits the result. The first request of a
round schedules one flush on the event loop; by the time it runs, every request that reached
the endpoint meanwhile is queued too. The flush reads all their rows in one query per table,
computes all their features in one ``feature_matrix_at_date`` call and scores them with one
``predict`` and one ``contributions`` call per (model, date). An idle server flushes
one request at once and adds no wait; a busy one forms larger batches on its own, because
requests queue while a batch computes. Scores are per row, so a customer's score does not
depend on its batch.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from predelinq.features.declarations import FeatureSet
from predelinq.features.online import feature_matrix_at_date
from predelinq.features.read import read_at_date
from predelinq.training import contributions, predict

if TYPE_CHECKING:
    from prometheus_client import Histogram
    from sqlalchemy import Engine

    from predelinq.api.champion import ServedModel
    from predelinq.config import Settings


def known_features(
    engine: Engine, settings: Settings, features: FeatureSet, ids: list[str], as_of: date
) -> tuple[list[str], np.ndarray]:
    """The customers of ``ids`` the database knows (in order) and their feature matrix (every
    feature of ``features``; a model takes its ``columns``)."""
    with engine.connect() as connection:
        inputs = read_at_date(connection, settings.database_url, ids, as_of)
    known = set(inputs["customers"].column("customer_id").to_pylist())
    ids = [customer_id for customer_id in ids if customer_id in known]
    return ids, feature_matrix_at_date(ids, as_of, inputs, features)


MAX_BATCH = 256  # customers per model call: bounds how long one flush holds the event loop


@dataclass(frozen=True)
class Scored:
    score: float
    features: np.ndarray  # this customer's row of the feature matrix
    contributions: np.ndarray  # per feature, without the bias term


@dataclass
class _Request:
    customer_id: str
    as_of: date
    model: ServedModel
    result: asyncio.Future[Scored | None]


class PredictionBatcher:
    """Scores single customers in batches; ``None`` for a customer the database lacks."""

    def __init__(
        self, engine: Engine, settings: Settings, features: FeatureSet, batch_size: Histogram
    ) -> None:
        self.engine, self.settings, self.batch_size = engine, settings, batch_size
        self.features = features
        self._queue: list[_Request] = []

    async def score(self, customer_id: str, as_of: date, model: ServedModel) -> Scored | None:
        loop = asyncio.get_running_loop()
        if not self._queue:
            loop.call_soon(self._flush)
        request = _Request(customer_id, as_of, model, loop.create_future())
        self._queue.append(request)
        return await request.result

    def _flush(self) -> None:
        queue, self._queue = self._queue, []
        self.batch_size.observe(len(queue))
        groups: dict[tuple[int, date], list[_Request]] = defaultdict(list)
        for request in queue:  # in-flight requests keep the model they started with
            groups[(id(request.model), request.as_of)].append(request)
        for group in groups.values():
            for start in range(0, len(group), MAX_BATCH):
                self._answer(group[start : start + MAX_BATCH])

    def _answer(self, requests: list[_Request]) -> None:
        try:
            results = self._score(requests)
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
        ids, every = known_features(self.engine, self.settings, self.features, asked, as_of)
        if not ids:
            return {}
        X = every[:, model.columns]
        scores = predict(model.booster, X, threads=None)  # as /predict/batch, to the last bit
        # DMatrix threads: the default, every core, made OpenMP threads wait on each other
        shares = contributions(
            model.booster, X, model.feature_names, threads=self.settings.threads or 1
        )[:, :-1]
        return {
            customer_id: Scored(float(scores[row]), X[row], shares[row])
            for row, customer_id in enumerate(ids)
        }
