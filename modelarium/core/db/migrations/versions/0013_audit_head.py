"""audit head: the chain's head row exists from the start

Revision ID: 0013
Revises: 0001
Create Date: 2026-12-06 06:00:00.000000

Before, the first audit write of a fresh database inserted the head row; on PostgreSQL two
first writes at once both found no head, both inserted it, and all but one failed (a command
that had succeeded was then reported and audited as an error). With the row here, every writer
locks the same existing row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.execute(
        sa.text(
            "INSERT INTO audit_head (id, last_id, last_hash) "
            "SELECT 1, 0, :genesis WHERE NOT EXISTS (SELECT 1 FROM audit_head WHERE id = 1)"
        ).bindparams(genesis=GENESIS)
    )


def downgrade() -> None:
    # Only an untouched head goes: one that records entries is part of the chain.
    op.execute(sa.text("DELETE FROM audit_head WHERE id = 1 AND last_id = 0"))
