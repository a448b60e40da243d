"""Commands that write wait for one another, and say so while they wait.

SQLite has one writer at a time: an import holds the write lock for the whole of its one transaction (minutes
for millions of lines). :func:`wait_for_writer` lets a command that is about to write wait for that lock with
a line every few seconds ("waiting for another command to finish writing ...") instead of a silent busy
timeout, and stop with one line after ``FLASHSALE_DB_BUSY_TIMEOUT_S``. :func:`hold_job_lock` makes runs of one
job (``plan``) take turns for the length of their transaction, so that two runs at once do not both fit a
model or save the same draft: SQLite's write lock, PostgreSQL's transaction-scoped advisory lock.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from db.engine import DatabaseBusy, busy_timeout_s

POLL_S = 1.0
SAY_EVERY_S = 5.0


def wait_for_writer(
    engine: Engine, on_wait: Callable[[str], None] | None = None, *, timeout_s: float | None = None
) -> None:
    """Return once no other command holds SQLite's write lock (at once on PostgreSQL, whose readers and
    writers of different rows do not wait); :class:`DatabaseBusy` after ``timeout_s`` (default: the busy
    timeout). ``on_wait`` hears how long it has waited, every few seconds."""
    if engine.dialect.name != "sqlite":
        return
    limit = busy_timeout_s() if timeout_s is None else timeout_s
    started = time.monotonic()
    said = -SAY_EVERY_S
    raw = engine.raw_connection()
    driver = raw.driver_connection
    assert driver is not None  # a pooled SQLite connection always has its sqlite3 connection
    try:
        driver.execute(f"PRAGMA busy_timeout = {int(POLL_S * 1000)}")
        while True:
            try:
                driver.execute("BEGIN IMMEDIATE")  # the write lock, released at once
                driver.execute("ROLLBACK")
                return
            except Exception as exc:  # sqlite3.OperationalError: database is locked
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
            waited = time.monotonic() - started
            if waited >= limit:
                raise DatabaseBusy(
                    f"the database is busy: another command (an import?) has held its write lock for "
                    f"{waited:.0f} s. Run this again when it has finished, or wait longer with "
                    f"FLASHSALE_DB_BUSY_TIMEOUT_S=SECONDS."
                )
            if on_wait is not None and waited - said >= SAY_EVERY_S:
                said = waited
                on_wait(
                    f"waiting for another command to finish writing (an import?): {waited:.0f} s "
                    f"of at most {limit:g} s"
                )
    finally:
        driver.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s() * 1000)}")
        raw.close()


def hold_job_lock(session: Session, job: str) -> None:
    """Make runs of ``job`` take turns until the session's transaction ends (commit or rollback)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (zlib.crc32(job.encode()),))
    elif connection.dialect.name == "sqlite":  # a write that changes nothing takes the one write lock
        connection.exec_driver_sql("UPDATE flash_sale_plan SET id = id WHERE 0 = 1")
