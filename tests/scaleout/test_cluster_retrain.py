"""Features and training on a real Dask cluster (a scheduler and two worker processes),
against the local path on the same PostgreSQL data; a worker killed mid-retrain; the errors
of a database the workers cannot read and of a scheduler that does not answer."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import Engine, delete, func, select

from predelinq.cli.common import ExitCode
from predelinq.config import Settings
from predelinq.db import open_database, schema
from predelinq.features import compute_features
from predelinq.features.parse import configured_features
from predelinq.modeling.registry import current_champion, load_champion
from predelinq.monitoring.backtest import run_backtest
from predelinq.monitoring.backtest_plan import Every, Plan, Policy
from predelinq.retraining.result import Hooks, RetrainResult
from predelinq.retraining.run import retrain
from predelinq.scaleout import DaskModeError, dask_mode, partitioned_features
from predelinq.scaleout.features import partition_of
from predelinq.serving.score import score_customers
from predelinq.statuses import RunStatus
from support.cli import run_cli
from support.dask_cluster import DaskProcesses, start_cluster
from support.http import free_port
from support.synthetic import Loaded

pytestmark = pytest.mark.postgres

RETRAINING_TABLES = schema.RETRAINING_TABLES  # deleted in this order: a first retrain again


def _on(loaded: Loaded, address: str, **update: object) -> Settings:
    return loaded.settings.model_copy(update={"dask_scheduler": address, **update})


def _observations(engine: Engine) -> pl.DataFrame:
    with engine.connect() as connection:
        rows = connection.execute(
            select(schema.labels.c.customer_id, schema.labels.c.observation_date)
        ).all()
    return pl.DataFrame(rows, schema=["customer_id", "observation_date"], orient="row")


def _forget_retraining(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in RETRAINING_TABLES:
            connection.execute(delete(table))


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in RETRAINING_TABLES
        }


def test_partitions_keep_each_customer_whole_and_share_the_rows_out() -> None:
    ids = pl.Series([f"C{k % 700}" for k in range(5_000)])
    parts = partition_of(ids, 4)
    frame = pl.DataFrame({"id": ids, "part": parts})
    assert frame.group_by("id").agg(pl.col("part").n_unique())["part"].max() == 1
    sizes = np.bincount(parts, minlength=4)
    assert sizes.min() > 0.15 * ids.len()  # every partition has its share
    assert np.array_equal(partition_of(ids, 4), parts)  # the same ids, the same partitions


def test_features_on_the_workers_are_exactly_the_local_paths(
    lender: Loaded, dask_cluster: DaskProcesses
) -> None:
    engine, observations = lender.engine, _observations(lender.engine)
    local = compute_features(engine, observations, settings=lender.settings)
    # 300 customers a partition: 7 partitions over the two workers
    settings = _on(lender, dask_cluster.address, dask_partition_customers=300)
    with dask_mode(engine, settings) as cluster:
        assert cluster is not None
        found = partitioned_features(
            cluster, engine, observations, settings=settings, features=configured_features(settings)
        )
        assert len(found.parts) == 7
        held_by = {
            worker for workers in cluster.client.who_has(found.parts).values() for worker in workers
        }
        gathered = found.gather()
    assert len(held_by) == 2  # both workers computed partitions
    assert gathered.height == observations.height
    assert_frame_equal(gathered, local, check_exact=True)


def test_a_retrain_on_the_cluster_is_as_good_as_local_and_serves_like_any_model(
    lender: Loaded, dask_cluster: DaskProcesses
) -> None:
    engine = lender.engine
    here = retrain(engine, lender.settings, seed=11, reason="local")
    local_files = sorted(
        p.name for p in (lender.settings.model_dir / "versions" / str(here.model_version)).iterdir()
    )
    _forget_retraining(engine)
    stages: list[str] = []
    on_cluster = retrain(
        engine,
        _on(lender, dask_cluster.address),
        seed=11,
        reason="on the cluster",
        hooks=Hooks(on_stage=stages.append),
    )

    assert (here.status, on_cluster.status) == (RunStatus.SUCCESS, RunStatus.SUCCESS)
    # the same split (holdout, validation customers), trained with xgboost.dask
    assert on_cluster.parts["method"] == here.parts["method"] == "validation"
    for part in ("fit", "holdout", "validation"):
        assert on_cluster.parts[part] == here.parts[part]
    assert abs(on_cluster.metrics["auc"] - here.metrics["auc"]) <= 0.01
    assert on_cluster.metrics["auc"] > 0.75
    assert {"features", "train", "evaluate", "register"} <= set(stages)
    assert {"features", "train"} <= set(on_cluster.stage_seconds)

    # registered as any version: the champion, the same files, the customers marked trained
    version = str(on_cluster.model_version)
    with engine.connect() as connection:
        assert current_champion(connection) == version
        trained = connection.execute(
            select(func.count()).select_from(schema.customer_training_status)
        ).scalar_one()
    assert trained == on_cluster.customers_trained
    files = sorted(p.name for p in (lender.settings.model_dir / "versions" / version).iterdir())
    assert files == local_files
    champion = load_champion(
        engine, lender.settings.model_dir, configured_features(lender.settings)
    )
    assert champion is not None and champion.version == version
    # ... and it serves in one process, with no cluster
    ids = lender.data.customers["customer_id"].head(50)
    scores = score_customers(
        engine,
        lender.settings,
        as_of=date(2025, 1, 1),
        customer_ids=ids,
    )
    assert scores.height == 50 and set(scores["model_version"]) == {version}
    assert scores["risk_score"].is_between(0, 1).all() and scores["risk_score"].n_unique() > 10


@pytest.mark.parametrize("killed", [1, 2], ids=["one-worker-lost", "every-worker-lost"])
def test_workers_killed_during_a_retrain_leave_no_half_state(
    lender: Loaded, tmp_path: Path, killed: int
) -> None:
    """Workers die as training starts, each holding feature partitions. One of two lost:
    Dask computes its partitions again on the other, and the run succeeds. Both lost: the
    tasks cannot run anywhere, and the run fails cleanly. Either way the state is whole."""
    with start_cluster(tmp_path / "dask", workers=2) as cluster:

        def kill_at_train(stage: str) -> None:
            if stage == "train":
                for index in range(killed):
                    cluster.kill_worker(index)

        result = retrain(
            lender.engine,
            _on(lender, cluster.address),
            seed=5,
            reason="workers die",
            hooks=Hooks(on_stage=kill_at_train),
        )
    assert [worker.returncode for worker in cluster.workers[:killed]] == [-9] * killed
    _assert_whole(lender, result)
    assert result.status == (RunStatus.SUCCESS if killed == 1 else RunStatus.FAILED)


def _assert_whole(lender: Loaded, result: RetrainResult) -> None:
    engine = lender.engine
    with engine.connect() as connection:
        logged = connection.execute(select(schema.model_retraining_log)).mappings().all()
        champion = current_champion(connection)
    counts = _counts(engine)
    assert len(logged) == 1 and logged[0]["status"] == result.status.value
    if result.status == RunStatus.FAILED:
        assert "Dask cluster failed" in str(result.error)
        assert champion is None
        assert counts["customer_training_status"] == 0 and counts["model_versions"] == 0
        versions = lender.settings.model_dir / "versions"
        assert not versions.exists() or not any(versions.iterdir())
    else:
        assert result.status == RunStatus.SUCCESS and result.promoted
        assert champion == result.model_version
        labelled = lender.data.labels["customer_id"].n_unique()
        assert counts["customer_training_status"] == result.customers_trained == labelled
        assert (lender.settings.model_dir / "versions" / str(result.model_version)).is_dir()


def test_dask_mode_refuses_sqlite_before_anything_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'predelinq.db'}"
    engine = open_database(Settings(database_url=url))
    with pytest.raises(DaskModeError, match="needs PostgreSQL"):
        retrain(engine, Settings(database_url=url, dask_scheduler="local"))
    done = run_cli("retrain", "--dask-scheduler", "tcp://127.0.0.1:8786", database_url=url)
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert "Dask mode needs PostgreSQL" in done.stderr and "Traceback" not in done.stderr
    assert _counts(engine)["model_retraining_log"] == 0


def test_a_scheduler_that_does_not_answer_is_exit_3_and_logs_nothing(lender: Loaded) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    done = run_cli("retrain", "--dask-scheduler", address, database_url=lender.database.url)
    assert done.returncode == ExitCode.DATABASE, done.stderr
    assert f"no Dask scheduler answered at {address}" in done.stderr
    assert "Traceback" not in done.stderr
    assert _counts(lender.engine)["model_retraining_log"] == 0
    # not an address at all: a usage error, named
    done = run_cli("retrain", "--dask-scheduler", "foo", database_url=lender.database.url)
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert "'foo' is not a Dask scheduler address" in done.stderr
    assert "Traceback" not in done.stderr
    assert _counts(lender.engine)["model_retraining_log"] == 0


def test_check_with_a_local_cluster_trains_the_first_model(lender: Loaded, tmp_path: Path) -> None:
    """``--dask-scheduler local``: the command starts a LocalCluster of its own."""
    done = run_cli(
        "check",
        "--json",
        "--dask-scheduler",
        "local",
        database_url=lender.database.url,
        cwd=tmp_path,
    )
    assert done.returncode == ExitCode.OK, done.stderr
    with lender.engine.connect() as connection:
        assert current_champion(connection) is not None
    assert '"status": "success"' in done.stdout


def test_scores_on_the_cluster_equal_the_local_paths(
    lender: Loaded, dask_cluster: DaskProcesses, tmp_path: Path
) -> None:
    """``predelinq score --dask-scheduler``: each partition scored on a worker, the same
    scores as in one process, and logged once, by the client."""
    engine = lender.engine
    assert retrain(engine, lender.settings, seed=3).promoted
    quiet = lender.settings.model_copy(update={"log_predictions": False})
    local = score_customers(engine, quiet, as_of=date(2025, 1, 1))
    output = tmp_path / "scores.csv"
    done = run_cli(
        "score",
        "--as-of",
        "2025-01-01",
        "--dask-scheduler",
        dask_cluster.address,
        "--output",
        str(output),
        database_url=lender.database.url,
        cwd=tmp_path,
        env={
            "PREDELINQ_MODEL_DIR": str(lender.settings.model_dir),
            "PREDELINQ_DASK_PARTITION_CUSTOMERS": "300",
        },
    )
    assert done.returncode == ExitCode.OK, done.stderr
    on_cluster = pl.read_csv(output, try_parse_dates=True)
    assert on_cluster.height == local.height > 1_500
    assert on_cluster["customer_id"].to_list() == local["customer_id"].to_list()
    assert np.allclose(on_cluster["risk_score"], local["risk_score"], rtol=0, atol=1e-9)
    assert on_cluster["data_age_days"].to_list() == local["data_age_days"].to_list()
    with engine.connect() as connection:
        logged = connection.execute(select(func.count()).select_from(schema.predictions))
        assert logged.scalar_one() == local.height  # the client's one log write


def test_a_backtest_with_features_on_the_cluster_replays_as_locally(
    lender: Loaded, dask_cluster: DaskProcesses
) -> None:
    plan = Plan(
        start=date(2024, 7, 1),
        end=date(2024, 12, 1),
        every=Every(1, "mo"),
        policies=(Policy.NEVER, Policy.ALWAYS),
    )
    settings = lender.settings.model_copy(update={"max_customers": 300})
    local = run_backtest(lender.engine, settings, plan).as_json()
    on_cluster = run_backtest(
        lender.engine, _on(lender, dask_cluster.address, max_customers=300), plan
    ).as_json()
    assert on_cluster["rows"] == local["rows"]
    assert len(local["rows"]) == 10 and all(row["auc"] for row in local["rows"][5:])
