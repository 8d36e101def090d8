"""modelfiles: stored Modelfiles, revisions, elements library, applications

Revision ID: 0008
Revises: 0001
Create Date: 2026-11-23 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "modelfile_elements",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("head", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_modelfile_elements")),
        sa.UniqueConstraint("name", name=op.f("uq_modelfile_elements_name")),
    )
    with op.batch_alter_table("modelfile_elements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_modelfile_elements_kind"), ["kind"], unique=False)

    op.create_table(
        "modelfiles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("head", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_modelfiles")),
        sa.UniqueConstraint("name", name=op.f("uq_modelfiles_name")),
    )

    op.create_table(
        "modelfile_element_revisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("element_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("content", _JSON, nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["element_id"],
            ["modelfile_elements.id"],
            name=op.f("fk_modelfile_element_revisions_element_id_modelfile_elements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_modelfile_element_revisions")),
        sa.UniqueConstraint(
            "element_id", "number", name=op.f("uq_modelfile_element_revisions_element_id")
        ),
    )

    op.create_table(
        "modelfile_revisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("modelfile_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["modelfile_id"],
            ["modelfiles.id"],
            name=op.f("fk_modelfile_revisions_modelfile_id_modelfiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_modelfile_revisions")),
        sa.UniqueConstraint(
            "modelfile_id", "number", name=op.f("uq_modelfile_revisions_modelfile_id")
        ),
    )

    op.create_table(
        "modelfile_applications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("applied_by", sa.String(length=64), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["modelfile_revisions.id"],
            name=op.f("fk_modelfile_applications_revision_id_modelfile_revisions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_modelfile_applications")),
        sa.UniqueConstraint("job_id", name=op.f("uq_modelfile_applications_job_id")),
    )
    with op.batch_alter_table("modelfile_applications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_modelfile_applications_revision_id"), ["revision_id"], unique=False
        )

    op.create_table(
        "modelfile_revision_elements",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("element_id", sa.Integer(), nullable=False),
        sa.Column("element_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["element_id"],
            ["modelfile_elements.id"],
            name=op.f("fk_modelfile_revision_elements_element_id_modelfile_elements"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["modelfile_revisions.id"],
            name=op.f("fk_modelfile_revision_elements_revision_id_modelfile_revisions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_modelfile_revision_elements")),
        sa.UniqueConstraint(
            "revision_id", "element_id", name=op.f("uq_modelfile_revision_elements_revision_id")
        ),
    )
    with op.batch_alter_table("modelfile_revision_elements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_modelfile_revision_elements_element_id"), ["element_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("modelfile_revision_elements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_modelfile_revision_elements_element_id"))
    op.drop_table("modelfile_revision_elements")
    with op.batch_alter_table("modelfile_applications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_modelfile_applications_revision_id"))
    op.drop_table("modelfile_applications")
    op.drop_table("modelfile_revisions")
    op.drop_table("modelfile_element_revisions")
    op.drop_table("modelfiles")
    with op.batch_alter_table("modelfile_elements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_modelfile_elements_kind"))
    op.drop_table("modelfile_elements")
