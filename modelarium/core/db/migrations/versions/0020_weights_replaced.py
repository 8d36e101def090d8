"""weights.replaced: blobs an unfinished reinstall has already replaced and verified

Revision ID: 0020
Revises: 0006
Create Date: 2026-12-06 09:00:00.000000

A reinstall that failed (a corrupt shard on the hub) used to forget which shards it had already
fetched and verified, so its retry downloaded them all again. The list lives on the record,
not in the job, because the retry is a new job; it is cleared when the reinstall completes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("weights") as batch:
        batch.add_column(
            sa.Column(
                "replaced", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("weights") as batch:
        batch.drop_column("replaced")
