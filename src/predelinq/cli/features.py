"""The ``features`` group: the feature registry (list) and point-in-time exports (export)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from predelinq.cli.common import (
    CustomersOption,
    ExitCode,
    JsonOption,
    console,
    customer_ids_option,
    fail,
    open_database,
    print_json,
    single_file,
    table,
    unknown_customer_ids,
)
from predelinq.cli.progress import StageSpinner
from predelinq.config import Settings

features_app = typer.Typer(
    help="Point-in-time features: the registry and exports.", no_args_is_help=True
)


@features_app.command("list")
def features_list(as_json: JsonOption = False) -> None:
    """Every declared feature (built-in, then yours) with its family, origin and definition."""
    from predelinq.features import configured_features
    from predelinq.features.docs import describe

    rows = [describe(feature) for feature in configured_features(Settings()).features]
    if as_json:
        print_json(rows)
        return
    shown = table("name", "family", "origin", "definition", title=f"{len(rows)} features")
    for row in rows:
        shown.add_row(row["name"], row["family"], escape(row["origin"]), escape(row["definition"]))
    console.print(shown)


@features_app.command("export")
def features_export(
    as_of: Annotated[
        datetime, typer.Option("--as-of", formats=["%Y-%m-%d"], help="Observation date.")
    ],
    output: Annotated[
        Path, typer.Option("--output", dir_okay=False, help="A .csv or .parquet file.")
    ],
    customers: CustomersOption = None,
) -> None:
    """Write one row of features per customer as of a date (events before that date only)."""
    from predelinq.features.export import export_features

    ids_file = single_file("--customers", customers)

    if output.suffix.lower() not in (".csv", ".parquet"):
        fail(
            ExitCode.USAGE,
            f"--output must end in .csv or .parquet, not {escape(repr(output.name))}",
        )
    settings = Settings()
    ids = customer_ids_option(ids_file)
    engine = open_database(settings)
    try:
        with StageSpinner("exporting features", enabled=True) as stage:
            features = export_features(
                engine,
                as_of=as_of.date(),
                output_path=output,
                customer_ids=ids,
                settings=settings,
                progress=stage,
            )
    finally:
        engine.dispose()
    unknown_customer_ids(ids, features["customer_id"])
    count = f"{features.height:,} customers x {features.width - 2} features"
    console.print(f"{count} as of {as_of.date()} -> {output}")
