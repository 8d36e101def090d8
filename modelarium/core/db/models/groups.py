"""Model groups: champion and challengers compared on the same traffic, promoted on evidence.

``model_groups`` holds a group (its strategy, status, rule overrides, the hashed and the
encrypted token KServe's logger authenticates with, and the name of its own inference table,
derived from the group's id, never from what a user typed). ``model_group_members`` the members
with their role and traffic share; ``model_group_history`` every change to them;
``model_group_pending`` logger events waiting for their partner (a request for its response).
The per-group inference tables themselves are created and dropped by
:mod:`modelarium.core.groups.tables`, not by a migration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from modelarium.core.db.base import Base, utcnow


class ModelGroup(Base):
    __tablename__ = "model_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    strategy: Mapped[str] = mapped_column(String(16))
    """split | canary."""
    status: Mapped[str] = mapped_column(String(16), default="running")
    """running | promoted | rolled_back."""
    rules: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Per-group overrides of the promotion rules (settings hold the defaults)."""
    table_name: Mapped[str] = mapped_column(String(63))
    token_hash: Mapped[str] = mapped_column(String(64))
    token: Mapped[str] = mapped_column(Text)
    """The logger token, encrypted (``kernel.keyring``): the logger URL is shown again."""
    deployment: Mapped[str | None] = mapped_column(String(128))
    """namespace/name of the InferenceService (canary)."""
    revision: Mapped[int] = mapped_column(Integer, default=1)
    """Bumped by every change of members or traffic: an approval is bound to it."""
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class GroupMember(Base):
    __tablename__ = "model_group_members"
    __table_args__ = (UniqueConstraint("group_id", "name", name="uq_model_group_members_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("model_groups.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    """``<endpoint>/<model>`` (split) or the revision's member name (canary)."""
    role: Mapped[str] = mapped_column(String(16))
    """champion | challenger | retired."""
    traffic: Mapped[int] = mapped_column(Integer, default=0)
    """Percent of the group's traffic."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GroupEvent(Base):
    __tablename__ = "model_group_history"
    __table_args__ = (Index("ix_model_group_history_group", "group_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("model_groups.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(32))
    user: Mapped[str | None] = mapped_column(String(64))
    change_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class PendingEvent(Base):
    """A logger event whose partner has not arrived yet (kept until retention drops it)."""

    __tablename__ = "model_group_pending"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("model_groups.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    """request | response."""
    member: Mapped[str] = mapped_column(String(255))
    ts: Mapped[float] = mapped_column(Float)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
