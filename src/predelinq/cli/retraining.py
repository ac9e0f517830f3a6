"""The retraining commands: check (the seed's check_and_retrain, with every trigger of
``[triggers]``), retrain, status and history, with the seed's report printed as it was."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.markup import escape

from predelinq.cli.common import (
    DaskSchedulerOption,
    DataAsOfOption,
    ExitCode,
    JsonOption,
    console,
    fail,
    open_database,
    print_json,
    table,
    warn_seed_export,
)
from predelinq.cli.progress import retrain_progress
from predelinq.config import Settings, parse_max_customers
from predelinq.statuses import RunStatus

if TYPE_CHECKING:  # the retraining engine (and xgboost) load only when a command needs them
    from predelinq.monitoring.triggers import TriggerResult
    from predelinq.retraining.check import CheckDecision
    from predelinq.retraining.result import RetrainResult

RULE = "=" * 60

commands = typer.Typer()


def _end_of_retrain(result: RetrainResult) -> None:
    """Warnings, and the exit code: 4 for a failed run, 3 when a champion that cannot be
    loaded stays (it takes --force or a promote/rollback), else 0."""
    warn_seed_export(result.seed_export_error)
    if result.status == RunStatus.FAILED:
        raise typer.Exit(ExitCode.RETRAIN_FAILED)
    if result.champion_problem and not result.promoted:
        fail(
            ExitCode.DATABASE,
            f"[red]model artifact:[/red] {escape(result.champion_problem)}, or retrain with "
            f"--force; this run's {escape(str(result.model_version))} was kept out and can be "
            "promoted",
        )


def _result_json(result: RetrainResult) -> dict[str, Any]:
    return result.as_response() | {
        "gate": result.gate,
        "error": result.error,
        "champion_problem": result.champion_problem,
        "seed_export_error": result.seed_export_error,
    }


MaxCustomersOption = Annotated[
    str | None, typer.Option(help="Customers per retrain: a number or 'all' (default: setting).")
]


def _limit(max_customers: str | None) -> int | Literal["all"] | None:
    try:
        return None if max_customers is None else parse_max_customers(max_customers)
    except ValueError as error:
        fail(ExitCode.USAGE, escape(str(error)))


@commands.command()
def check(
    threshold: Annotated[int | None, typer.Option(min=1, help="New-customer threshold.")] = None,
    max_customers: MaxCustomersOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide and report; train nothing, write nothing.")
    ] = False,
    as_of: DataAsOfOption = None,
    dask_scheduler: DaskSchedulerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Retrain if a trigger fires: new customers (the seed's check_and_retrain), new labels,
    drift, realised performance, the champion's age ([triggers]); cron-safe."""
    from predelinq.retraining.check import decide

    settings = Settings()
    overrides = {
        "new_customer_threshold": threshold,
        "max_customers": _limit(max_customers),
        "dask_scheduler": dask_scheduler,
    }
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    engine = open_database(settings)
    if not as_json:
        console.print(f"{RULE}\nMODEL RETRAINING CHECK\n{RULE}\n")
    decision, result = decide(engine, settings, as_of=None if as_of is None else as_of.date()), None
    if decision.retrain and not dry_run:  # only now load the retraining engine (XGBoost, Polars)
        from predelinq.retraining.run import check_and_retrain

        with retrain_progress(not as_json) as hooks:
            outcome = check_and_retrain(
                engine, settings, actor="check", hooks=hooks, decision=decision
            )
        result = outcome.result
    if as_json:
        report = decision.as_json() | {"dry_run": dry_run}
        print_json(report | ({"result": _result_json(result)} if result else {}))
    else:
        _print_check(decision, result, settings, dry_run=dry_run)
    if result is not None:
        _end_of_retrain(result)


def _mark(trigger: TriggerResult) -> str:
    if trigger.fired:
        return "🔔"
    if trigger.held:
        return "🧊"
    return "- " if trigger.detail == "disabled" else "· "


