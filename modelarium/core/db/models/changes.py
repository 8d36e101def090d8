"""Changes: every risky action, planned, approved by policy, run as a job, kept in history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from modelarium.core.db.base import Base, utcnow


class Change(Base):
    __tablename__ = "changes"
    __table_args__ = (Index("ix_changes_target", "target", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(255))
    summary: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]]
    digest: Mapped[str] = mapped_column(String(64))
    plan: Mapped[dict[str, Any]]
    """What the proposer saw: diff lines, facts, approval reasons, warnings."""
    status: Mapped[str] = mapped_column(String(24), index=True)
    approval_id: Mapped[int | None] = mapped_column(
        ForeignKey("approval_requests.id", ondelete="SET NULL")
    )
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("changes.id"))
    """The last change on the same target that had succeeded when this one was proposed."""
    reverts_id: Mapped[int | None] = mapped_column(ForeignKey("changes.id"))
    reverted_by_id: Mapped[int | None] = mapped_column(ForeignKey("changes.id"))
    requested_by: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """What the job recorded for history and revert (e.g. the previous role, removed items)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
