"""CLI commands of the retraining engine: check, retrain, status, history, models, promote,
rollback, score, schedule. Registered on the main app by ``cli.py``."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from predelinq.cli.app import (
    EXIT_DATABASE_ERROR,
    _open_database,
    app,
    console,
    customer_ids_option,
    errors,
    feature_errors,
    single_file,
    unknown_customer_ids,
)
from predelinq.config import Settings, parse_max_customers

if TYPE_CHECKING:  # the retraining engine (and xgboost) load only when a command needs them
    from predelinq.retraining.result import Hooks

EXIT_RETRAIN_FAILED = 4
EXIT_BUSY = 75  # EX_TEMPFAIL: another retrain holds the lock; try again later
RULE = "=" * 60

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _print_json(value: Any) -> None:
    print(json.dumps(value, default=str))


def _run(function, *args, **kwargs):
    """Run a retrain, turning the lock, registry and feature errors into exit codes."""
    from predelinq.retraining.lock import RetrainingBusyError

    try:
        with feature_errors(), _registry_errors():
            return function(*args, **kwargs)
    except RetrainingBusyError as error:
        errors.print(f"[yellow]busy:[/yellow] {escape(str(error))}")
        raise typer.Exit(EXIT_BUSY) from error


@contextmanager
def _registry_errors() -> Iterator[None]:
    """An unknown version, an artifact that is missing or fails verification, or a model
    directory that cannot be written: one line, exit 3."""
    from predelinq.modeling.registry import ArtifactError, ArtifactWriteError, RegistryError

    try:
        yield
    except RegistryError as error:
        label = {ArtifactError: "model artifact", ArtifactWriteError: "model directory"}
        errors.print(
            f"[red]{label.get(type(error), 'registry')}:[/red] {escape(str(error))}",
            highlight=False,
        )
        raise typer.Exit(EXIT_DATABASE_ERROR) from error


def _warn_seed_export(problem: str | None) -> None:
    """The champion moved, but the seed's copy could not be written: a warning, exit 0."""
    if problem:
        errors.print(
            f"[yellow]warning:[/yellow] the champion is in service, but {escape(problem)}; "
            "quick/quick_model.json is stale",
            highlight=False,
        )


def _end_of_retrain(result) -> None:
    """Warnings, and the exit code: 4 for a failed run, 3 when a champion that cannot be
    loaded stays (it takes --force or a promote/rollback), else 0."""
    _warn_seed_export(result.seed_export_error)
    if result.status == "failed":
        raise typer.Exit(EXIT_RETRAIN_FAILED)
    if result.champion_problem and not result.promoted:
        errors.print(
            f"[red]model artifact:[/red] {escape(result.champion_problem)}, or retrain with "
            f"--force; this run's {escape(str(result.model_version))} was kept out and can be "
            "promoted",
            highlight=False,
        )
        raise typer.Exit(EXIT_DATABASE_ERROR)


def _result_json(result) -> dict[str, Any]:
    return result.as_response() | {
        "gate": result.gate,
        "error": result.error,
        "champion_problem": result.champion_problem,
        "seed_export_error": result.seed_export_error,
    }


STAGES = ("select", "read_labels", "features", "train", "evaluate", "register")


@contextmanager
def _stage_progress(enabled: bool) -> Iterator[Hooks]:
    """A rich progress bar over the retrain's stages (hidden with --json)."""
    from predelinq.retraining.result import Hooks

    progress = Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
        disable=not enabled,
    )
    with progress:
        task = progress.add_task("retraining", total=len(STAGES))

        def on_stage(name: str) -> None:
            done = STAGES.index(name) if name in STAGES else 0
            progress.update(task, completed=done, description=f"retraining: {name}")

        yield Hooks(on_stage=on_stage)


MaxCustomersOption = Annotated[
    str | None, typer.Option(help="Customers per retrain: a number or 'all' (default: setting).")
]


def _limit(max_customers: str | None) -> int | Literal["all"] | None:
    try:
        return None if max_customers is None else parse_max_customers(max_customers)
    except ValueError as error:
        errors.print(str(error))
        raise typer.Exit(2) from error


