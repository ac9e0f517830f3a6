"""The monitoring commands: backtest (replay history: does retraining pay on this data?)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from predelinq.cli.common import (
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

if TYPE_CHECKING:  # the replay (polars, xgboost) loads only when the command runs
    from predelinq.monitoring.backtest import BacktestResult

commands = typer.Typer()


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
    as_json: JsonOption = False,
) -> None:
    """Replay history as if predelinq had been running: at each step retrain or not by the
    policy, score the next period with the champion, measure its AUC. Writes nothing."""
    settings = Settings()
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
