"""Fast bulk inserts used by the demo generator and the CSV importer.

Rows are tuples in the order of ``columns``. Values go through each column type's own bind processor, so
what lands in the database is exactly what the ORM would have written (datetimes in SQLAlchemy's SQLite
format, JSON serialised). PostgreSQL uses COPY; SQLite uses executemany. Both run inside the caller's
transaction: nothing is committed here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any

from sqlalchemy import JSON, Connection, Table


def bulk_insert(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    batch_size: int = 20_000,
) -> int:
    """Insert ``rows`` into ``table`` on ``conn`` and return how many were written."""
    if conn.dialect.name == "postgresql":
        return _copy_postgres(conn, table, columns, rows)
    return _executemany(conn, table, columns, rows, batch_size)


def _processors(conn: Connection, table: Table, columns: Sequence[str]) -> list[Any]:
    return [table.c[name].type._cached_bind_processor(conn.dialect) for name in columns]


def _executemany(
    conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]], batch_size: int
) -> int:
    processors = _processors(conn, table, columns)
    active = [(i, p) for i, p in enumerate(processors) if p is not None]
    quote = conn.dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    total = 0
    iterator = iter(rows)
    while batch := list(islice(iterator, batch_size)):
        if active:
            converted: list[Sequence[Any]] = []
            for row in batch:
                values = list(row)
                for i, proc in active:
                    if values[i] is not None:
                        values[i] = proc(values[i])
                converted.append(tuple(values))
            batch = converted
        conn.exec_driver_sql(sql, batch)
        total += len(batch)
    return total


def _copy_postgres(
    conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    # JSON columns need serialising; every other type psycopg adapts natively.
    processors = _processors(conn, table, columns)
    json_cols = [i for i, name in enumerate(columns) if isinstance(table.c[name].type, JSON)]
    quote = conn.dialect.identifier_preparer.quote
    raw = conn.connection.driver_connection
    total = 0
    with raw.cursor() as cursor:  # type: ignore[union-attr]
        statement = f"COPY {quote(table.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
        with cursor.copy(statement) as copy:
            for row in rows:
                if json_cols:
                    values = list(row)
                    for i in json_cols:
                        proc = processors[i]
                        values[i] = proc(values[i]) if proc else values[i]
                    copy.write_row(values)
                else:
                    copy.write_row(row)
                total += 1
    return total
