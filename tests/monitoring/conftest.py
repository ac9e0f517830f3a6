"""The monitoring tests' shared lender: the drift lender shifted from 2025-04, with a model
trained before the shift (labels observed before 2025-02, so matured before it). Built once
for the package (about 20 s): the drift and drift-history acceptance tests both read it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import Engine

from predelinq.config import Settings
from support.synthetic import DRIFT_SHIFT, trained_lender


@pytest.fixture(scope="package")
def shifted_lender(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Engine]]:
    settings, engine = trained_lender(
        tmp_path_factory.mktemp("shifted"), shift_from=DRIFT_SHIFT, labels_before=date(2025, 2, 1)
    )
    yield settings, engine
    engine.dispose()
