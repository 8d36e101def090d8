"""outbox content hash: a living message is edited only when its content changes

Revision ID: 0021
Revises: 0013
Create Date: 2026-12-06 09:00:00.000000

Publishers re-publish a living message whenever something *may* have changed (an alert card on
every evaluation while the alert fires); each re-publish used to become a chat.update of an
identical message. The hash of the content lets the outbox skip a publish that changes nothing.
Existing rows keep NULL: their next publish is sent once and records the hash.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.drop_column("content_hash")
