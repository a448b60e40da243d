"""One run of a job at a time, across processes and machines: :func:`exclusive_job`.

PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held on its own connection for the
length of the job, so the bot and the scheduler on different hosts exclude each other through the database
they share; it disappears with the connection if the process dies. SQLite (one host by nature): an
``flock`` on a lock file beside the database file, which the kernel drops when the process dies. A second
run does not wait: it gets :class:`JobLocked` at once, saying who holds the lock since when.
"""

from __future__ import annotations

import fcntl
import os
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine

from db.errors import FlashSaleError
from db.files import OutputPathError
from db.sqlvalues import utc_now


class JobLocked(FlashSaleError):
    """Another run of the same job holds its lock."""


def _key(job: str) -> int:
    return zlib.crc32(f"flashsale-job:{job}".encode()) & 0x7FFFFFFF


@contextmanager
def exclusive_job(engine: Engine, job: str) -> Iterator[None]:
    """Hold the lock of ``job`` for the block, or raise :class:`JobLocked` when another run holds it."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            got = conn.exec_driver_sql("SELECT pg_try_advisory_lock(%s)", (_key(job),)).scalar()
            conn.commit()
            if not got:
                raise JobLocked(
                    f"the {job} job is running elsewhere (another process or host holds its lock in the "
                    "database); this run was refused. Wait for it to finish, then run again."
                )
            try:
                yield
            finally:
                conn.exec_driver_sql("SELECT pg_advisory_unlock(%s)", (_key(job),))
                conn.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield  # an in-memory database lives in one process: nothing else can run the job on it
        return
    refusal = (
        f"the {job} job is already running ({{holder}}); this run was refused. Wait for it to finish, then "
        "run again."
    )
    with file_lock(Path(f"{database}.{job}.lock"), lambda holder: JobLocked(refusal.format(holder=holder))):
        yield


@contextmanager
def file_lock(path: Path, refused: Callable[[str], Exception]) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``path`` for the block; ``refused(holder)`` is raised when another run
    holds it (``holder``: the pid and start time it wrote into the file).

    ``flock`` locks belong to an open file description, so two runs (processes or threads) conflict and a
    crashed run's lock disappears with it. The lock file is never deleted: deleting it would let a third run
    lock a new file while a second still waits on the old one.
    """
    try:  # never through a link: the lock file is truncated
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise OutputPathError(f"cannot open the lock file {path}: {exc.strerror or exc}.") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise refused(path.read_text(encoding="utf-8").strip() or "another run") from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} since {utc_now():%Y-%m-%d %H:%M:%S} UTC".encode())
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
