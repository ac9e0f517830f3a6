"""``predelinq schedule``: run ``check`` on an interval or a cron expression, in-process.

A long-running alternative to cron, systemd timers, Task Scheduler or a Kubernetes CronJob
(see the README), built on APScheduler. A run that finds another retrain in progress is
logged and skipped; the next one tries again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import timedelta

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

log = logging.getLogger("predelinq.schedule")


def parse_every(text: str) -> timedelta:
    """``30m``, ``24h``, ``1d``, ``90s`` as a duration."""
    match = DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"--every takes a duration like 30m, 24h or 1d, not {text!r}")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


def make_trigger(*, every: str | None, cron: str | None) -> BaseTrigger:
    if (every is None) == (cron is None):
        raise ValueError("give exactly one of --every or --cron")
    if every is not None:
        return IntervalTrigger(seconds=parse_every(every).total_seconds(), timezone="UTC")
    return CronTrigger.from_crontab(cron, timezone="UTC")


def run_forever(job: Callable[[], None], trigger: BaseTrigger) -> None:
    """Run ``job`` on ``trigger`` until interrupted; never two runs at once."""
    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(job, trigger, max_instances=1, coalesce=True, id="check")
    log.info("scheduled check: %s", trigger)
    scheduler.start()
