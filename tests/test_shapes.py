"""Lenders' data in shapes the synthetic generator never makes, on SQLite and PostgreSQL.

- ``cards``: card holders with statements and payments and no transactions at all;
- ``ledger``: a bank ledger with transactions (with ``balance_after``) and no payments;
- ``unlabelled``: customers and events but no labels yet;
- ``empty``: a database that only went through ``predelinq init``.

The first two hold 6,000 customers, so feature reads take the large-read path (parallel
readers; on SQLite a child process). Every command runs as a user runs it (the installed
console script; the API through a real uvicorn server) and must give a result or a clear
message with a sensible exit code, never a traceback. One database per (shape, backend) is
shared by the tests of that shape (module-scoped fixtures).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx
import polars as pl
import pytest
from pydantic import SecretStr

from predelinq.api import create_app
from predelinq.config import Settings
from predelinq.features.declarations import Feature
from predelinq.features.parse import feature_set
from predelinq.synth import SyntheticData
from support.databases import postgres_schema
from support.http import TOKEN, serve
from support.synthetic import Synthetic, write_synthetic

AS_OF = "2024-10-01"
EXIT_RETRAIN_FAILED = 4  # cli_retraining.py: a failed retrain, or no champion to score with
LARGE = 6_000  # customers of the cards and ledger shapes
PARALLEL_MIN = 5_000  # Settings.large_read_customers: reads from here are "large"


# --- running things as a user does -------------------------------------------------------------


def _cli(lender: Lender, *args: str) -> subprocess.CompletedProcess:
    """The installed ``predelinq`` script against the lender's database, in its own working
    directory (no ``predelinq.toml`` of the repository is read)."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PREDELINQ_") and key != "DATABASE_URL"
    }
    env = {
        **inherited,
        "COLUMNS": "200",
        "DATABASE_URL": lender.url,
        "PREDELINQ_MODEL_DIR": str(lender.model_dir),
        "PREDELINQ_THREADS": "2",
        "PREDELINQ_MAX_CUSTOMERS": "all",
    }
    executable = Path(sys.executable).with_name("predelinq")
    return subprocess.run(
        [str(executable), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=lender.directory,
        timeout=300,
    )


def _explain(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def _no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr + result.stdout, _explain(result)


@contextmanager
def _serving(lender: Lender) -> Iterator[httpx.Client]:
    """A real uvicorn server on loopback over the lender's database (built-in features only,
    as the CLI runs see them, whatever ``predelinq.toml`` the test's directory has)."""
    settings = Settings(
        database_url=lender.url,
        model_dir=lender.model_dir,
        threads=2,
        admin_token=SecretStr(TOKEN),
        reload_seconds=0.2,
        features=[],
        categories={},
    )
    with serve(create_app(settings), timeout=300) as client:
        yield client


# --- databases --------------------------------------------------------------------------------


@dataclass
class Lender:
    shape: str
    backend: str
    url: str
    directory: Path
    data: SyntheticData | None = None
    runs: dict[str, subprocess.CompletedProcess] = field(default_factory=dict)

    @property
    def model_dir(self) -> Path:
        return self.directory / "models"


@contextmanager
def _new_database(backend: str, directory: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'predelinq.db'}"
        return
    with postgres_schema(request.getfixturevalue("postgres_url")) as url:
        yield url


def _ingest(lender: Lender, files: dict[str, Path]) -> None:
    """``predelinq ingest`` (which creates the schema) of the given files."""
    options = [item for name, path in files.items() for item in (f"--{name}", str(path))]
    result = _cli(lender, "ingest", "--json", *options)
    assert result.returncode == 0, _explain(result)


@pytest.fixture(scope="module")
def large_files(tmp_path_factory) -> Synthetic:
    """6,000 synthetic customers; the cards and ledger shapes each ingest a subset."""
    return write_synthetic(tmp_path_factory.mktemp("large"), customers=LARGE, seed=73)


MISSING = {"cards": "transactions", "ledger": "payments"}


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(("cards", "sqlite"), id="cards-sqlite"),
        pytest.param(("cards", "postgres"), id="cards-postgres", marks=pytest.mark.postgres),
        pytest.param(("ledger", "sqlite"), id="ledger-sqlite"),
        pytest.param(("ledger", "postgres"), id="ledger-postgres", marks=pytest.mark.postgres),
    ],
)
def trained(request, large_files, tmp_path_factory) -> Iterator[Lender]:
    """A lender of one shape with 6,000 customers: ingested, then ``check`` (the first model),
    ``retrain``, ``score`` and ``features export`` run once; the tests judge the results."""
    shape, backend = request.param
    data, paths = large_files.data, large_files.files
    directory = tmp_path_factory.mktemp(f"{shape}-{backend}")
    with _new_database(backend, directory, request) as url:
        lender = Lender(shape, backend, url, directory, data)
        _ingest(lender, {name: p for name, p in paths.items() if name != MISSING[shape]})
        lender.runs["check"] = _cli(lender, "check", "--json")
        lender.runs["retrain"] = _cli(lender, "retrain", "--json", "--max-customers", "all")
        lender.runs["score"] = _cli(
            lender, "score", "--as-of", AS_OF, "--output", str(directory / "scores.csv")
        )
        export = ("features", "export", "--as-of", AS_OF)
        lender.runs["export"] = _cli(
            lender, *export, "--output", str(directory / "features.parquet")
        )
        yield lender


