"""groups: model groups (champion/challenger), members, history, pending logger events

The per-group inference tables are not here: each is created with its group and dropped with
it (modelarium.core.groups.tables).

Revision ID: 0018
Revises: 0001
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "model_groups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("strategy", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rules", _JSON, nullable=False),
        sa.Column("table_name", sa.String(length=63), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("deployment", sa.String(length=128), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_groups")),
        sa.UniqueConstraint("name", name=op.f("uq_model_groups_name")),
    )
    op.create_table(
        "model_group_members",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("traffic", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["model_groups.id"],
            name=op.f("fk_model_group_members_group_id_model_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_group_members")),
        sa.UniqueConstraint("group_id", "name", name="uq_model_group_members_name"),
    )
    op.create_table(
        "model_group_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("user", sa.String(length=64), nullable=True),
        sa.Column("change_id", sa.Integer(), nullable=True),
        sa.Column("detail", _JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["model_groups.id"],
            name=op.f("fk_model_group_history_group_id_model_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_group_history")),
    )
    op.create_index("ix_model_group_history_group", "model_group_history", ["group_id", "id"])
    op.create_table(
        "model_group_pending",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("member", sa.String(length=255), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["model_groups.id"],
            name=op.f("fk_model_group_pending_group_id_model_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "group_id", "event_id", "kind", name=op.f("pk_model_group_pending")
        ),
    )


def downgrade() -> None:
    op.drop_table("model_group_pending")
    op.drop_index("ix_model_group_history_group", table_name="model_group_history")
    op.drop_table("model_group_history")
    op.drop_table("model_group_members")
    op.drop_table("model_groups")
