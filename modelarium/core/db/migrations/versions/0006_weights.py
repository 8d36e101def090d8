"""weights: installed model weights per storage location

Revision ID: 0006
Revises: 0001
Create Date: 2026-11-23 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "weights",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("repo_id", sa.String(length=255), nullable=False),
        sa.Column("revision", sa.String(length=255), nullable=False),
        sa.Column("commit", sa.String(length=40), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column(
            "files", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("reserved_bytes", sa.BigInteger(), nullable=False),
        sa.Column("reinstall", sa.Boolean(), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("pinned_by", sa.String(length=64), nullable=True),
        sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_access_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_weights")),
        sa.UniqueConstraint(
            "repo_id", "commit", "location", name="uq_weights_repo_commit_location"
        ),
    )
    with op.batch_alter_table("weights", schema=None) as batch_op:
        batch_op.create_index("ix_weights_location_status", ["location", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_weights_repo_id"), ["repo_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("weights", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_weights_repo_id"))
        batch_op.drop_index("ix_weights_location_status")
    op.drop_table("weights")
