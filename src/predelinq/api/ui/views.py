"""What each dashboard page shows, gathered from the library: the registry, the retraining
log, the jobs, the prediction log, and the two cached reports (the monitoring report of
``GET /monitoring`` and the drift history), which are computed in background threads so that
no page waits for them. A page whose report is still being computed says so and shows what
is live; ``ready`` tells the route which.

Each function returns the template's context; none renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from predelinq.api.deps import AppState
from predelinq.api.ui import charts
from predelinq.clock import utc_now
from predelinq.db.schema import customers, payments, transactions
from predelinq.errors import PredelinqError
from predelinq.modeling.explain import reason_codes
from predelinq.modeling.lineage import champion_changes_newest_first, champion_since
from predelinq.modeling.registry import ModelVersion, list_versions
from predelinq.monitoring.history import DriftHistory
from predelinq.monitoring.predictions import customer_predictions
from predelinq.monitoring.reference import load_profile
from predelinq.monitoring.report import MonitorReport
from predelinq.retraining.jobs import get_job, running_job
from predelinq.retraining.status import new_customer_count, recent_retraining
from predelinq.serving.score import score

HISTORY_RUNS = 500  # on the history page and its charts
RECENT_EVENTS = 20  # of each kind on the customer page
SCORE_HISTORY = 200  # logged scores on the customer page
REASONS = 5


@dataclass
class Reports:
    """The cached reports as a page finds them: each None while it is computed, with the
    error that stopped it (in words) if one did."""

    monitor: MonitorReport | None = None
    history: DriftHistory | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return (self.monitor is not None and self.history is not None) or bool(self.problems)


def reports(state: AppState) -> Reports:
    """Both reports for the champion in service, starting their computation when missing or
    stale; never waits."""
    served = state.champion.current
    if served is None:
        return Reports(problems=[state.champion.unavailable_reason()])
    found = Reports()
    try:
        found.monitor, _ = state.monitoring.current(served.version)
    except PredelinqError as error:
        found.problems.append(f"monitoring report: {error}")
    try:
        found.history, _ = state.drift_history.current(served.version)
    except PredelinqError as error:
        found.problems.append(f"drift history: {error}")
    return found


def _versions(connection: Connection) -> dict[str, ModelVersion]:
    return {version.version: version for version in list_versions(connection)}


def _realised_by_version(report: MonitorReport | None) -> dict[str, float]:
    """Each version's realised AUC: its monthly AUCs averaged with their rows as weights."""
    if report is None:
        return {}
    sums: dict[str, list[float]] = {}
    for period in report.performance:
        if period.auc is not None:
            total = sums.setdefault(period.model_version, [0.0, 0.0])
            total[0] += period.auc * period.rows
            total[1] += period.rows
    return {version: auc / rows for version, (auc, rows) in sums.items() if rows}


def _trigger_value(report: MonitorReport, name: str) -> int:
    value = next((t.value for t in report.triggers if t.name == name), None)
    return 0 if value is None else int(value)


def overview(state: AppState, found: Reports) -> dict[str, Any]:
    with state.engine.connect() as connection:
        versions = _versions(connection)
        since = champion_since(connection)
        # the count the monitoring report's trigger holds; live only until it is ready (on
        # PostgreSQL at 100,000 customers the query takes 230-290 ms of the page's 300)
        new_customers = (
            _trigger_value(found.monitor, "new_customers")
            if found.monitor is not None
            else new_customer_count(connection)
        )
        last = recent_retraining(connection, 1)
    champion = next((version for version in versions.values() if version.champion), None)
    running = running_job(state.engine)
    report = found.monitor
    context: dict[str, Any] = {
        "champion": champion,
        "age_days": None if since is None else (utc_now() - since).total_seconds() / 86400,
        "since": since,
        "new_customers": new_customers,
        "threshold": state.settings.new_customer_threshold,
        "last_run": last[0] if last else None,
        "running": running,
        "report": report,
        "realised": None if report is None else report.realised,
        "triggers": [] if report is None else report.triggers,
        "charts": {},
    }
    levels = [t for t in context["triggers"] if t.value is not None and t.threshold]
    if levels:
        context["charts"]["triggers"] = charts.trigger_levels(
            [t.name for t in levels],
            [t.value / t.threshold for t in levels],
            [t.fired for t in levels],
        )
    if report is not None and champion is not None:
        own = sorted(
            (period for period in report.performance if period.model_version == champion.version),
            key=lambda period: period.period,
        )
        if own:
            context["charts"]["realised"] = charts.realised_by_month(
                [period.period for period in own],
                [period.auc for period in own],
                [period.auc_low for period in own],
                [period.auc_high for period in own],
                champion.auc,
            )
    return context


def _gate(version: ModelVersion | None) -> dict[str, Any] | None:
    """ΔAUC and its interval from the gate's evidence, when the gate compared."""
    if version is None:
        return None
    delta: dict[str, Any] | None = version.details.get("gate_evidence", {}).get("delta_auc")
    return delta


def history(state: AppState, found: Reports) -> dict[str, Any]:
    with state.engine.connect() as connection:
        runs = recent_retraining(connection, HISTORY_RUNS)
        versions = _versions(connection)
    rows = [{**run, "delta": _gate(versions.get(run["model_version"] or ""))} for run in runs]
    oldest_first = rows[::-1]
    realised = _realised_by_version(found.monitor)
    figures: dict[str, Any] = {}
    if rows:
        figures["auc"] = charts.auc_over_retrains(oldest_first, realised)
        figures["duration"] = charts.durations(oldest_first)
    if any(row["delta"] for row in rows):
        figures["gate"] = charts.gate_deltas(oldest_first, state.settings.gate_tolerance)
    return {"runs": rows, "realised": realised, "charts": figures}


