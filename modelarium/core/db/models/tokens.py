"""API tokens: who a script or CI job acts as, with which scopes, until when.

Only an identifying prefix (``mdl_ab12cd34``) is kept in clear, to find the row and to show in
listings; the secret is kept as an HMAC-SHA256 under a server-side pepper. A rotated or revoked
token keeps its row (``revoked_at``, ``revoked_reason``) so a request with it is told why it is
refused, and its name can be taken again by a new token.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from modelarium.core.db.base import Base, utcnow


class ApiToken(Base):
    __tablename__ = "api_tokens"
    __table_args__ = (
        Index(
            "ux_api_tokens_live_name",
            "user_id",
            "name",
            unique=True,
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    """hex HMAC-SHA256(pepper, whole token)."""
    scopes: Mapped[list[str]] = mapped_column(default=list)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    revoked_reason: Mapped[str | None] = mapped_column(String(16))
    """``revoked`` or ``rotated`` (then ``replaced_by`` names the new token's row)."""
    replaced_by: Mapped[int | None] = mapped_column(Integer)
