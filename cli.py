"""Command-line interface: a thin shell over the project's Python API.

Each command parses its options, builds the dependencies (settings, engine, session), calls one library
function and renders the result. Library errors (``FlashSaleError``) become one-line messages.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from sqlalchemy import Engine

from assistant.settings import Settings
from db.engine import make_engine
from db.errors import FlashSaleError

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    help="Flash-sale merchandising assistant: build a shop, fit demand, optimise tomorrow's sale, report "
    "KPIs and chat with the assistant. Configuration comes from the environment (DATABASE_URL, FLASHSALE_*).",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema: apply and inspect migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console()
err_console = Console(stderr=True)


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn library errors into a one-line message and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except FlashSaleError as exc:
            err_console.print(f"[bold red]Error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from exc

    return wrapper


def settings() -> Settings:
    return Settings()


def engine_from_settings(cfg: Settings | None = None, **kwargs: Any) -> Engine:
    cfg = cfg or settings()
    return make_engine(cfg.resolved_database_url(), **kwargs)


# ---- db -------------------------------------------------------------------------------------------------


@db_app.command("upgrade")
@user_errors
def db_upgrade(
    revision: str = typer.Option("head", help="Target revision; 'head' applies every migration."),
) -> None:
    """Create or upgrade the database schema (SQLite file by default, DATABASE_URL if set)."""
    from db.migrate import current_revision, upgrade

    engine = engine_from_settings()
    upgrade(engine, revision)
    console.print(
        f"Database at revision [bold]{current_revision(engine)}[/] ({engine.url.render_as_string()})"
    )


@db_app.command("current")
@user_errors
def db_current() -> None:
    """Show the database's current migration revision and the newest one available."""
    from db.migrate import current_revision, head_revision

    engine = engine_from_settings()
    console.print(f"current: {current_revision(engine) or '(empty database)'}  head: {head_revision()}")


if __name__ == "__main__":
    app()
