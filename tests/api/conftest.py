"""The live server of the API tests: a real uvicorn server on loopback serving the standard
lender with a champion (tests/conftest.py's ``champion``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from predelinq.api import create_app
from support.http import Served, serve
from support.synthetic import Loaded


@pytest.fixture
def server(champion: Loaded) -> Iterator[Served]:
    with serve(create_app(champion.settings)) as client:
        yield Served(client, champion)