def models(state: AppState, found: Reports, chosen: str | None) -> dict[str, Any]:
    with state.engine.connect() as connection:
        versions = _versions(connection)
        lineage = champion_changes_newest_first(connection)
        champion = next((name for name, version in versions.items() if version.champion), None)
        name = chosen if chosen in versions else champion
        profile = None if name is None else load_profile(connection, name)
    version = None if name is None else versions[name]
    context: dict[str, Any] = {
        "versions": list(versions.values()),
        "lineage": lineage,
        "version": version,
        "realised": _realised_by_version(found.monitor),
        "charts": {},
    }
    if chosen and chosen not in versions:  # a hand-made or stale link: say so, with a 404
        context.update(missing=True, chosen=chosen)
    if version is None:
        return context
    importance = version.details.get("importance")
    if importance:
        context["charts"]["importance"] = charts.importance(importance)
    calibration = version.details.get("calibration")
    if calibration:
        context["charts"]["calibration"] = charts.calibration(calibration)
    if profile is not None and profile.score is not None:
        history_now = found.history
        current = None
        if history_now is not None and history_now.model_version == version.version:
            current = history_now.points[-1].score_shares if history_now.points else None
        context["charts"]["histogram"] = charts.score_histogram(
            profile.score.edges, profile.score.shares, current
        )
    return context


def drift(state: AppState, found: Reports) -> dict[str, Any]:
    history_now = found.history
    context: dict[str, Any] = {"history": history_now, "report": found.monitor, "charts": {}}
    if history_now is None or not history_now.points:
        return context
    points = history_now.points
    names = sorted({name for point in points for name in point.features})
    # the features that drifted most first
    names.sort(key=lambda name: -max(point.features.get(name, 0.0) for point in points))
    dates = [point.as_of for point in points]
    psi = [[point.features.get(name) for point in points] for name in names]
    if names:
        context["charts"]["psi_heatmap"] = charts.psi_heatmap(dates, names, psi)
    context["charts"]["score_over_time"] = charts.score_over_time(
        history_now.score_edges,
        history_now.reference_shares,
        dates,
        [point.score_shares for point in points],
    )
    return context


def _events(connection: Connection, customer_id: str) -> dict[str, Any]:
    txns = connection.execute(
        select(
            transactions.c.txn_time,
            transactions.c.amount,
            transactions.c.txn_type,
            transactions.c.category,
            transactions.c.balance_after,
        )
        .where(transactions.c.customer_id == customer_id)
        .order_by(transactions.c.txn_time.desc())
        .limit(RECENT_EVENTS)
    ).all()
    paid = connection.execute(
        select(
            payments.c.due_date, payments.c.amount_due, payments.c.amount_paid, payments.c.paid_date
        )
        .where(payments.c.customer_id == customer_id)
        .order_by(payments.c.due_date.desc())
        .limit(RECENT_EVENTS)
    ).all()
    return {"transactions": txns, "payments": paid}


def customer(state: AppState, found: Reports, customer_id: str) -> dict[str, Any]:
    """A customer's record, logged scores, recent events and, with a champion, today's score
    and its reason codes (computed here, not logged: looking is not serving). No id: only
    the lookup form; an unknown id: ``missing``."""
    if not customer_id:
        return {"customer_id": "", "record": None, "charts": {}}
    with state.engine.connect() as connection:
        record = connection.execute(
            select(customers).where(customers.c.customer_id == customer_id)
        ).first()
        if record is None:
            return {"customer_id": customer_id, "record": None, "charts": {}, "missing": True}
        logged = customer_predictions(connection, customer_id, SCORE_HISTORY)
        events = _events(connection, customer_id)
    # the monitoring report's date: the data's today, computed once for every page (on its
    # own it reads the newest of every event: 0.8-2.1 s at 100,000 customers)
    as_of = None if found.monitor is None else found.monitor.as_of
    context: dict[str, Any] = {
        "customer_id": customer_id,
        "record": record,
        "logged": logged,
        "as_of": as_of,
        "current": None,
        "reasons": [],
        "charts": {},
        **events,
    }
    if logged:
        rows = [
            {"served_at": row.served_at, "score": row.score, "model_version": row.model_version}
            for row in logged
        ]
        context["charts"]["score_history"] = charts.score_history(rows[::-1])
    model = state.champion.current
    if model is None or as_of is None:
        return context
    scored = score(
        state.engine, state.settings, model, state.features, [customer_id], as_of, explain=True
    )
    if scored.contributions is None or scored.features is None or not scored.ids:
        return context
    context["current"] = float(scored.scores[0])
    reasons = reason_codes(
        model.booster, scored.features[0], model.feature_names, state.features, k=REASONS
    )
    context["reasons"] = reasons
    if reasons:
        context["charts"]["reasons"] = charts.reasons(
            [reason.description for reason in reasons], [reason.contribution for reason in reasons]
        )
    return context


def admin(state: AppState) -> dict[str, Any]:
    with state.engine.connect() as connection:
        versions = list_versions(connection)
        lineage = champion_changes_newest_first(connection, 5)
    running = running_job(state.engine)
    return {
        "versions": versions,
        "lineage": lineage,
        "running": None if running is None else get_job(state.engine, running),
        "admin_open": state.settings.admin_token is None,
    }


def as_days(moment: datetime | date | None) -> str:
    """A date or time as the pages print it."""
    if moment is None:
        return "—"
    if isinstance(moment, datetime):
        return moment.isoformat(sep=" ", timespec="minutes")
    return moment.isoformat()


def fmt(value: float | None, digits: int = 3) -> str:
    """A number as the pages print it: fixed digits, a dash when missing or not finite."""
    if value is None or not np.isfinite(value):
        return "—"
    return f"{value:.{digits}f}"