@app.command()
def check(
    threshold: Annotated[int | None, typer.Option(min=1, help="New-customer threshold.")] = None,
    max_customers: MaxCustomersOption = None,
    as_json: JsonOption = False,
) -> None:
    """Retrain if enough new customers arrived (the seed's check_and_retrain); cron-safe."""
    from predelinq.retraining.status import retraining_status

    settings = Settings()
    overrides = {"new_customer_threshold": threshold, "max_customers": _limit(max_customers)}
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    engine = _open_database(settings)
    if not as_json:
        console.print(f"{RULE}\nMODEL RETRAINING CHECK\n{RULE}\n")
    status, result = retraining_status(engine, settings), None
    if status["retraining_needed"]:  # only now load the retraining engine (XGBoost, Polars)
        from predelinq.retraining.run import check_and_retrain

        with _stage_progress(not as_json) as hooks:
            outcome = _run(check_and_retrain, engine, settings, actor="check", hooks=hooks)
        status, result = outcome.status, outcome.result
    if as_json:
        keys = ("new_customers_count", "retraining_needed", "reason", "threshold")
        _print_json(
            {**{k: status[k] for k in keys}, **({"result": _result_json(result)} if result else {})}
        )
    else:
        _print_check(status, result, settings)
    if result is not None:
        _end_of_retrain(result)


def _print_check(status: dict, result, settings: Settings) -> None:
    count, threshold = status["new_customers_count"], status["threshold"]
    console.print(f"📊 New customers not in training: {count}")
    if result is None:
        console.print(f"⏸️  Below threshold ({count} < {threshold}): nothing to do")
        return
    console.print(f"✅ Threshold reached ({count} >= {threshold})\n")
    console.print(f"🔔 Retraining triggered: {escape(status['reason'])}")
    _print_result(result, settings)


def _print_result(result, settings: Settings) -> None:
    console.print(f"\n{RULE}\n🔄 AUTOMATIC MODEL RETRAINING\n{RULE}\n")
    console.print(f"📊 Selected {result.customers_trained} customers for training")
    console.print(f"📋 Loaded {result.samples_trained} observations")
    if result.status == "failed":
        console.print(f"\n❌ FAILED: {escape(str(result.error))}")
        return
    metrics, spread, parts = result.metrics, result.metrics_std, result.parts
    console.print(f"   Positive rate: {metrics.get('positive_rate', math.nan):.2%}")
    console.print("\n🎯 Training XGBoost model...")
    fitted, validation = parts.get("fit", 0), parts.get("validation", 0)
    if parts.get("method") == "cross_validation":
        console.print(f"   Train: {fitted} samples ({parts.get('folds')}-fold cross-validation)")
    else:
        console.print(f"   Train: {fitted - validation} samples")
        console.print(f"   Validation: {validation} samples (early stopping, threshold)")
    console.print(f"   Holdout: {parts.get('holdout')} samples (newest customers, for the gate)")
    source = {
        "cross_validation": "cross-validated: mean ± sd over folds",
        "holdout": "on the holdout",
        "validation": "on the validation part",
    }.get(result.metrics_source, result.metrics_source)
    console.print(f"\n📊 Model Performance ({source}):")
    for label, key in (
        ("AUC-ROC", "auc"),
        ("PR-AUC", "pr_auc"),
        ("Precision", "precision"),
        ("Recall", "recall"),
        ("F1 Score", "f1"),
        ("Brier", "brier"),
        ("KS", "ks"),
    ):
        deviation = f" ± {spread[key]:.4f}" if key in spread else ""
        console.print(f"   {label + ':':<11}{metrics.get(key, math.nan):.4f}{deviation}")
    console.print(f"\n🛡️  {escape(result.gate)}")
    stored = settings.model_dir / "versions" / (result.model_version or "")
    how = (
        f"refit on all {parts.get('refit')} samples"
        if parts.get("method") == "cross_validation"
        else "the model of the train samples"
    )
    console.print(f"✅ Model saved to: {stored} ({how}, {parts.get('rounds')} trees)")
    if result.promoted and result.seed_export_error:
        console.print("🏆 Promoted to champion; the seed export failed (see the warning)")
    elif result.promoted:
        console.print(
            f"🏆 Promoted to champion; exported to {settings.model_dir / 'quick/quick_model.json'}"
        )
    else:
        console.print("🧊 Kept as a rejected challenger; the champion stays in service")
    console.print(f"\n🎉 Retraining complete in {result.duration_seconds:.2f}s!\n{RULE}\n")
    console.print("✅ SUCCESS!" if result.status == "success" else "✅ DONE (rejected by the gate)")
    console.print(f"   Customers trained: {result.customers_trained}")
    console.print(f"   Samples: {result.samples_trained}")
    console.print(f"   AUC: {metrics.get('auc', math.nan):.4f}")
    console.print(f"   Model version: {result.model_version}")


