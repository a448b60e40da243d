"""aggregated sales per period and the promotion calendar

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sales_period",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_days", sa.Integer(), nullable=False),
        sa.Column("units", sa.Float(), nullable=False),
        sa.Column("revenue_cents", sa.BigInteger(), nullable=False),
        sa.Column("base_price_cents", sa.BigInteger(), nullable=True),
        sa.Column("discounted", sa.Boolean(), nullable=False),
        sa.Column("featured", sa.Boolean(), nullable=False),
        sa.Column("display", sa.Boolean(), nullable=False),
        sa.Column("promotion", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["sku"], ["product.sku"], name=op.f("fk_sales_period_sku_product")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_period")),
        sa.UniqueConstraint("sku", "location", "period_start", name=op.f("uq_sales_period_sku")),
    )
    with op.batch_alter_table("sales_period", schema=None) as batch_op:
        batch_op.create_index("ix_sales_period_period_start", ["period_start"], unique=False)
    op.create_table(
        "promotion",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=False),
        sa.Column("sale_price_cents", sa.BigInteger(), nullable=True),
        sa.Column("discount", sa.Float(), nullable=True),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["sku"], ["product.sku"], name=op.f("fk_promotion_sku_product")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion")),
    )
    with op.batch_alter_table("promotion", schema=None) as batch_op:
        batch_op.create_index("ix_promotion_start_end", ["start", "end"], unique=False)
        batch_op.create_index("ix_promotion_sku", ["sku"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("promotion", schema=None) as batch_op:
        batch_op.drop_index("ix_promotion_sku")
        batch_op.drop_index("ix_promotion_start_end")
    op.drop_table("promotion")
    with op.batch_alter_table("sales_period", schema=None) as batch_op:
        batch_op.drop_index("ix_sales_period_period_start")
    op.drop_table("sales_period")
