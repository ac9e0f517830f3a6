"""Issue 11, items 3, 10, 11 and 19 (rollback to an unknown version): champion moves are
serialised and a retrain never undoes a move made while it ran; a champion whose artifact is
missing or corrupt, and a model directory that cannot be written, give one clear line, the
documented exit code and a logged attempt, never a traceback or debris. On SQLite and
PostgreSQL, through the real CLI (typer's runner on ``predelinq.cli.app.app``), the library and a
real uvicorn server."""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from sqlalchemy import select
from typer.testing import CliRunner

from predelinq.api import create_app
from predelinq.cli.app import app as cli_app
from predelinq.db import schema
from predelinq.modeling.artifacts import ArtifactWriteError, save_artifact
from predelinq.modeling.registry import (
    current_champion,
    get_version,
    move_champion,
    promote,
    rollback,
)
from predelinq.retraining.result import Hooks
from predelinq.retraining.run import retrain
from predelinq.statuses import ChampionAction
from support.factories import version_of
from support.http import ADMIN, serve


def cli(*args: str):
    result = CliRunner().invoke(cli_app, list(args), env={"COLUMNS": "200"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def champion_of(engine) -> str | None:
    with engine.connect() as connection:
        return current_champion(connection)


def log_rows(engine) -> list:
    log = schema.model_retraining_log
    with engine.connect() as connection:
        return connection.execute(select(log).order_by(log.c.retrain_id)).all()


def changes(engine) -> list:
    table = schema.champion_changes
    with engine.connect() as connection:
        query = select(table.c.from_version, table.c.to_version, table.c.action)
        return connection.execute(query.order_by(table.c.change_id)).all()


def artifact_of(engine, model_dir: Path, version: str) -> Path:
    with engine.connect() as connection:
        return model_dir / get_version(connection, version).artifact_path


def one_line_without_traceback(text: str) -> None:
    assert "Traceback" not in text and text.strip().count("\n") == 0, text


# --- item 3: champion moves are serialised ---------------------------------------------------


def test_a_rollback_during_a_retrain_stands(loaded):
    """The retrain's gate judged against B; a rollback to A came before its commit: the
    retrain is kept out, registered as rejected, and A stays in service."""
    database, settings = loaded.database, loaded.settings
    first = version_of(retrain(database.engine, settings, seed=1, force=True))
    second = version_of(retrain(database.engine, settings, seed=2, force=True))
    assert champion_of(database.engine) == second

    def rollback_meanwhile() -> None:
        assert rollback(database.engine, settings.model_dir, actor="operator") == first

    third = retrain(
        database.engine, settings, seed=3, force=True, hooks=Hooks(before_commit=rollback_meanwhile)
    )

    assert champion_of(database.engine) == first
    assert (third.status, third.promoted) == ("rejected", False)
    assert f"champion changed during the retrain (from {second} to {first})" in third.gate
    assert changes(database.engine)[-1] == (second, first, "rollback")
    row = log_rows(database.engine)[-1]
    assert (row.model_version, row.status, row.promoted) == (third.model_version, "rejected", False)
    assert "champion changed during the retrain" in row.decision
    with database.engine.connect() as connection:
        stored = get_version(connection, version_of(third)).details
    assert "champion changed during the retrain" in stored["gate"]
    exported = settings.model_dir / "quick" / "quick_model.json"
    assert (
        exported.read_bytes()
        == artifact_of(database.engine, settings.model_dir, first).read_bytes()
    )


def test_a_promote_before_a_first_model_commits_stands(loaded):
    """No champion when the retrain started, one promoted by hand before it committed."""
    database, settings = loaded.database, loaded.settings
    earlier = version_of(retrain(database.engine, settings, seed=4, force=True))
    with database.engine.begin() as connection:  # back to no champion, as on a new install
        connection.execute(schema.model_champion.delete())
        connection.execute(schema.champion_changes.delete())

    def promote_meanwhile() -> None:
        promote(database.engine, settings.model_dir, earlier, actor="operator")

    late = retrain(database.engine, settings, seed=5, hooks=Hooks(before_commit=promote_meanwhile))

    assert champion_of(database.engine) == earlier and late.promoted is False
    assert f"(from none to {earlier})" in late.gate


def test_concurrent_champion_moves_form_one_consistent_history(loaded):
    """Four threads promote and roll back at once: every move starts from the champion the
    previous one left, and none fails."""
    database, settings = loaded.database, loaded.settings
    versions = [
        version_of(retrain(database.engine, settings, seed=seed, force=True)) for seed in (6, 7, 8)
    ]
    start, failures = threading.Barrier(4), []

    def mover(offset: int) -> None:
        start.wait()
        for step in range(8):
            version = versions[(offset + step) % len(versions)]
            try:
                if step % 2:
                    rollback(
                        database.engine, settings.model_dir, actor=f"t{offset}", to_version=version
                    )
                else:
                    promote(database.engine, settings.model_dir, version, actor=f"t{offset}")
            except Exception as error:  # noqa: BLE001 - every failure is reported below
                failures.append(repr(error))

    threads = [threading.Thread(target=mover, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    history = changes(database.engine)
    assert failures == []
    assert len(history) == 3 + 4 * 8
    for before, after in zip(history, history[1:], strict=False):
        assert after.from_version == before.to_version, history
    champion = champion_of(database.engine)
    assert champion is not None and history[-1].to_version == champion
    exported = settings.model_dir / "quick" / "quick_model.json"
    assert (
        exported.read_bytes()
        == artifact_of(database.engine, settings.model_dir, champion).read_bytes()
    )


# --- item 10: a champion whose artifact is missing or corrupt --------------------------------


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_a_broken_champion_gives_a_clear_exit_3_and_a_retrain_replaces_it_only_with_force(
    loaded, tmp_path, damage
):
    database, settings = loaded.database, loaded.settings
    good = version_of(retrain(database.engine, settings, seed=11, force=True))
    broken = version_of(retrain(database.engine, settings, seed=12, force=True))
    artifact = artifact_of(database.engine, settings.model_dir, broken)
    if damage == "corrupt":
        artifact.write_bytes(artifact.read_bytes()[:-10] + b"0000000000")
    else:
        artifact.unlink()

    scored = cli("score", "--as-of", "2024-10-01", "--output", str(tmp_path / "s.csv"))
    assert scored.exit_code == 3, scored.output
    one_line_without_traceback(scored.stderr)
    assert broken in scored.stderr and "predelinq promote VERSION" in scored.stderr
    assert "rollback" in scored.stderr
    assert ("missing" if damage == "missing" else "fails verification") in scored.stderr

    kept_out = cli("retrain", "--seed", "13", "--json")
    assert kept_out.exit_code == 3, kept_out.output
    assert "Traceback" not in kept_out.stderr and broken in kept_out.stderr
    assert "--force" in kept_out.stderr
    report = json.loads(kept_out.stdout)
    assert report["promoted"] is False and broken in report["champion_problem"]
    assert champion_of(database.engine) == broken
    logged = log_rows(database.engine)[-1]
    assert (logged.status, logged.model_version) == ("rejected", report["model_version"])
    assert f"the champion {broken} cannot be loaded" in logged.decision
    assert broken in logged.error and "predelinq promote VERSION" in logged.error

    promoted_broken = cli("promote", broken)
    assert promoted_broken.exit_code == 3 and broken in promoted_broken.stderr
    one_line_without_traceback(promoted_broken.stderr)

    forced = cli("retrain", "--seed", "14", "--force", "--json")
    assert forced.exit_code == 0, forced.output
    replacement = json.loads(forced.stdout)
    assert replacement["promoted"] is True
    assert champion_of(database.engine) == replacement["model_version"]
    assert log_rows(database.engine)[-1].status == "success"
    assert cli("score", "--as-of", "2024-10-01", "--output", str(tmp_path / "s.csv")).exit_code == 0
    assert cli("rollback", "--to", good).exit_code == 0


def test_check_against_a_broken_champion_is_logged_and_exits_3(loaded):
    database, settings = loaded.database, loaded.settings
    broken = version_of(retrain(database.engine, settings, seed=15, max_customers=100, force=True))
    artifact_of(database.engine, settings.model_dir, broken).unlink()

    checked = cli("check", "--threshold", "1")

    assert checked.exit_code == 3, checked.output
    assert broken in checked.stderr and "Traceback" not in checked.output
    assert [row.status for row in log_rows(database.engine)] == ["success", "rejected"]
    assert champion_of(database.engine) == broken


# --- item 11: a model directory that cannot be written ---------------------------------------


def test_a_model_directory_beneath_a_file_exits_3_logged(loaded, tmp_path, monkeypatch):
    database = loaded.database
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the model directory's parent should be")
    monkeypatch.setenv("PREDELINQ_MODEL_DIR", str(blocker / "models"))

    result = cli("retrain", "--seed", "21")

    assert result.exit_code == 3, result.output
    one_line_without_traceback(result.stderr)
    assert str(blocker / "models") in result.stderr
    (row,) = log_rows(database.engine)
    assert (row.status, row.promoted, row.model_version) == ("failed", False, None)
    assert str(blocker / "models") in row.error
    assert champion_of(database.engine) is None
    with database.engine.connect() as connection:
        assert connection.execute(select(schema.model_versions)).first() is None
        status = connection.execute(select(schema.customer_training_status)).first()
    assert status is None  # no customer marked as trained


def test_a_versions_file_leaves_no_debris_and_the_next_retrain_works(loaded):
    database, settings = loaded.database, loaded.settings
    settings.model_dir.mkdir(parents=True)
    (settings.model_dir / "versions").write_text("not a directory")

    result = cli("retrain", "--seed", "22", "--json")

    assert result.exit_code == 3 and "model directory" in result.stderr
    assert log_rows(database.engine)[-1].status == "failed"
    assert sorted(p.name for p in settings.model_dir.iterdir()) == ["versions"]
    (settings.model_dir / "versions").unlink()
    assert cli("retrain", "--seed", "22").exit_code == 0


def test_a_failed_write_removes_the_half_written_version(tmp_path):
    """model.json written, metadata.json refused (a directory stands in its place): the
    version's folder goes, so no artifact lies around without a registry row."""
    blocked = tmp_path / "versions" / "v1" / "metadata.json"
    blocked.mkdir(parents=True)
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix([[0.0], [1.0]], [0, 1]), 1)

    with pytest.raises(ArtifactWriteError, match=str(tmp_path)):
        save_artifact(tmp_path, "v1", booster, {"a": 1})

    assert list((tmp_path / "versions").iterdir()) == []


def test_a_failed_seed_export_is_a_warning_and_the_status_shows_it(loaded):
    database, settings = loaded.database, loaded.settings
    quick = settings.model_dir / "quick"
    quick.parent.mkdir(parents=True)
    quick.write_text("a file where the seed's quick/ directory should be")

    result = cli("retrain", "--seed", "23", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["promoted"] is True and str(quick) in report["seed_export_error"]
    assert "warning" in result.stderr and "quick/quick_model.json is stale" in result.stderr
    assert champion_of(database.engine) == report["model_version"]
    row = log_rows(database.engine)[-1]
    assert (row.status, row.promoted) == ("success", True) and "seed export" in row.error
    status = json.loads(cli("status", "--json").stdout)
    assert status["seed_export"] == "missing"

    quick.unlink()
    moved = cli("promote", report["model_version"], "--json")
    assert moved.exit_code == 0 and json.loads(moved.stdout)["seed_export_error"] is None
    assert json.loads(cli("status", "--json").stdout)["seed_export"] == "current"

    shutil.rmtree(quick)
    quick.write_text("blocked again")
    rolled = cli("rollback", "--to", report["model_version"])
    assert rolled.exit_code == 0 and "stale" in rolled.stderr


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_artifacts_honour_the_umask(loaded, umask):
    database, settings = loaded.database, loaded.settings
    previous = os.umask(umask)
    try:
        version = version_of(retrain(database.engine, settings, seed=24))
    finally:
        os.umask(previous)
    folder = settings.model_dir / "versions" / version
    for path in (
        folder / "model.json",
        folder / "metadata.json",
        settings.model_dir / "quick" / "quick_model.json",
    ):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path


# --- the API: a broken champion, and moves to unknown or broken versions ---------------------


@pytest.fixture
def served(loaded):
    """A real uvicorn server on loopback; the champion's artifact was deleted before it
    started, and an earlier good version is registered. (This module's scenario, built with
    its ``artifact_of``: it stays here.)"""
    database, settings, data = loaded.database, loaded.settings, loaded.data
    good = version_of(retrain(database.engine, settings, seed=31, force=True))
    broken = version_of(retrain(database.engine, settings, seed=32, force=True))
    artifact_of(database.engine, settings.model_dir, broken).unlink()
    with serve(create_app(settings), timeout=60, log_level="error") as client:
        yield client, data, good, broken


def test_the_api_names_a_broken_champion_and_moves_answer_404_or_500(served):
    client, data, good, broken = served
    customer_id = data.labels["customer_id"][0]

    refused = client.post("/predict", json={"customer_id": customer_id, "as_of": "2024-10-01"})
    assert refused.status_code == 503
    detail = refused.json()["detail"]
    assert broken in detail and "predelinq promote VERSION" in detail
    assert "run a retrain first" not in detail
    assert client.get("/ready").status_code == 503

    assert client.post("/models/rollback", json={"to": "nope"}, headers=ADMIN).status_code == 404
    assert client.post("/models/nope/promote", headers=ADMIN).status_code == 404
    again = client.post(f"/models/{broken}/promote", headers=ADMIN)
    assert again.status_code == 500 and broken in again.json()["detail"]  # api/errors.py

    back = client.post("/models/rollback", json={"to": good}, headers=ADMIN)
    assert back.status_code == 200 and back.json()["champion"] == good
    scored = client.post("/predict", json={"customer_id": customer_id, "as_of": "2024-10-01"})
    assert scored.status_code == 200 and scored.json()["model_version"] == good


def test_move_champion_reports_the_previous_champion(loaded):
    database, settings = loaded.database, loaded.settings
    first = version_of(retrain(database.engine, settings, seed=41, force=True))
    second = version_of(retrain(database.engine, settings, seed=42, force=True))
    move = move_champion(
        database.engine, settings.model_dir, action=ChampionAction.ROLLBACK, actor="test"
    )
    assert (move.champion, move.previous, move.seed_export_error) == (first, second, None)


# --- the typed registry and the one way to load the champion --------------------------------


def test_load_champion_is_the_version_in_service_checked_and_verified(loaded):
    from predelinq.features.declarations import FeatureMismatchError, FeatureSet
    from predelinq.features.parse import configured_features
    from predelinq.modeling.artifacts import ArtifactError
    from predelinq.modeling.booster import predict
    from predelinq.modeling.registry import list_versions, load_champion, load_version

    database, settings = loaded.database, loaded.settings
    features = configured_features(settings)
    assert load_champion(database.engine, settings.model_dir, features) is None
    first = version_of(retrain(database.engine, settings, seed=51, force=True))
    second = version_of(retrain(database.engine, settings, seed=52, force=True))
    rollback(database.engine, settings.model_dir, actor="test")

    with database.engine.connect() as connection:
        champion = load_champion(connection, settings.model_dir, features)
        versions = list_versions(connection)
        registered = get_version(connection, first)
    assert champion is not None and champion.version == first
    assert champion.model_version == registered and registered.champion
    assert [(v.version, v.champion) for v in versions] == [(second, False), (first, True)]
    assert champion.feature_names == registered.feature_names == list(features.names)
    assert champion.columns == list(range(len(features.names)))
    assert champion.threshold == registered.threshold == registered.details["threshold"]
    assert registered.auc == registered.details["metrics"]["auc"]
    rows = np.random.default_rng(0).normal(size=(20, len(features.names)))
    again = load_version(settings.model_dir, registered)
    assert np.array_equal(predict(champion.booster, rows), predict(again, rows))

    # its features are checked before its artifact is read: the fix to name is "retrain"
    artifact_of(database.engine, settings.model_dir, first).unlink()
    fewer = FeatureSet(features.features[1:], features.categories)
    with pytest.raises(FeatureMismatchError, match=f"model {first} cannot be scored"):
        load_champion(database.engine, settings.model_dir, fewer)
    with pytest.raises(ArtifactError, match=f"the champion {first} cannot be used") as broken:
        load_champion(database.engine, settings.model_dir, features)
    assert broken.value.champion and "is missing" in broken.value.problem
