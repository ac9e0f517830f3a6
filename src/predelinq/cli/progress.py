"""Progress displays on stderr: on a terminal only, transient, and only for work that takes a
while, so that a small input, a pipe or cron sees nothing but the result."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING

from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from predelinq.cli.common import errors

if TYPE_CHECKING:
    from predelinq.retraining.result import Hooks

PROGRESS_MIN_UNITS = 1_000_000  # ingest progress: CSV bytes or Parquet rows
SPINNER_DELAY_SECONDS = 1.0  # score, features export: a run shorter than this shows nothing


def _progress(*columns: ProgressColumn, enabled: bool) -> Progress:
    """A transient display on stderr, shown only when ``enabled`` and stderr is a terminal."""
    return Progress(
        *columns, console=errors, transient=True, disable=not (enabled and errors.is_terminal)
    )


class IngestProgress:
    """A rich progress bar per table while large files are read, checked and staged (CSV:
    bytes, Parquet: rows), then one line naming the step (checks, merges); silent for small
    files."""

    def __init__(self, *, enabled: bool):
        self.progress = _progress(
            TextColumn("{task.description:<14}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            enabled=enabled,
        )
        self.tasks: dict[str, TaskID] = {}
        self.step_task: TaskID | None = None

    def __enter__(self) -> IngestProgress:
        self.progress.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.progress.__exit__(kind, error, traceback)

    def update(self, table: str, done: int, total: int) -> None:
        if total < PROGRESS_MIN_UNITS:
            return
        if table not in self.tasks:
            self.tasks[table] = self.progress.add_task(table, total=total)
        self.progress.update(self.tasks[table], completed=done)

    def step(self, name: str) -> None:
        if not self.tasks:  # no large file: the steps are quick too
            return
        if self.step_task is None:
            self.step_task = self.progress.add_task(name, total=None)
        self.progress.update(self.step_task, description=name)


class StageSpinner:
    """One line naming the current stage of a command, shown once it has run for
    ``SPINNER_DELAY_SECONDS``: a large input shows what is happening, a small one nothing.
    Use as ``with StageSpinner("scoring", enabled=...) as stage: ... stage("features")``."""

    def __init__(self, label: str, *, enabled: bool):
        self.label = label
        self.progress = _progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), enabled=enabled
        )
        self.task = self.progress.add_task(label, total=None)
        self.timer = threading.Timer(SPINNER_DELAY_SECONDS, self.progress.start)
        self.timer.daemon = True

    def __enter__(self) -> Callable[[str], None]:
        if not self.progress.disable:
            self.timer.start()
        return self.stage

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.timer.cancel()
        if self.timer.is_alive():  # starting the display right now: let it, then stop it
            self.timer.join()
        self.progress.stop()

    def stage(self, name: str) -> None:
        self.progress.update(self.task, description=f"{self.label}: {name}")


RETRAIN_STAGES = ("select", "read_labels", "features", "train", "evaluate", "register")


@contextmanager
def retrain_progress(enabled: bool) -> Iterator[Hooks]:
    """A rich progress bar over the retrain's stages (hidden with --json)."""
    from predelinq.retraining.result import Hooks

    progress = _progress(
        TextColumn("{task.description:<22}"), BarColumn(), TimeElapsedColumn(), enabled=enabled
    )
    with progress:
        task = progress.add_task("retraining", total=len(RETRAIN_STAGES))

        def on_stage(name: str) -> None:
            done = RETRAIN_STAGES.index(name) if name in RETRAIN_STAGES else 0
            progress.update(task, completed=done, description=f"retraining: {name}")

        yield Hooks(on_stage=on_stage)
