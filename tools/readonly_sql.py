"""A read-only SQL tool: one SELECT, checked by a SQL parser, run on a read-only connection with limits.

The statement is parsed with sqlglot in the engine's dialect and refused unless it is exactly one query
(SELECT, optionally with CTEs and UNION/INTERSECT/EXCEPT) that

- reads only the shop's tables (never the simulator's hidden ``sim_*`` truth, the audit log, the assistant's
  conversations, the migration table or system catalogues),
- calls only functions the parser knows as pure (plus a short list of SQLite date helpers); unknown
  functions such as ``load_extension`` or ``pg_sleep`` are refused,
- has no ``SELECT ... INTO``, no row locks, and no writes, DDL, PRAGMA, ATTACH or SET anywhere.

It then runs on a connection that cannot write: SQLite opened with ``mode=ro`` (and ``query_only``),
PostgreSQL inside ``SET TRANSACTION READ ONLY`` with ``statement_timeout``; SQLite gets a progress handler
that aborts at the time limit. At most ``max_rows`` rows come back.
"""

from __future__ import annotations

import time
from typing import Any

import sqlglot
from pydantic import BaseModel, Field, SerializationInfo, field_serializer
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlglot import exp

from db.errors import FlashSaleError
from db.models import Base
from tools.outside_text import fence_free_text, for_model

DEFAULT_MAX_ROWS = 200
DEFAULT_TIMEOUT_S = 5.0

HIDDEN_TABLE_PREFIXES = ("sim_",)
HIDDEN_TABLES = frozenset({"audit_log", "alembic_version", "conversation_message"})
ALLOWED_ANONYMOUS_FUNCTIONS = frozenset(
    {"date", "datetime", "strftime", "julianday", "printf", "format", "date_trunc", "extract", "ifnull"}
)
FORBIDDEN_NODES: tuple[type[exp.Expression], ...] = tuple(
    getattr(exp, name)
    for name in (
        "Insert",
        "Update",
        "Delete",
        "Merge",
        "Create",
        "Drop",
        "Alter",
        "TruncateTable",
        "Command",
        "Pragma",
        "Attach",
        "Detach",
        "Set",
        "Into",
        "Lock",
        "Copy",
        "LoadData",
        "Use",
        "Transaction",
        "Commit",
        "Rollback",
    )
    if hasattr(exp, name)
)


class UnsafeSql(FlashSaleError):
    """The statement is not a single read-only SELECT over the shop's tables."""


class SqlFailed(FlashSaleError):
    """The database refused or aborted the query (syntax, unknown column, time limit)."""


class SqlResult(BaseModel):
    sql: str = Field(description="The statement as run.")
    columns: list[str]
    rows: list[list[Any]]
    row_count: int
    truncated: bool = Field(description="True when more rows existed than max_rows.")
    elapsed_ms: float

    @field_serializer("rows")
    def _fence_free_text(self, rows: list[list[Any]], info: SerializationInfo) -> list[list[Any]]:
        """A query can select any text (review bodies, news): a model reads its free-text cells fenced."""
        if not for_model(info):
            return rows
        return [[fence_free_text(cell) for cell in row] for row in rows]


def readable_tables() -> frozenset[str]:
    """Tables the SQL tool may read: the schema less simulator truth, audit log and migrations."""
    return frozenset(
        name
        for name in Base.metadata.tables
        if not name.startswith(HIDDEN_TABLE_PREFIXES) and name not in HIDDEN_TABLES
    )


def _dialect(engine: Engine) -> str:
    return "postgres" if engine.dialect.name == "postgresql" else engine.dialect.name


def check_select(sql: str, dialect: str = "sqlite") -> exp.Expression:
    """Parse ``sql`` and return its tree, or raise :class:`UnsafeSql` saying what is not allowed."""
    if not sql or not sql.strip():
        raise UnsafeSql("empty statement: write one SELECT")
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise UnsafeSql(f"could not parse the SQL: {str(exc).splitlines()[0]}") from exc
    if len(statements) != 1:
        raise UnsafeSql(f"exactly one statement is allowed, got {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Select | exp.SetOperation):
        raise UnsafeSql(f"only SELECT is allowed, got {tree.key.upper()}")
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    allowed = readable_tables()
    for node in tree.walk():
        if isinstance(node, FORBIDDEN_NODES):
            raise UnsafeSql(f"{node.key.upper()} is not allowed in a read-only query")
        if isinstance(node, exp.Table):
            name = node.name.lower()
            if node.args.get("db") or node.args.get("catalog"):
                raise UnsafeSql(
                    f"schema-qualified table {node.sql()} is not allowed; use the bare table name"
                )
            if name in cte_names:
                continue
            if name not in allowed:
                raise UnsafeSql(
                    f"table {name!r} cannot be read; readable tables: {', '.join(sorted(allowed))}"
                )
        if isinstance(node, exp.Anonymous) and node.name.lower() not in ALLOWED_ANONYMOUS_FUNCTIONS:
            raise UnsafeSql(f"function {node.name}() is not allowed")
    return tree


def _sqlite_readonly_engine(engine: Engine) -> Engine:
    database = make_url(engine.url).database
    if not database or database == ":memory:":
        raise SqlFailed(
            "the read-only SQL tool needs a file database (an in-memory SQLite cannot be reopened)"
        )
    return create_engine(f"sqlite:///file:{database}?mode=ro&uri=true", poolclass=None)


def run_readonly_sql(
    engine: Engine,
    sql: str,
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> SqlResult:
    """Check ``sql`` with :func:`check_select` and run it read-only with a row and a time limit."""
    if max_rows < 1:
        raise UnsafeSql("max_rows must be at least 1")
    tree = check_select(sql, _dialect(engine))
    statement = tree.sql(dialect=_dialect(engine))
    started = time.perf_counter()
    if engine.dialect.name == "sqlite":
        ro = _sqlite_readonly_engine(engine)
        try:
            with ro.connect() as conn:
                raw = conn.connection.driver_connection
                deadline = started + timeout_s
                if raw is not None:
                    raw.execute("PRAGMA query_only = ON")
                    raw.set_progress_handler(lambda: int(time.perf_counter() > deadline), 10_000)
                columns, rows, truncated = _fetch(conn, statement, max_rows)
        finally:
            ro.dispose()
    else:
        with engine.connect() as conn, conn.begin() as tx:
            conn.execute(text("SET TRANSACTION READ ONLY"))
            conn.execute(text(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}"))
            columns, rows, truncated = _fetch(conn, statement, max_rows)
            tx.rollback()
    return SqlResult(
        sql=statement,
        columns=columns,
        rows=rows,
        row_count=len(rows),
        truncated=truncated,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 2),
    )


def _fetch(conn: Any, statement: str, max_rows: int) -> tuple[list[str], list[list[Any]], bool]:
    try:
        result = conn.exec_driver_sql(statement)
        fetched = result.fetchmany(max_rows + 1)
        columns = list(result.keys())
    except DBAPIError as exc:
        message = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
        if "interrupted" in message or "statement timeout" in message:
            message += " (time limit reached: add filters or a LIMIT)"
        raise SqlFailed(f"the database refused the query: {message}") from exc
    rows = [list(r) for r in fetched[:max_rows]]
    return columns, rows, len(fetched) > max_rows
