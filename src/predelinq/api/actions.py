"""The admin actions, shared by the JSON routes and the dashboard's forms: start a retrain
(the served champion switches at once when it is promoted) and move the champion (every
worker switches within ``reload_seconds``, this one at once)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from predelinq.api.deps import AppState
from predelinq.modeling.registry import ChampionMoved, move_champion
from predelinq.retraining.jobs import FinishedJob, start_job
from predelinq.statuses import ChampionAction

log = logging.getLogger(__name__)


def start_retrain(
    state: AppState, *, reason: str, actor: str, force: bool
) -> tuple[str, threading.Thread]:
    """A retrain job in the background: its id and thread. Raises ``JobConflictError`` when
    one is running."""
    return start_job(
        state.engine,
        state.settings,
        reason=reason,
        actor=actor,
        force=force,
        on_finish=_on_finish(state),
    )


def _on_finish(state: AppState) -> Callable[[FinishedJob], None]:
    """When a job ends: count it, and serve its model at once if it was promoted."""

    def finished(job: FinishedJob) -> None:
        state.telemetry.jobs.labels(job.status.value).inc()
        state.telemetry.job_seconds.observe(job.seconds)
        if job.promoted:
            state.champion.refresh()

    return finished


def move(
    state: AppState, action: ChampionAction, version: str | None, *, actor: str
) -> ChampionMoved:
    """Promote ``version``, or roll back (to ``version``, default the previous champion)."""
    moved = move_champion(
        state.engine, state.settings.model_dir, action=action, actor=actor, to_version=version
    )
    if moved.seed_export_error:
        log.warning("champion %s in service; %s", moved.champion, moved.seed_export_error)
    state.champion.refresh()
    return moved
