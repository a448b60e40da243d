"""The one place that creates engines and sessions.

The caller owns the transaction: open ``with session_scope(factory) as session:`` (or
``with factory.begin() as session:``) once per command or agent turn; repository functions take the
session and never commit themselves.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from db.errors import FlashSaleError

#: How long a SQLite write waits for another writer (an import holds one transaction for minutes).
BUSY_TIMEOUT_ENV = "FLASHSALE_DB_BUSY_TIMEOUT_S"
DEFAULT_BUSY_TIMEOUT_S = 120.0


class DatabaseBusy(FlashSaleError):
    """Another command held the database's write lock for longer than the busy timeout."""


def busy_timeout_s() -> float:
    return float(os.environ.get(BUSY_TIMEOUT_ENV) or DEFAULT_BUSY_TIMEOUT_S)


def database_busy(exc: Exception) -> DatabaseBusy | None:
    """``exc`` as a :class:`DatabaseBusy` when it is SQLite's "database is locked", else None."""
    if isinstance(exc, OperationalError) and "database is locked" in str(exc):
        return DatabaseBusy(
            f"the database is busy: another command (an import?) held its write lock for more than "
            f"{busy_timeout_s():g} s. Run this again when it has finished, or wait longer with "
            f"{BUSY_TIMEOUT_ENV}=SECONDS."
        )
    return None


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url``. SQLite files get their folder created, WAL mode, foreign keys on and a
    busy timeout (``FLASHSALE_DB_BUSY_TIMEOUT_S``, default 120 s) to wait for another writer."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {}).setdefault("timeout", busy_timeout_s())
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "checkin", _sqlite_writable)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_writable(dbapi_connection: Any, _record: Any) -> None:
    """Undo :func:`read_only_scope`'s ``query_only`` when a connection goes back to the pool."""
    if dbapi_connection is not None:
        dbapi_connection.execute("PRAGMA query_only = OFF")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to ``engine``; sessions do not expire objects on commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with factory.begin() as session:
        yield session


@contextmanager
def read_only_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work that cannot write: the database itself refuses every write, and it always rolls back.

    SQLite: ``PRAGMA query_only`` on the session's connection for the length of the scope (every SQLite
    connection is switched back to writable when it returns to the pool). PostgreSQL: ``SET TRANSACTION
    READ ONLY``. A write attempted inside raises the database's own error ("attempt to write a readonly
    database", "cannot execute ... in a read-only transaction").
    """
    with factory() as session:
        connection = session.connection()
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA query_only = ON")
        elif connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        try:
            yield session
        finally:
            session.rollback()
