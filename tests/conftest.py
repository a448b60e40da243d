"""Shared fixtures.

Database fixtures come in two flavours: SQLite (always) and PostgreSQL (the server named by
TEST_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/test). Each PostgreSQL test run
works in a schema of its own, dropped at the end, so parallel runs never see each other's tables. When no
PostgreSQL server answers, the PostgreSQL variants are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_session_factory
from db.migrate import upgrade
from tests.assistant_shop import build_assistant_shop
from tools.simulator import SimConfig, build_world
from tools.simulator.demo import build_demo

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(autouse=True)
def _no_real_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach a real model: the LLM URL points at a closed local port unless a test sets its own,
    and sockets to anything but the loopback interface are refused."""

    monkeypatch.setenv("FLASHSALE_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    real_connect = socket.socket.connect

    def loopback_only(sock: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else None
        if isinstance(host, str) and not (host.startswith("127.") or host in ("::1", "localhost")):
            raise OSError(f"tests may not connect to {host}: only loopback servers are allowed")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)


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


# ---- the assistant's hand-made shop ----


@pytest.fixture
def shop_url(tmp_path: Any) -> str:
    """A SQLite URL of the assistant's small hand-made shop (``tests.assistant_shop``), filled."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = make_engine(url)
    upgrade(engine)
    build_assistant_shop(make_session_factory(engine))
    engine.dispose()
    return url


# ---- the demo shop (simulated, small, seeded) ----


@dataclass(frozen=True)
class DemoShop:
    """A small simulated shop in a SQLite file: its URL, an engine, the simulator's World (ground truth)
    and what was written. Shared by the whole test session: tests that write should use ``demo_shop_copy``."""

    url: str
    path: Any
    engine: Engine
    session_factory: sessionmaker[Session]
    world: Any  # tools.simulator.World
    summary: Any  # tools.simulator.demo.DemoSummary


DEMO_SHOP_CONFIG: dict[str, Any] = {
    "seed": 7,
    "n_skus": 150,
    "n_customers": 1_500,
    "n_days": 120,
    "n_flash_days": 8,
    "end_date": "2026-06-30",
}


def _open_demo_shop(path: Any, world: Any, summary: Any) -> DemoShop:
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    return DemoShop(url, path, engine, make_session_factory(engine), world, summary)


@pytest.fixture(scope="session")
def demo_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoShop]:
    """A small seeded shop (150 SKUs, 1,500 customers, 120 days to 2026-06-30, 8 past flash sales),
    built once per test session. Treat it as read-only."""

    path = tmp_path_factory.mktemp("demo_shop") / "shop.db"
    config = SimConfig.model_validate(DEMO_SHOP_CONFIG)
    engine = make_engine(f"sqlite:///{path}")
    summary = build_demo(engine, config)
    engine.dispose()
    shop = _open_demo_shop(path, build_world(config), summary)
    yield shop
    shop.engine.dispose()


@pytest.fixture
def demo_shop_copy(demo_shop: DemoShop, tmp_path: Any) -> Iterator[DemoShop]:
    """A private copy of ``demo_shop`` that a test may write to."""

    path = tmp_path / "shop.db"
    shutil.copyfile(demo_shop.path, path)
    shop = _open_demo_shop(path, demo_shop.world, demo_shop.summary)
    yield shop
    shop.engine.dispose()
