"""catalog history: what happened to a catalog entry's model outside Git (group promotions)

Revision ID: 0022
Revises: 0016
Create Date: 2026-12-06 10:00:00.000000

Git keeps an entry's edits; what Modelarium did with the model (promoted to champion of a
group, rolled back in one) has no place in the entry's file, so it is kept here by entry id.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "catalog_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("entry_id", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("user", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=255), nullable=True),
        sa.Column("detail", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_history")),
    )
    with op.batch_alter_table("catalog_history", schema=None) as batch_op:
        batch_op.create_index("ix_catalog_history_entry", ["entry_id", "id"], unique=False)
        batch_op.create_index("ix_catalog_history_source", ["source", "action"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("catalog_history", schema=None) as batch_op:
        batch_op.drop_index("ix_catalog_history_source")
        batch_op.drop_index("ix_catalog_history_entry")
    op.drop_table("catalog_history")
