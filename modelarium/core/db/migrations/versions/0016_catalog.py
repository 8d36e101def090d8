"""catalog: entries mirrored from Git, drafts, pull requests, sync validators

Revision ID: 0016
Revises: 0001
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "catalog_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("entry_id", sa.String(length=100), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("blob_sha", sa.String(length=40), nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("issues", _JSON, nullable=False),
        sa.Column("repo_id", sa.String(length=255), nullable=True),
        sa.Column("commit", sa.String(length=40), nullable=True),
        sa.Column("git_commit", sa.String(length=40), nullable=False),
        sa.Column("synced_at", _TS, nullable=False),
        sa.Column("changed_at", _TS, nullable=False),
        sa.Column("hub_commit", sa.String(length=40), nullable=True),
        sa.Column("hub_license", sa.String(length=100), nullable=True),
        sa.Column("hub_checked_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_entries")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_catalog_entries_entry_id")),
    )
    with op.batch_alter_table("catalog_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_entries_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_catalog_entries_repo_id"), ["repo_id"], unique=False)

    op.create_table(
        "catalog_drafts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("entry_id", sa.String(length=100), nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("issues", _JSON, nullable=False),
        sa.Column("validated_at", _TS, nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_drafts")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_catalog_drafts_entry_id")),
    )
    with op.batch_alter_table("catalog_drafts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_drafts_state"), ["state"], unique=False)

    op.create_table(
        "catalog_pulls",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("entry_id", sa.String(length=100), nullable=False),
        sa.Column("repo", sa.String(length=255), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=1024), nullable=False),
        sa.Column("branch", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("head_sha", sa.String(length=40), nullable=False),
        sa.Column("tree_sha", sa.String(length=40), nullable=False),
        sa.Column("blob_sha", sa.String(length=40), nullable=False),
        sa.Column("left_alone", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("opened_by", sa.String(length=64), nullable=False),
        sa.Column("opened_at", _TS, nullable=False),
        sa.Column("published_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("closed_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_pulls")),
    )
    with op.batch_alter_table("catalog_pulls", schema=None) as batch_op:
        batch_op.create_index("ix_catalog_pulls_entry_state", ["entry_id", "state"], unique=False)

    op.create_table(
        "catalog_sync",
        sa.Column("repo", sa.String(length=255), nullable=False),
        sa.Column("branch", sa.String(length=255), nullable=True),
        sa.Column("branch_checked_at", _TS, nullable=True),
        sa.Column("repo_etag", sa.String(length=255), nullable=True),
        sa.Column("ref_etag", sa.String(length=255), nullable=True),
        sa.Column("pulls_etag", sa.String(length=255), nullable=True),
        sa.Column("head_sha", sa.String(length=40), nullable=True),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("synced_at", _TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("repo", name=op.f("pk_catalog_sync")),
    )


def downgrade() -> None:
    op.drop_table("catalog_sync")
    with op.batch_alter_table("catalog_pulls", schema=None) as batch_op:
        batch_op.drop_index("ix_catalog_pulls_entry_state")
    op.drop_table("catalog_pulls")
    with op.batch_alter_table("catalog_drafts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_drafts_state"))
    op.drop_table("catalog_drafts")
    with op.batch_alter_table("catalog_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_entries_repo_id"))
        batch_op.drop_index(batch_op.f("ix_catalog_entries_status"))
    op.drop_table("catalog_entries")
