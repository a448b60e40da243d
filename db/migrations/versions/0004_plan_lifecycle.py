"""plan lifecycle: revisions of a plan and its events

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("flash_sale_plan", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revision", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("revises_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("root_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_flash_sale_plan_revises_id_flash_sale_plan"),
            "flash_sale_plan",
            ["revises_id"],
            ["id"],
        )
        batch_op.create_index(batch_op.f("ix_flash_sale_plan_root_id"), ["root_id"], unique=False)
    op.create_table(
        "plan_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=30), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["flash_sale_plan.id"],
            name=op.f("fk_plan_event_plan_id_flash_sale_plan"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_event")),
    )
    with op.batch_alter_table("plan_event", schema=None) as batch_op:
        batch_op.create_index("ix_plan_event_plan_id_ts", ["plan_id", "ts"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("plan_event", schema=None) as batch_op:
        batch_op.drop_index("ix_plan_event_plan_id_ts")
    op.drop_table("plan_event")
    with op.batch_alter_table("flash_sale_plan", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flash_sale_plan_root_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_flash_sale_plan_revises_id_flash_sale_plan"), type_="foreignkey"
        )
        batch_op.drop_column("root_id")
        batch_op.drop_column("revises_id")
        batch_op.drop_column("revision")