def _sources(features: tuple[Feature, ...]) -> dict[str, set[str]]:
    """Each feature's sources, through its ``minus`` and ``ratio`` too."""
    found: dict[str, set[str]] = {}
    for feature in features:
        sources: set[str] = {feature.source}
        for part in (feature.minus, feature.ratio):
            if isinstance(part, str):
                sources |= found[part]
            elif part is not None:
                sources.add(part.source)
        found[feature.name] = sources
    return found


def _customers_before(data: SyntheticData, day: str) -> list[str]:
    created = data.customers.filter(pl.col("created_at") < date.fromisoformat(day))
    return sorted(created["customer_id"].to_list())


# --- cards and ledger: every command gives a result --------------------------------------------


def test_check_trains_the_first_model(trained):
    result = trained.runs["check"]
    _no_traceback(result)
    assert result.returncode == 0, _explain(result)
    report = json.loads(result.stdout)
    assert report["retraining_needed"] is True
    assert report["result"]["status"] == "success", _explain(result)
    assert report["result"]["promoted"] is True
    assert 0.5 < report["result"]["auc"] <= 1


def test_retrain_gives_a_model(trained):
    result = trained.runs["retrain"]
    _no_traceback(result)
    assert result.returncode == 0, _explain(result)
    report = json.loads(result.stdout)
    assert report["status"] in ("success", "rejected"), report
    assert report["customers_trained"] >= PARALLEL_MIN
    assert 0.5 < report["auc"] <= 1


def test_score_writes_a_risk_for_every_customer(trained):
    result = trained.runs["score"]
    _no_traceback(result)
    assert result.returncode == 0, _explain(result)
    scores = pl.read_csv(trained.directory / "scores.csv")
    assert scores.columns[:3] == ["customer_id", "risk_score", "model_version"]
    assert scores.columns[3:] == ["last_event_at", "data_age_days"]
    assert scores["customer_id"].to_list() == _customers_before(trained.data, AS_OF)
    assert scores.height >= PARALLEL_MIN
    assert scores["risk_score"].is_not_nan().all() and scores["risk_score"].is_between(0, 1).all()
    assert scores["model_version"].n_unique() == 1


def test_features_export_has_the_missing_family_empty(trained):
    result = trained.runs["export"]
    _no_traceback(result)
    assert result.returncode == 0, _explain(result)
    exported = pl.read_parquet(trained.directory / "features.parquet")
    assert exported["customer_id"].to_list() == _customers_before(trained.data, AS_OF)
    sources = _sources(feature_set().features)
    assert exported.columns == ["customer_id", "observation_date", *sources]
    missing = MISSING[trained.shape]
    absent = [name for name, used in sources.items() if missing in used]
    present = [name for name, used in sources.items() if missing not in used]
    assert absent, f"no feature reads {missing}"
    with_values = exported.select(pl.col(absent).is_not_nan().sum()).row(0, named=True)
    assert {name: count for name, count in with_values.items() if count} == {}
    # the families the lender has are computed: almost every feature has values
    computed = exported.select(pl.col(present).is_not_nan().any()).row(0)
    assert sum(computed) >= 0.9 * len(present), dict(zip(present, computed, strict=True))


