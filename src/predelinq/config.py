"""One typed Settings object, read from environment variables and an optional TOML file.

Precedence (highest first): explicit arguments, environment variables, ``predelinq.toml``
(in the working directory, or the file named by ``PREDELINQ_CONFIG``), defaults.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from predelinq.config_tables import MonitoringSettings, TrainingSettings, TriggerSettings

DEFAULT_CONFIG_PATH = Path("predelinq.toml")


def config_file_path() -> Path:
    """The TOML file to read: ``PREDELINQ_CONFIG`` if set, else ``./predelinq.toml``."""
    return Path(os.environ.get("PREDELINQ_CONFIG", DEFAULT_CONFIG_PATH))


def _env(name: str) -> AliasChoices:
    """A setting read from the environment variable ``PREDELINQ_<NAME>``, or by its own name
    (TOML keys, arguments)."""
    return AliasChoices(f"PREDELINQ_{name.upper()}", name)


class Settings(BaseSettings):
    """Every setting of predelinq. Environment variable names are given per field."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str = Field(
        default="sqlite:///data/predelinq.db",
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
        description=(
            "Database to use: `sqlite:///path` (embedded default) or a libpq URL "
            "`postgresql://user@host:port/db`. Env: DATABASE_URL."
        ),
    )
    model_dir: Path = Field(
        default=Path("data/models"),
        validation_alias=_env("model_dir"),
        description="Directory for model artifacts. Env: PREDELINQ_MODEL_DIR.",
    )

    threads: int = Field(
        default_factory=lambda: all_cores(),
        ge=1,
        validation_alias=_env("threads"),
        description=(
            "Threads for feature computation, training and scoring; empty: all cores "
            "(those this process may run on)."
        ),
    )
    read_connections: int = Field(
        default=None,  # resolved to `threads` by the validator
        validate_default=True,
        ge=1,
        validation_alias=_env("read_connections"),
        description=(
            "Database connections a large feature read uses at once (decoding rows is "
            "CPU-bound in the database client); empty: as many as threads."
        ),
    )
    large_read_customers: int = Field(
        default=5_000,
        ge=1,
        validation_alias=_env("large_read_customers"),
        description=(
            "From this many customers a feature read of the CLI or library is large: it uses "
            "read_connections connections, and on SQLite a short-lived child process. The API "
            "always reads in its own process."
        ),
    )
    dask_scheduler: str | None = Field(
        default=None,
        validation_alias=_env("dask_scheduler"),
        description=(
            "Compute features and train on a Dask cluster: the scheduler's address "
            "(`tcp://host:8786`), or `local` for a LocalCluster of `threads` worker processes; "
            "empty: in this process. Needs PostgreSQL and `predelinq[dask]`."
        ),
    )
    dask_partition_customers: int = Field(
        default=25_000,
        ge=1,
        validation_alias=_env("dask_partition_customers"),
        description=(
            "Dask mode: customers per partition (each is read and computed by one worker "
            "task); at least one partition per worker."
        ),
    )

    new_customer_threshold: int = Field(
        default=50,
        ge=1,
        validation_alias=_env("new_customer_threshold"),
        description="Retrain when at least this many labelled customers are not yet trained on.",
    )
    max_customers: int | Literal["all"] = Field(
        default=200,
        validation_alias=_env("max_customers"),
        description="Customers per retrain (untrained first, then the rest at random), or all.",
    )
    gate_tolerance: float = Field(
        default=0.02,
        ge=0,
        validation_alias=_env("gate_tolerance"),
        description=(
            "Promote a new model unless it is worse than the champion by more than this AUC, "
            "at 95% confidence, on the same holdout rows."
        ),
    )
    admin_token: SecretStr | None = Field(
        default=None,
        validation_alias=_env("admin_token"),
        description="Bearer token for trigger, promote and rollback. Required to serve.",
    )
    read_token: SecretStr | None = Field(
        default=None,
        validation_alias=_env("read_token"),
        description="Optional bearer token for scoring and read endpoints.",
    )
    dev_mode: bool = Field(
        default=False,
        validation_alias=_env("dev_mode"),
        description="Development only: serve without an admin token (admin endpoints open).",
    )
    reload_seconds: float = Field(
        default=2.0,
        gt=0,
        validation_alias=_env("reload_seconds"),
        description="How often each API worker checks for a new champion.",
    )
    serve_threads: int = Field(
        default=8,
        ge=1,
        validation_alias=_env("serve_threads"),
        description="Requests each API worker handles at once; it keeps as many connections.",
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        validation_alias=_env("max_body_bytes"),
        description=(
            "Largest request body the API accepts (413 above it); the default holds a "
            "/predict/batch of 100,000 ids of up to 36 characters."
        ),
    )
    stale_data_days: int = Field(
        default=30,
        ge=1,
        validation_alias=_env("stale_data_days"),
        description=(
            "`score` warns when the newest event of the scored customers is older than this "
            "many days before the scoring date."
        ),
    )
    risk_bands: tuple[float, float] = Field(
        default=(0.2, 0.5),
        validation_alias=_env("risk_bands"),
        description="Scores below the first are low risk, below the second medium, else high.",
    )

    log_predictions: bool = Field(
        default=True,
        validation_alias=_env("log_predictions"),
        description="Append every score served (API and `score`) to the predictions table.",
    )
    prediction_retention_days: int = Field(
        default=400,
        ge=1,
        validation_alias=_env("prediction_retention_days"),
        description="Logged predictions older than this many days are deleted.",
    )
    label_horizon_days: int = Field(
        default=60,
        ge=1,
        validation_alias=_env("label_horizon_days"),
        description=(
            "A label matures once its observation date is this many days old: realised "
            "performance and the backtest use matured labels only."
        ),
    )

    training: TrainingSettings = Field(
        default_factory=TrainingSettings,
        description="`[training]` table: how models are fitted (see TrainingSettings).",
    )
    monitoring: MonitoringSettings = Field(
        default_factory=MonitoringSettings,
        description="`[monitoring]` table: the drift population and thresholds.",
    )
    triggers: TriggerSettings = Field(
        default_factory=TriggerSettings,
        description="`[triggers]` table: what makes `check` retrain, and the cooldown.",
    )
    categories: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "`[categories]` table: a lender's transaction category -> the canonical one "
            "(salary, rent, utilities, loan, fees, penalty_interest, returned_payment, cash, "
            "transfer, interest, ...); unmapped values are kept as they are."
        ),
    )
    features: list[dict[str, Any]] = Field(
        default_factory=list,
        description=(
            "`[[features]]` tables: your own features, in the vocabulary of docs/features.md; "
            "they follow the built-in ones."
        ),
    )

    @field_validator("threads", mode="before")
    @classmethod
    def _threads(cls, value: object) -> object:
        return all_cores() if value is None or value == "" else value

    @field_validator("read_connections", mode="before")
    @classmethod
    def _read_connections(cls, value: object, info: ValidationInfo) -> object:
        if value is None or value == "":
            return info.data.get("threads", 1)  # absent: `threads` was refused, which says so
        return value

    @field_validator("max_customers", mode="before")
    @classmethod
    def _max_customers(cls, value: object) -> object:
        return parse_max_customers(value) if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgres://", "postgresql+")):
            raise ValueError(
                f"unsupported DATABASE_URL scheme in {value.split('://')[0]!r}: "
                "use sqlite:///path or postgresql://user@host:port/db"
            )
        try:
            make_url(sqlalchemy_url(value)).port  # noqa: B018 - parsing the port can fail
        except (ArgumentError, ValueError):
            raise ValueError(
                f"DATABASE_URL {redact_url(value)} is not a valid URL "
                "(sqlite:///path or postgresql://user:password@host:port/db)"
            ) from None
        return value

    @property
    def sqlalchemy_url(self) -> str:
        """The URL mapped to the drivers we use (psycopg 3 for PostgreSQL)."""
        return sqlalchemy_url(self.database_url)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file_path())
        return (init_settings, env_settings, toml)


def all_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one, as in a
    container limited to some cores), else every core of the machine."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def parse_max_customers(value: str) -> int | Literal["all"]:
    """``all`` or a positive whole number, as given on the command line or in the environment."""
    text = value.strip().lower()
    if text == "all":
        return "all"
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise ValueError(f"max_customers must be a positive number or 'all', not {value!r}")


def sqlalchemy_url(database_url: str) -> str:
    """Map a libpq-style URL to SQLAlchemy's psycopg 3 driver; leave others alone."""
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    return database_url


def redact_url(database_url: str) -> str:
    """The URL with any password (in the user part or a ``password=`` parameter) replaced,
    safe for logs and messages."""
    scheme, sep, rest = database_url.partition("://")
    if not sep:
        return database_url
    location, question, query = rest.partition("?")
    query = re.sub(r"(?i)((?:^|&)\w*password=)[^&]*", r"\1***", query)
    if "@" in location:
        credentials, _, host = location.rpartition("@")
        user = credentials.split(":", 1)[0]
        location = f"{user}:***@{host}" if ":" in credentials else f"{user}@{host}"
    return f"{scheme}://{location}{question}{query}"
