"""What the commands print where nobody watches a terminal (cron, CI, a pipe): nothing cut,
nothing wrapped at 80 columns, no progress bar; and errors as one line with an exit code."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from predelinq.cli.common import ExitCode
from predelinq.modeling.registry import list_versions
from support.cli import run_cli
from support.synthetic import write_synthetic

REPO = Path(__file__).parents[2]


def test_without_a_terminal_nothing_is_cut_or_wrapped(loaded):
    """Issue 12: with COLUMNS unset and stdout a pipe, rich fell back to 80 columns: version
    ids showed as `auto_…` and the gate's verdict was split across lines."""
    url = loaded.database.url
    retrained = run_cli("retrain", "--seed", "0", database_url=url, columns=None)
    assert retrained.returncode == 0, retrained.stderr
    run = json.loads(run_cli("history", "--json", database_url=url).stdout)[0]
    version, decision = run["model_version"], run["decision"]
    assert len(decision) > 80  # long enough to have been wrapped

    assert f"🛡️  {decision}" in retrained.stdout.splitlines()
    assert f"   Model version: {version}" in retrained.stdout.splitlines()
    history = run_cli("history", database_url=url, columns=None)
    models = run_cli("models", database_url=url, columns=None)
    for shown in (history, models):
        assert shown.returncode == 0, shown.stderr
        assert "…" not in shown.stdout
        assert any(version in line for line in shown.stdout.splitlines())
    # the verdict of each run, on the run's line
    (line,) = [line for line in history.stdout.splitlines() if version in line]
    assert decision in line and "success" in line


def test_history_shows_why_a_run_failed(database, tmp_path, monkeypatch):
    monkeypatch.setenv("PREDELINQ_MODEL_DIR", str(tmp_path / "models"))
    assert run_cli("retrain", database_url=database.url).returncode == ExitCode.RETRAIN_FAILED
    error = json.loads(run_cli("history", "--json", database_url=database.url).stdout)[0]["error"]
    history = run_cli("history", database_url=database.url, columns=None)
    assert error and f"failed: {error}" in history.stdout


def test_a_large_ingest_through_a_pipe_shows_no_progress(database, tmp_path):
    files = write_synthetic(tmp_path, file_format="csv").files
    assert files["transactions"].stat().st_size > 1_000_000  # a progress bar on a terminal
    args = [arg for name, path in files.items() for arg in (f"--{name}", str(path))]
    result = run_cli("ingest", *args, database_url=database.url, columns=None)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "transactions" in result.stdout


def test_promote_of_an_unknown_version_is_one_line_and_exit_3(database):
    result = run_cli("promote", "no_such_version", database_url=database.url)
    assert result.returncode == ExitCode.DATABASE
    assert result.stderr.splitlines() == ["registry: unknown model version 'no_such_version'"]
    assert result.stdout == ""
    rollback = run_cli("rollback", database_url=database.url)
    assert rollback.returncode == ExitCode.DATABASE and len(rollback.stderr.splitlines()) == 1


def test_score_with_a_corrupt_champion_artifact_is_exit_3(champion, tmp_path):
    with champion.engine.connect() as connection:
        (version,) = list_versions(connection)
    artifact = champion.settings.model_dir / version.artifact_path
    artifact.write_bytes(artifact.read_bytes() + b" ")
    output = tmp_path / "scores.csv"

    result = run_cli("score", "--output", str(output), database_url=champion.database.url)

    assert result.returncode == ExitCode.DATABASE
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"model artifact: the champion {version.version} cannot be used")
    assert "promote VERSION" in line and not output.exists()


def test_an_unreachable_database_is_one_line(tmp_path):
    result = run_cli("status", database_url="postgresql://u@127.0.0.1:1/db", cwd=tmp_path)
    assert result.returncode == ExitCode.DATABASE
    (line,) = result.stderr.splitlines()
    assert line.startswith("database postgresql://u@127.0.0.1:1/db failed: ")


def test_the_seeds_entry_point_runs_check(tmp_path):
    """`python check_and_retrain.py` (the seed's cron line) and, installed with the package,
    `python -m predelinq.check_and_retrain`: the same as `predelinq check`, exit codes too."""
    url = f"sqlite:///{tmp_path / 'p.db'}"
    for command in (
        [sys.executable, "-m", "predelinq.check_and_retrain"],
        [sys.executable, str(REPO / "check_and_retrain.py")],
    ):
        done = run_cli("--json", command=command, database_url=url, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["retraining_needed"] is False
        text = run_cli("--threshold", "7", command=command, database_url=url, cwd=tmp_path)
        assert "Below threshold (0 < 7): nothing to do" in text.stdout
        refused = run_cli("--threshold", "0", command=command, database_url=url, cwd=tmp_path)
        assert refused.returncode == ExitCode.USAGE


def test_serve_help_states_the_default_workers():
    result = run_cli("serve", "--help")
    assert "one worker process by default" in result.stdout
    assert "[default: 1]" in result.stdout