@app.command()
def retrain(
    max_customers: MaxCustomersOption = None,
    reason: Annotated[str, typer.Option(help="Recorded as the trigger reason.")] = "Manual retrain",
    force: Annotated[
        bool, typer.Option(help="Promote even if the gate rejects the model.")
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option(min=0, help="Seed of the selection and training (default: random)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Retrain now, whatever the new-customer count."""
    from predelinq.retraining.run import retrain as run_retrain

    settings = Settings()
    limit = _limit(max_customers)
    engine = _open_database(settings)
    with _stage_progress(not as_json) as hooks:
        result = _run(
            run_retrain,
            engine,
            settings,
            reason=reason,
            max_customers=limit,
            force=force,
            actor="cli",
            hooks=hooks,
            seed=seed,
        )
    if as_json:
        _print_json(_result_json(result))
    else:
        _print_result(result, settings)
    _end_of_retrain(result)


@app.command()
def status(as_json: JsonOption = False) -> None:
    """The seed's retraining status: new customers, whether needed, recent runs."""
    from predelinq.modeling.registry import seed_export_state
    from predelinq.retraining.lock import current_holder
    from predelinq.retraining.status import retraining_status

    settings = Settings()
    engine = _open_database(settings)
    result = retraining_status(engine, settings)
    holder = current_holder(engine)
    lock = {"holder": holder.holder, "since": holder.since.isoformat()} if holder else None
    with engine.connect() as connection:
        seed_export = seed_export_state(connection, settings.model_dir)
    if as_json:
        _print_json({**result, "retraining_lock": lock, "seed_export": seed_export})
        return
    console.print(
        f"new customers: {result['new_customers_count']} (threshold {result['threshold']})"
    )
    console.print(f"retraining needed: {result['retraining_needed']} - {escape(result['reason'])}")
    console.print(f"seed export (quick/quick_model.json): {seed_export}")
    if lock:
        console.print(f"retrain running: {escape(lock['holder'])} since {lock['since']} UTC")
    _history_table(result["recent_retraining"])


@app.command()
def history(
    limit: Annotated[int, typer.Option(min=1, help="How many runs.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Recent retraining runs, newest first (the seed's model_retraining_log)."""
    from predelinq.retraining.status import recent_retraining

    engine = _open_database(Settings())
    with engine.connect() as connection:
        rows = recent_retraining(connection, limit)
    if as_json:
        _print_json(rows)
        return
    _history_table(rows)


def _history_table(rows: list[dict]) -> None:
    table = Table(
        "id",
        "date",
        "status",
        "customers",
        "samples",
        "auc",
        "version",
        "promoted",
        "seconds",
        title="retraining history",
    )
    for row in rows:
        auc = row.get("auc_score")
        table.add_row(
            str(row["retrain_id"]),
            row["retrain_date"],
            row.get("status", ""),
            str(row["customers_trained"]),
            str(row["samples_trained"]),
            "-" if auc is None else f"{auc:.4f}",
            row.get("model_version") or "-",
            str(row.get("promoted", "")),
            f"{row['training_duration_seconds']:.2f}"
            if row.get("training_duration_seconds") is not None
            else "-",
        )
    console.print(table)


@app.command()
def models(as_json: JsonOption = False) -> None:
    """Every registered model version, newest first, with the champion marked."""
    from predelinq.modeling.registry import list_versions

    engine = _open_database(Settings())
    with engine.connect() as connection:
        versions = list_versions(connection)
    if as_json:
        _print_json(versions)
        return
    table = Table("version", "created", "champion", "auc", "threshold", "sha256", title="models")
    for row in versions:
        table.add_row(
            row["model_version"],
            f"{row['created_at']:%Y-%m-%d %H:%M:%S}",
            "★" if row["champion"] else "",
            f"{row['auc_score'] or math.nan:.4f}",
            f"{row['threshold']:.4f}",
            row["sha256"][:12],
        )
    console.print(table)


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="The version to put in service.")],
    as_json: JsonOption = False,
) -> None:
    """Make a registered version the champion (recorded)."""
    from predelinq.modeling.registry import move_champion

    settings = Settings()
    move = _run(
        move_champion,
        _open_database(settings),
        settings.model_dir,
        action="promote",
        actor="cli",
        to_version=version,
    )
    if as_json:
        _print_json(
            {
                "champion": version,
                "previous": move.previous,
                "seed_export_error": move.seed_export_error,
            }
        )
    else:
        console.print(f"champion: {escape(move.previous or '-')} -> {escape(version)}")
    _warn_seed_export(move.seed_export_error)


@app.command()
def rollback(
    to: Annotated[
        str | None, typer.Option("--to", help="A version; default: the previous champion.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Put the previous champion (or --to VERSION) back in service (recorded)."""
    from predelinq.modeling.registry import move_champion

    settings = Settings()
    move = _run(
        move_champion,
        _open_database(settings),
        settings.model_dir,
        action="rollback",
        actor="cli",
        to_version=to,
    )
    if as_json:
        _print_json({"champion": move.champion, "seed_export_error": move.seed_export_error})
    else:
        console.print(f"champion rolled back to {escape(move.champion)}")
    _warn_seed_export(move.seed_export_error)


@app.command()
def score(
    output: Annotated[Path, typer.Option("--output", dir_okay=False, help="CSV file to write.")],
    as_of: Annotated[
        datetime | None, typer.Option("--as-of", formats=["%Y-%m-%d"], help="Date; default today.")
    ] = None,
    customers: Annotated[
        list[Path] | None,
        typer.Option(exists=True, dir_okay=False, help="Ids (customer_id column or one per line)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Score customers with the champion as of a date: customer_id, risk_score, model_version."""
    from predelinq.serving.score import NoChampionError, score_customers

    settings = Settings()
    engine = _open_database(settings)
    day = (as_of or datetime.now()).date()
    ids = customer_ids_option(single_file("--customers", customers))
    try:
        with feature_errors(), _registry_errors():
            scores = score_customers(engine, settings, as_of=day, customer_ids=ids)
    except NoChampionError as error:
        errors.print(f"[red]{escape(str(error))}[/red]")
        raise typer.Exit(EXIT_RETRAIN_FAILED) from error
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
        _print_json(
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


@app.command()
def schedule(
    every: Annotated[str | None, typer.Option(help="Interval, e.g. 30m, 24h, 1d.")] = None,
    cron: Annotated[
        str | None, typer.Option(help='Cron expression in UTC, e.g. "0 2 * * *".')
    ] = None,
) -> None:
    """Run check on a schedule, in the foreground, until stopped (an alternative to cron)."""
    import logging

    from predelinq.retraining.lock import RetrainingBusyError
    from predelinq.retraining.run import check_and_retrain
    from predelinq.retraining.schedule import make_trigger, run_forever

    try:
        trigger = make_trigger(every=every, cron=cron)
    except ValueError as error:
        errors.print(str(error))
        raise typer.Exit(2) from error
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log = logging.getLogger("predelinq.schedule")

    def job() -> None:
        settings = Settings()
        engine = _open_database(settings)
        try:
            outcome = check_and_retrain(engine, settings, actor="schedule")
        except RetrainingBusyError as error:
            log.warning("skipped: %s", error)
            return
        finally:
            engine.dispose()  # one engine per run: a long-running schedule holds no pool
        result = outcome.result
        log.info(
            "check: %s; %s",
            outcome.status["reason"],
            "no retrain" if result is None else json.dumps(result.as_response()),
        )

    console.print(f"running check on {trigger} (Ctrl-C to stop)")
    try:
        run_forever(job, trigger)
    except (KeyboardInterrupt, SystemExit):
        console.print("stopped")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the HTTP API (predelinq.api:app) with uvicorn; one worker per core."""
    import uvicorn

    from predelinq.api.app import ConfigurationError, check_tokens
    from predelinq.features import configured_features

    # What would stop each worker's start-up, checked here: one line and an exit code, not a
    # traceback per worker from uvicorn.
    settings = Settings()
    try:
        check_tokens(settings)
    except ConfigurationError as error:
        errors.print(f"[red]configuration:[/red] {escape(str(error))}")
        raise typer.Exit(2) from error
    with feature_errors():
        configured_features(settings)
    _open_database(settings).dispose()
    with ExitStack() as stack:
        if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # each worker counts in its own process: sum them at every scrape
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="predelinq-"))
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        # access_log off: the app logs every request itself, as one JSON line
        uvicorn.run(
            "predelinq.api:app",
            host=host,
            port=port,
            workers=workers,
            log_level="info",
            access_log=False,
        )