def _print_check(
    decision: CheckDecision, result: RetrainResult | None, settings: Settings, *, dry_run: bool
) -> None:
    """The seed's lines (count, threshold, the trigger), then one line per trigger."""
    status, seed_rule = decision.status, decision.triggers[0]
    count, threshold = status["new_customers_count"], status["threshold"]
    console.print(f"📊 New customers not in training: {count}")
    if seed_rule.fired:
        console.print(f"✅ Threshold reached ({count} >= {threshold})")
    elif seed_rule.detail == "disabled":
        console.print("⏸️  The new_customers trigger is disabled")
    else:
        quiet = "" if decision.retrain else ": nothing to do"
        console.print(f"⏸️  Below threshold ({count} < {threshold}){quiet}")
    for trigger in decision.triggers:
        console.print(f"   {_mark(trigger)} {trigger.name:<14}{escape(trigger.detail)}")
    if not decision.retrain:
        return
    if dry_run:
        console.print(f"\n🔎 Dry run: would retrain ({escape(decision.reason)}); nothing trained")
        return
    console.print(f"\n🔔 Retraining triggered: {escape(decision.reason)}")
    if result is not None:
        _print_result(result, settings)


def _print_result(result: RetrainResult, settings: Settings) -> None:
    console.print(f"\n{RULE}\n🔄 AUTOMATIC MODEL RETRAINING\n{RULE}\n")
    console.print(f"📊 Selected {result.customers_trained} customers for training")
    console.print(f"📋 Loaded {result.samples_trained} observations")
    if result.status == RunStatus.FAILED:
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
    console.print(
        "✅ SUCCESS!" if result.status == RunStatus.SUCCESS else "✅ DONE (rejected by the gate)"
    )
    console.print(f"   Customers trained: {result.customers_trained}")
    console.print(f"   Samples: {result.samples_trained}")
    console.print(f"   AUC: {metrics.get('auc', math.nan):.4f}")
    console.print(f"   Model version: {result.model_version}")


@commands.command()
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
    dask_scheduler: DaskSchedulerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Retrain now, whatever the new-customer count."""
    from predelinq.retraining.run import retrain as run_retrain

    settings = Settings()
    if dask_scheduler:
        settings = settings.model_copy(update={"dask_scheduler": dask_scheduler})
    limit = _limit(max_customers)
    engine = open_database(settings)
    with retrain_progress(not as_json) as hooks:
        result = run_retrain(
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
        print_json(_result_json(result))
    else:
        _print_result(result, settings)
    _end_of_retrain(result)


@commands.command()
def status(as_json: JsonOption = False) -> None:
    """The seed's retraining status: new customers, whether needed, recent runs."""
    from predelinq.modeling.registry import seed_export_state
    from predelinq.retraining.lock import current_holder
    from predelinq.retraining.status import retraining_status

    settings = Settings()
    engine = open_database(settings)
    result = retraining_status(engine, settings)
    holder = current_holder(engine)
    lock = {"holder": holder.holder, "since": holder.since.isoformat()} if holder else None
    with engine.connect() as connection:
        seed_export = seed_export_state(connection, settings.model_dir)
    if as_json:
        print_json({**result, "retraining_lock": lock, "seed_export": seed_export})
        return
    console.print(
        f"new customers: {result['new_customers_count']} (threshold {result['threshold']})"
    )
    console.print(f"retraining needed: {result['retraining_needed']} - {escape(result['reason'])}")
    console.print(f"seed export (quick/quick_model.json): {seed_export}")
    if lock:
        console.print(f"retrain running: {escape(lock['holder'])} since {lock['since']} UTC")
    _history_table(result["recent_retraining"])


@commands.command()
def history(
    limit: Annotated[int, typer.Option(min=1, help="How many runs.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Recent retraining runs, newest first (the seed's model_retraining_log)."""
    from predelinq.retraining.status import recent_retraining

    engine = open_database(Settings())
    with engine.connect() as connection:
        rows = recent_retraining(connection, limit)
    if as_json:
        print_json(rows)
        return
    _history_table(rows)


def _history_table(rows: list[dict[str, Any]]) -> None:
    """One line per run; ``decision`` is the gate's verdict (or why the run failed)."""
    shown = table(
        "id",
        "date",
        "status",
        "customers",
        "samples",
        "auc",
        "version",
        "promoted",
        "seconds",
        "decision",
        title="retraining history",
    )
    for row in rows:
        auc = row.get("auc_score")
        seconds = row.get("training_duration_seconds")
        error = row.get("error")
        shown.add_row(
            str(row["retrain_id"]),
            row["retrain_date"],
            row.get("status", ""),
            str(row["customers_trained"]),
            str(row["samples_trained"]),
            "-" if auc is None else f"{auc:.4f}",
            escape(row.get("model_version") or "-"),
            str(row.get("promoted", "")),
            "-" if seconds is None else f"{seconds:.2f}",
            escape(row.get("decision") or (f"failed: {error}" if error else "-")),
        )
    console.print(shown)
