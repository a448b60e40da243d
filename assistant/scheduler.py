"""Run the daily job every day at a fixed time (APScheduler, cron trigger).

One job fires once a day at ``HH:MM`` in the configured time zone; ``max_instances=1`` and ``coalesce=True``
keep a slow run from overlapping the next one or replaying missed days, and the job's own lock
(:func:`db.job_lock.exclusive_job`) refuses a second run from another process or host.

The equivalent crontab line::

    0 6 * * * cd /srv/flashsale && .venv/bin/python cli.py daily
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from db.errors import FlashSaleError

log = logging.getLogger(__name__)

JOB_ID = "daily-draft"
MISFIRE_GRACE_S = 3600


class ScheduleError(FlashSaleError):
    """The schedule's time or time zone is not valid."""


def parse_time_of_day(text: str) -> dt.time:
    """``"06:00"`` -> ``time(6, 0)``; a clear error otherwise."""
    try:
        hour, minute = (int(part) for part in text.strip().split(":"))
        return dt.time(hour, minute)
    except ValueError as exc:
        raise ScheduleError(f"the time of day must be HH:MM (24-hour), e.g. 06:00; got {text!r}") from exc


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(
            f"unknown time zone {name!r}; use an IANA name such as UTC or Europe/Berlin"
        ) from exc


def daily_trigger(at: dt.time, timezone: str = "UTC") -> CronTrigger:
    """A trigger that fires every day at ``at`` in ``timezone``."""
    return CronTrigger(hour=at.hour, minute=at.minute, second=0, timezone=zone(timezone))


def next_fire_times(trigger: CronTrigger, start: dt.datetime, count: int) -> list[dt.datetime]:
    """The trigger's next ``count`` fire times after ``start`` (aware), as the scheduler computes them."""
    times: list[dt.datetime] = []
    previous: dt.datetime | None = None
    now = start
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            break
        times.append(fire)
        previous = fire
        now = fire + dt.timedelta(microseconds=1)
    return times


def add_daily_job(
    scheduler: BaseScheduler, job: Callable[[], Any], at: dt.time, timezone: str = "UTC"
) -> Any:
    """Register ``job`` to run daily at ``at``: one instance at a time, missed runs coalesced into one."""
    return scheduler.add_job(
        job,
        trigger=daily_trigger(at, timezone),
        id=JOB_ID,
        name="daily flash-sale plan draft",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=MISFIRE_GRACE_S,
        replace_existing=True,
    )


def run_daily(job: Callable[[], Any], at: dt.time, timezone: str = "UTC") -> None:
    """Block, running ``job`` every day at ``at`` in ``timezone`` until interrupted."""

    scheduler = BlockingScheduler(timezone=zone(timezone))
    add_daily_job(scheduler, job, at, timezone)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("scheduler stopped")
