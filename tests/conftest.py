"""Shared fixtures.

Database fixtures come in two flavours: SQLite (always) and PostgreSQL (the server named by
TEST_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/test). Each PostgreSQL test run
works in a schema of its own, dropped at the end, so parallel runs never see each other's tables. When no
PostgreSQL server answers, the PostgreSQL variants are skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_session_factory
from db.migrate import upgrade

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class DbTarget:
    """A database URL plus the engine arguments needed to reach it (e.g. a PostgreSQL search_path)."""

    url: str
    engine_kwargs: dict[str, Any] = field(default_factory=dict)

    def engine(self) -> Engine:
        return make_engine(self.url, **self.engine_kwargs)


def _postgres_unreachable_reason(url: str) -> str | None:
    try:
        engine = make_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL not reachable at {url}: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


@pytest.fixture(scope="session")
def postgres_schema_target() -> Iterator[DbTarget]:
    """A fresh PostgreSQL schema for this test session; skips when no server answers."""
    url = os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG_URL)
    reason = _postgres_unreachable_reason(url)
    if reason:
        pytest.skip(reason)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield DbTarget(url, {"connect_args": {"options": f"-csearch_path={schema}"}})
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _reset_postgres_schema(engine: Engine) -> None:
    with engine.begin() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_target(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[DbTarget]:
    """An empty database (no schema): a SQLite file, or an emptied PostgreSQL schema."""
    if request.param == "sqlite":
        yield DbTarget(f"sqlite:///{tmp_path / 'shop.db'}")
        return
    target: DbTarget = request.getfixturevalue("postgres_schema_target")
    engine = target.engine()
    _reset_postgres_schema(engine)
    engine.dispose()
    yield target


@pytest.fixture
def db_engine(db_target: DbTarget) -> Iterator[Engine]:
    """A migrated, empty database on SQLite and on PostgreSQL."""
    engine = db_target.engine()
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Any) -> Iterator[Engine]:
    """A migrated, empty SQLite database (for tests that need only one backend)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(db_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(db_engine)
