"""Who holds which role: explicit grants and memberships synced from Slack user groups."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from modelarium.core.db.base import Base, utcnow


class RoleGrant(Base):
    __tablename__ = "role_grants"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    granted_by: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)


class GroupMembership(Base):
    """A user's role through a mapped Slack user group (the chat analogue of SSO claims)."""

    __tablename__ = "group_memberships"

    group_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(16))
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)
