"""The model commands: models (the registry), promote and rollback (the champion, recorded),
and score (the champion's risk for customers as of a date)."""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from predelinq.cli.common import (
    CustomersOption,
    DaskSchedulerOption,
    JsonOption,
    console,
    customer_ids_option,
    errors,
    open_database,
    print_json,
    single_file,
    table,
    unknown_customer_ids,
    warn_seed_export,
)
from predelinq.cli.progress import StageSpinner
from predelinq.config import Settings
from predelinq.statuses import ChampionAction

if TYPE_CHECKING:
    from predelinq.modeling.registry import ChampionMoved

commands = typer.Typer()


@commands.command()
def models(as_json: JsonOption = False) -> None:
    """Every registered model version, newest first, with the champion marked."""
    from predelinq.modeling.registry import list_versions

    engine = open_database(Settings())
    with engine.connect() as connection:
        versions = list_versions(connection)
    if as_json:
        print_json([version.as_record() for version in versions])
        return
    shown = table("version", "created", "champion", "auc", "threshold", "sha256", title="models")
    for row in versions:
        shown.add_row(
            escape(row.version),
            f"{row.created_at:%Y-%m-%d %H:%M:%S}",
            "★" if row.champion else "",
            f"{row.auc or math.nan:.4f}",
            f"{row.threshold:.4f}",
            row.sha256[:12],
        )
    console.print(shown)


def _move_champion(action: ChampionAction, version: str | None) -> ChampionMoved:
    """Promote or roll back, recorded as done by the CLI."""
    from predelinq.modeling.registry import move_champion

    settings = Settings()
    return move_champion(
        open_database(settings), settings.model_dir, action=action, actor="cli", to_version=version
    )


@commands.command()
def promote(
    version: Annotated[str, typer.Argument(help="The version to put in service.")],
    as_json: JsonOption = False,
) -> None:
    """Make a registered version the champion (recorded)."""
    move = _move_champion(ChampionAction.PROMOTE, version)
    if as_json:
        print_json(
            {
                "champion": version,
                "previous": move.previous,
                "seed_export_error": move.seed_export_error,
            }
        )
    else:
        console.print(f"champion: {escape(move.previous or '-')} -> {escape(version)}")
    warn_seed_export(move.seed_export_error)


@commands.command()
def rollback(
    to: Annotated[
        str | None, typer.Option("--to", help="A version; default: the previous champion.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Put the previous champion (or --to VERSION) back in service (recorded)."""
    move = _move_champion(ChampionAction.ROLLBACK, to)
    if as_json:
        print_json({"champion": move.champion, "seed_export_error": move.seed_export_error})
    else:
        console.print(f"champion rolled back to {escape(move.champion)}")
    warn_seed_export(move.seed_export_error)


@commands.command()
def score(
    output: Annotated[Path, typer.Option("--output", dir_okay=False, help="CSV file to write.")],
    as_of: Annotated[
        datetime | None, typer.Option("--as-of", formats=["%Y-%m-%d"], help="Date; default today.")
    ] = None,
    customers: CustomersOption = None,
    dask_scheduler: DaskSchedulerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score customers with the champion as of a date: customer_id, risk_score, model_version."""
    from predelinq.serving.score import score_customers

    settings = Settings()
    if dask_scheduler:
        settings = settings.model_copy(update={"dask_scheduler": dask_scheduler})
    day = (as_of or datetime.now()).date()
    ids = customer_ids_option(single_file("--customers", customers))
    engine = open_database(settings)
    try:
        with StageSpinner("scoring", enabled=not as_json) as stage:
            scores = score_customers(engine, settings, as_of=day, customer_ids=ids, progress=stage)
    finally:
        engine.dispose()
    unknown = unknown_customer_ids(ids, scores["customer_id"])
    output.parent.mkdir(parents=True, exist_ok=True)
    scores.write_csv(output)
    version = scores["model_version"][0] if scores.height else None
    latest = scores["last_event_at"].max() if scores.height else None
    newest = latest if isinstance(latest, datetime) else None
    youngest = scores["data_age_days"].min() if newest is not None else None
    age = int(youngest) if isinstance(youngest, int) else None
    stale = scores.height > 0 and (age is None or age > settings.stale_data_days)
    if stale:
        errors.print(
            f"[yellow]warning:[/yellow] {_staleness(newest, age, day, settings.stale_data_days)}",
            highlight=False,
        )
    if as_json:
        print_json(
            {
                "customers": scores.height,
                "as_of": day,
                "model_version": version,
                "output": str(output),
                "unknown_customer_ids": unknown,
                "newest_event_at": newest,
                "data_age_days": age,
                "stale_data": stale,
            }
        )
    else:
        console.print(
            f"scored {scores.height:,} customers as of {day} with {escape(str(version))} -> "
            f"{escape(str(output))}"
        )


def _staleness(newest: datetime | None, age: int | None, day: date, limit: int) -> str:
    if newest is None:
        return (
            f"the scored customers have no transaction or payment before {day}: their scores "
            "rest on customer fields alone. Ingest their events or pass --as-of."
        )
    return (
        f"the newest event of the scored customers is {age} days before {day} "
        f"({newest:%Y-%m-%d}); scores describe the customers as they were then (warned above "
        f"{limit} days: PREDELINQ_STALE_DATA_DAYS). Ingest newer data or pass --as-of."
    )