def test_api_predicts_single_and_batch(trained):
    scores = pl.read_csv(trained.directory / "scores.csv")
    missing = MISSING[trained.shape]
    absent = {name for name, used in _sources(feature_set().features).items() if missing in used}
    ids = scores["customer_id"].to_list()
    with _serving(trained) as client:
        one = client.post("/predict", json={"customer_id": ids[0], "as_of": AS_OF})
        assert one.status_code == 200, one.text
        body = one.json()
        assert 0 <= body["risk_score"] <= 1
        assert all(top["value"] is None for top in body["top_features"] if top["feature"] in absent)
        assert client.post("/predict", json={"customer_id": "nobody"}).status_code == 404
        # every customer at once: the server's read takes the large-read path
        batch = client.post(
            "/predict/batch", json={"customer_ids": [*ids, "nobody"], "as_of": AS_OF}
        )
        assert batch.status_code == 200, batch.text
        answer = batch.json()
    assert answer["unknown_customer_ids"] == ["nobody"]
    assert answer["model_version"] == body["model_version"] == scores["model_version"][0]
    served = pl.DataFrame(answer["predictions"]).select("customer_id", "risk_score")
    assert served["customer_id"].to_list() == ids
    assert served["risk_score"][0] == body["risk_score"]  # the same model call
    # the API and `predelinq score` agree on every customer
    largest = (served["risk_score"] - scores["risk_score"]).abs().max()
    assert isinstance(largest, float) and largest < 1e-6


# --- no labels yet, and an empty database: clear messages ---------------------------------------


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(("unlabelled", "sqlite"), id="unlabelled-sqlite"),
        pytest.param(
            ("unlabelled", "postgres"), id="unlabelled-postgres", marks=pytest.mark.postgres
        ),
        pytest.param(("empty", "sqlite"), id="empty-sqlite"),
        pytest.param(("empty", "postgres"), id="empty-postgres", marks=pytest.mark.postgres),
    ],
)
def untrainable(request, tmp_path_factory) -> Iterator[Lender]:
    """Customers, transactions and payments but no labels; or nothing at all."""
    shape, backend = request.param
    directory = tmp_path_factory.mktemp(f"{shape}-{backend}")
    with _new_database(backend, directory, request) as url:
        lender = Lender(shape, backend, url, directory)
        if shape == "unlabelled":
            synthetic = write_synthetic(
                directory / "files", customers=400, seed=79, file_format="csv"
            )
            lender.data = synthetic.data
            _ingest(lender, {k: p for k, p in synthetic.files.items() if k != "labels"})
        else:
            init = _cli(lender, "init")
            assert init.returncode == 0, _explain(init)
        yield lender


def test_check_says_there_is_nothing_to_train_on(untrainable):
    result = _cli(untrainable, "check")
    _no_traceback(result)
    assert result.returncode == 0, _explain(result)
    assert "New customers not in training: 0" in result.stdout
    assert "nothing to do" in result.stdout


def test_retrain_fails_with_a_reason(untrainable):
    result = _cli(untrainable, "retrain")
    _no_traceback(result)
    assert result.returncode == EXIT_RETRAIN_FAILED, _explain(result)
    assert "FAILED: too few labelled rows: 0" in result.stdout, _explain(result)


def test_score_says_there_is_no_model(untrainable):
    output = untrainable.directory / "scores.csv"
    result = _cli(untrainable, "score", "--as-of", AS_OF, "--output", str(output))
    _no_traceback(result)
    assert result.returncode == EXIT_RETRAIN_FAILED, _explain(result)
    assert "no champion model yet" in result.stderr
    assert not output.exists()


def test_features_export_needs_no_labels(untrainable):
    output = untrainable.directory / "features.parquet"
    result = _cli(untrainable, "features", "export", "--as-of", AS_OF, "--output", str(output))
    _no_traceback(result)
    assert result.returncode == 0, _explain(result)
    exported = pl.read_parquet(output)
    expected = _customers_before(untrainable.data, AS_OF) if untrainable.data else []
    assert exported["customer_id"].to_list() == expected
    assert exported.columns == ["customer_id", "observation_date", *feature_set().names]
    if expected:  # every family is there
        computed = exported.select(pl.col(feature_set().names).is_not_nan().any()).row(0)
        assert sum(computed) >= 0.9 * len(computed)


def test_api_says_there_is_no_model(untrainable):
    customer_id = untrainable.data.customers["customer_id"][0] if untrainable.data else "C1"
    with _serving(untrainable) as client:
        one = client.post("/predict", json={"customer_id": customer_id, "as_of": AS_OF})
        batch = client.post("/predict/batch", json={"customer_ids": [customer_id], "as_of": AS_OF})
        health = client.get("/health")
    for response in (one, batch):
        assert response.status_code == 503, response.text
        assert "no champion model yet" in response.json()["detail"]
    assert health.json() == {"status": "ok", "model_version": None}
