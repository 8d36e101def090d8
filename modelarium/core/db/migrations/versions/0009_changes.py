"""changes: one record per risky change; follow-up messages posted in a thread

Revision ID: 0009
Revises: 0001
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("params", _JSON, nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("plan", _JSON, nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("approval_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("supersedes_id", sa.Integer(), nullable=True),
        sa.Column("reverts_id", sa.Integer(), nullable=True),
        sa.Column("reverted_by_id", sa.Integer(), nullable=True),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("result", _JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["approval_id"],
            ["approval_requests.id"],
            name=op.f("fk_changes_approval_id_approval_requests"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_changes_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["supersedes_id"], ["changes.id"], name=op.f("fk_changes_supersedes_id_changes")
        ),
        sa.ForeignKeyConstraint(
            ["reverts_id"], ["changes.id"], name=op.f("fk_changes_reverts_id_changes")
        ),
        sa.ForeignKeyConstraint(
            ["reverted_by_id"], ["changes.id"], name=op.f("fk_changes_reverted_by_id_changes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_changes")),
    )
    op.create_index(op.f("ix_changes_kind"), "changes", ["kind"])
    op.create_index(op.f("ix_changes_status"), "changes", ["status"])
    op.create_index(op.f("ix_changes_requested_by"), "changes", ["requested_by"])
    op.create_index("ix_changes_target", "changes", ["target", "id"])
    with op.batch_alter_table("outbound_messages") as batch:
        batch.add_column(sa.Column("thread_of", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbound_messages") as batch:
        batch.drop_column("thread_of")
    op.drop_index("ix_changes_target", table_name="changes")
    op.drop_index(op.f("ix_changes_requested_by"), table_name="changes")
    op.drop_index(op.f("ix_changes_status"), table_name="changes")
    op.drop_index(op.f("ix_changes_kind"), table_name="changes")
    op.drop_table("changes")
