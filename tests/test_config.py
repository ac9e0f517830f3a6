"""Settings: defaults, environment, TOML file, URL mapping and redaction."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from predelinq.config import Settings, redact_url, sqlalchemy_url


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    for name in [name for name in os.environ if name.startswith("PREDELINQ_")] + ["DATABASE_URL"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_embedded_database():
    settings = Settings()
    assert settings.database_url == "sqlite:///data/predelinq.db"
    assert settings.model_dir == Path("data/models")


def test_toml_file_then_environment_override(tmp_path, monkeypatch):
    (tmp_path / "predelinq.toml").write_text(
        'database_url = "sqlite:///from_toml.db"\nmodel_dir = "m"\n'
    )
    assert Settings().database_url == "sqlite:///from_toml.db"
    assert Settings().model_dir == Path("m")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h:5432/db")
    assert Settings().database_url == "postgresql://u@h:5432/db"
    monkeypatch.setenv("PREDELINQ_MODEL_DIR", "/srv/models")
    assert Settings().model_dir == Path("/srv/models")


def test_config_file_named_by_environment(tmp_path, monkeypatch):
    other = tmp_path / "elsewhere.toml"
    other.write_text('database_url = "sqlite:///other.db"\n')
    monkeypatch.setenv("PREDELINQ_CONFIG", str(other))
    assert Settings().database_url == "sqlite:///other.db"


def test_libpq_urls_map_to_psycopg3():
    assert sqlalchemy_url("postgresql://u@h:5432/db") == "postgresql+psycopg://u@h:5432/db"
    assert sqlalchemy_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlalchemy_url("sqlite:///x.db") == "sqlite:///x.db"


def test_unknown_scheme_is_refused():
    with pytest.raises(ValidationError, match="unsupported DATABASE_URL"):
        Settings(database_url="mysql://u@h/db")


def test_redaction_hides_passwords_only():
    assert redact_url("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact_url("sqlite:///data/x.db") == "sqlite:///data/x.db"


def test_training_table_merges_xgboost_params_and_refuses_unknown_keys(tmp_path, monkeypatch):
    from predelinq.retraining.run import training_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "predelinq.toml").write_text(
        "[training]\nfolds = 10\ncv_max_rows = 800\n\n[training.params]\nmax_depth = 2\n"
    )
    config = training_config(Settings(), seed=7)
    assert (config.folds, config.cv_max_rows, config.seed) == (10, 800, 7)
    assert config.params["max_depth"] == 2 and config.params["eta"] == 0.1  # over the defaults
    (tmp_path / "predelinq.toml").write_text("[training]\nfold = 10\n")
    with pytest.raises(ValidationError, match="fold"):
        Settings()


def test_redaction_covers_password_parameters_and_at_signs():
    assert redact_url("postgresql://h/db?password=pw&sslmode=require") == (
        "postgresql://h/db?password=***&sslmode=require"
    )
    assert redact_url("postgresql://h/db?sslpassword=pw") == "postgresql://h/db?sslpassword=***"
    assert redact_url("postgresql://u:p@ss@h/db?a=b@c") == "postgresql://u:***@h/db?a=b@c"


def test_threads_default_to_every_core_this_process_may_use(monkeypatch):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert Settings().threads == cores
    monkeypatch.setenv("PREDELINQ_THREADS", "")  # empty: all cores, as the README says
    assert Settings().threads == cores
    monkeypatch.setenv("PREDELINQ_THREADS", "3")
    assert Settings().threads == 3
    with pytest.raises(ValidationError, match="threads"):
        Settings(threads=0)


def test_read_connections_follow_threads_unless_set(monkeypatch):
    assert Settings(threads=3).read_connections == 3
    assert Settings(threads=3, read_connections=1).read_connections == 1
    monkeypatch.setenv("PREDELINQ_READ_CONNECTIONS", "4")
    assert Settings(threads=1).read_connections == 4
    monkeypatch.setenv("PREDELINQ_LARGE_READ_CUSTOMERS", "10")
    assert Settings().large_read_customers == 10
    with pytest.raises(ValidationError, match="read_connections"):
        Settings(read_connections=0)
