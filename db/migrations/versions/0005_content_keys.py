"""content keys of reviews and news items, so that a file imported twice is not loaded twice

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 15:40:00
"""

import datetime as dt
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

from db.content_keys import news_key, review_key

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _moment(value: object) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))  # SQLite: text


def _backfill(table: str, columns: str, key_of: Callable[..., str], moment_at: int) -> None:
    """Each existing row's key; a row repeating an earlier one keeps NULL (it was imported twice before)."""
    conn = op.get_bind()
    seen: set[str] = set()
    updates = []
    for row in conn.execute(sa.text(f"SELECT id, {columns} FROM {table} ORDER BY id")):
        values = list(row[1:])
        values[moment_at] = _moment(values[moment_at])
        key = key_of(*values)
        if key not in seen:
            seen.add(key)
            updates.append({"id": row[0], "key": key})
    if updates:
        conn.execute(sa.text(f"UPDATE {table} SET content_key = :key WHERE id = :id"), updates)


def upgrade() -> None:
    for table in ("review", "market_news"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("content_key", sa.String(length=64), nullable=True))
    _backfill("review", "sku, customer_id, rating, text, ts", review_key, 4)
    _backfill("market_news", "source, title, published_at, url", news_key, 2)
    for table in ("review", "market_news"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f"ix_{table}_content_key"), ["content_key"], unique=True)


def downgrade() -> None:
    for table in ("market_news", "review"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_content_key"))
            batch_op.drop_column("content_key")
