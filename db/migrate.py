"""Alembic migrations, run programmatically (no alembic.ini needed): ``python cli.py db upgrade``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from db.errors import DatabaseNotReady

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` on ``engine``'s database (creating it from empty if needed)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def require_current_schema(engine: Engine) -> None:
    """Raise :class:`DatabaseNotReady` when the database holds the schema at an older revision (a database
    without any table is left alone: the commands that fill one create its schema)."""
    current = current_revision(engine)
    if current is None:
        return
    head = head_revision()
    if current != head:
        raise DatabaseNotReady(
            f"the database is at schema revision {current}, this version needs {head}: "
            "run `python cli.py db upgrade` (it keeps the data)"
        )


def require_shop(engine: Engine) -> None:
    """Raise :class:`DatabaseNotReady` when the database holds no shop (no schema: a SQLite path that names
    no file, checked without creating one, or an empty database), or holds an older schema."""
    where = engine.url.render_as_string(hide_password=True)
    database = engine.url.database
    on_disk = engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")
    missing_file = on_disk and not Path(str(database)).exists()
    if missing_file or current_revision(engine) is None:
        raise DatabaseNotReady(
            f"no shop at {where}: build the demo shop with `python cli.py demo`, or import your data "
            "(`python cli.py import catalog FILE` first); FLASHSALE_DB_PATH or DATABASE_URL chooses the "
            "database (a relative FLASHSALE_DB_PATH is read from the current folder)"
        )
    require_current_schema(engine)
