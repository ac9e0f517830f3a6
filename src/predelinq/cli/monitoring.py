"""The monitoring commands: monitor (drift, realised performance and triggers as of a date)
and backtest (replay history: does retraining pay on this data?)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

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
)
from predelinq.cli.progress import StageSpinner
from predelinq.config import Settings, parse_max_customers
from predelinq.monitoring.backtest_plan import DEFAULT_POLICIES, Plan, Policy, parse_every

if TYPE_CHECKING:  # the replay and the report (polars, xgboost) load only when a command runs
    from predelinq.monitoring.backtest import BacktestResult
    from predelinq.monitoring.report import MonitorReport

commands = typer.Typer()
TOP_FEATURES = 10


@commands.command()
def monitor(
    as_of: DataAsOfOption = None,
    as_json: JsonOption = False,
) -> None:
    """The champion's drift (PSI against its training profile), realised performance on
    matured labels per version and month, and the state of every trigger."""
    from predelinq.monitoring.report import monitor as monitor_report

    settings = Settings()
    engine = open_database(settings)
    try:
        with StageSpinner("monitoring", enabled=not as_json):
            report = monitor_report(engine, settings, as_of.date() if as_of else None)
    finally:
        engine.dispose()
    if as_json:
        print_json(report.as_json())
    else:
        _print_report(report)


def _psi(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _print_report(report: MonitorReport) -> None:
    drift = report.drift
    console.print(
        f"monitoring {escape(drift.model_version)} as of {report.as_of}: {drift.rows:,} "
        f"customers ({drift.population}; {drift.excluded:,} already 30+ days past due left out)"
    )
    state = "[red]drift[/red]" if drift.drifted else "no drift"
    console.print(
        f"score PSI {_psi(drift.score_psi)} ({state} at {drift.threshold}); "
        f"{len(drift.drifted_features)} of {len(drift.features)} monitored features drifted, "
        f"{len(drift.not_monitored)} not monitored"
    )
    if drift.note:
        console.print(f"[yellow]note:[/yellow] {escape(drift.note)}")
    ranked = sorted(drift.features.items(), key=lambda item: item[1], reverse=True)
    features = table("feature", "psi", title=f"largest feature PSI (top {TOP_FEATURES})")
    for name, value in ranked[:TOP_FEATURES]:
        mark = " [red]drifted[/red]" if value >= drift.threshold else ""
        features.add_row(escape(name), f"{value:.3f}{mark}")
    console.print(features)
    columns = ("model", "month", "rows", "positives", "auc", "95% interval", "expected")
    performance = table(
        *columns,
        "ks",
        "brier",
        "calibration",
        "logged",
        "rescored",
        "left out",
        title=f"realised performance on labels matured by {report.as_of} "
        f"(observed from {report.performance_since})",
    )
    for row in report.performance:
        interval = "" if row.auc_low is None else f"{row.auc_low:.3f}-{row.auc_high:.3f}"
        performance.add_row(
            escape(row.model_version),
            row.period,
            f"{row.rows:,}",
            f"{row.positives:,}",
            _auc(row.auc),
            interval,
            _auc(row.expected_auc),
            _auc(row.ks),
            _auc(row.brier),
            "" if row.calibration is None else f"{row.calibration:+.4f}",
            f"{row.logged:,}",
            f"{row.rescored:,}",
            f"{row.excluded + row.unscored + row.skipped:,}",
        )
    console.print(performance)
    triggers = table("trigger", "fired", "value", "threshold", "detail", title="triggers")
    for trigger in report.triggers:
        fired = "[red]yes[/red]" if trigger.fired else ("held" if trigger.held else "")
        shown = "" if trigger.value is None else f"{trigger.value:g}"
        limit = "" if trigger.threshold is None else f"{trigger.threshold:g}"
        triggers.add_row(trigger.name, fired, shown, limit, escape(trigger.detail))
    console.print(triggers)


@commands.command()
def backtest(
    start: Annotated[
        datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First step (a date).")
    ],
    end: Annotated[
        datetime,
        typer.Option("--to", formats=["%Y-%m-%d"], help="Steps and periods end before this."),
    ],
    every: Annotated[str, typer.Option(help="Step: months, weeks or days (1mo, 2w, 30d).")] = (
        "1mo"
    ),
    policy: Annotated[
        list[Policy] | None,
        typer.Option(help="Policy to replay; repeat for several (default: never, triggers)."),
    ] = None,
    after: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="Also report the mean AUC of the periods from this date."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of every retrain.")] = 0,
    max_customers: Annotated[
        str | None,
        typer.Option(help="Customers per retrain: a number or 'all' (default: setting)."),
    ] = None,
    no_gate: Annotated[
        bool,
        typer.Option("--no-gate", help="Promote every retrain (default: what the gate lets in)."),
    ] = False,
    dask_scheduler: DaskSchedulerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replay history as if predelinq had been running: at each step retrain or not by the
    policy, score the next period with the champion, measure its AUC. Writes nothing."""
    settings = Settings()
    if dask_scheduler:
        settings = settings.model_copy(update={"dask_scheduler": dask_scheduler})
    if max_customers is not None:
        try:
            limit = parse_max_customers(max_customers)
        except ValueError as error:
            fail(ExitCode.USAGE, escape(str(error)))
        settings = settings.model_copy(update={"max_customers": limit})
    plan = Plan(
        start=start.date(),
        end=end.date(),
        every=parse_every(every),
        policies=tuple(dict.fromkeys(policy or DEFAULT_POLICIES)),
        seed=seed,
        after=after.date() if after else None,
        gate=not no_gate,
    )
    from predelinq.monitoring.backtest import run_backtest

    engine = open_database(settings)
    try:
        with StageSpinner("replaying", enabled=not as_json):
            result = run_backtest(engine, settings, plan)
    finally:
        engine.dispose()
    if as_json:
        print_json(result.as_json())
    else:
        _print(result)


def _auc(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _print(result: BacktestResult) -> None:
    plan = result.plan
    rows = table(
        "period",
        "policy",
        "model",
        "retrained",
        "promoted",
        "rows",
        "positives",
        "auc",
        title=f"backtest {plan.start} to {plan.end}, every {plan.every}",
    )
    for row in result.rows:
        rows.add_row(
            row.period.isoformat(),
            str(row.policy),
            escape(row.model_version),
            "yes" if row.retrained else "",
            "yes" if row.promoted else "",
            f"{row.rows:,}",
            f"{row.positives:,}",
            _auc(row.auc),
        )
    console.print(rows)
    columns = ["policy", "mean auc", *(["mean auc after"] if plan.after else [])]
    summary = table(*columns, "retrains", "promotions", "compute s", title="summary")
    for line in result.summary:
        after = [_auc(line.mean_auc_after)] if plan.after else []
        summary.add_row(
            str(line.policy),
            _auc(line.mean_auc),
            *after,
            str(line.retrains),
            str(line.promotions),
            f"{line.compute_seconds:.1f}",
        )
    console.print(summary)
