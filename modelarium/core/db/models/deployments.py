"""Deployments: the InferenceServices Modelarium manages, and every spec it applied to them.

``deployments`` holds one row per (namespace, name): what Modelarium last applied there and what
the cluster last reported (readiness since when, URL, revision), which the daemon's reconcile
keeps current. ``deployment_history`` keeps every applied spec and every stop, start, delete and
rollback, with who proposed and approved it, its digest and outcome, so "what served at 14:05"
has an answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from modelarium.core.db.base import Base, utcnow


class Deployment(Base):
    __tablename__ = "deployments"
    __table_args__ = (
        UniqueConstraint("namespace", "name", name="uq_deployments_namespace_name"),
        Index("ix_deployments_weights", "repo", "commit", "location"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    repo: Mapped[str] = mapped_column(String(255))
    commit: Mapped[str] = mapped_column(String(40))
    location: Mapped[str | None] = mapped_column(String(64))
    """The storage location whose verified snapshot it serves (None: pulled from the Hub)."""
    gpus: Mapped[int] = mapped_column(default=0)
    manifest: Mapped[dict[str, Any]]
    """The last spec Modelarium applied (what the live object should look like)."""
    change_id: Mapped[int | None] = mapped_column(ForeignKey("changes.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(16), default="deploying")
    """deploying | ready | not ready | failed | stopped | deleted | missing."""
    ready: Mapped[bool | None]
    not_ready_since: Mapped[datetime | None]
    url: Mapped[str | None] = mapped_column(Text)
    revision: Mapped[str | None] = mapped_column(String(128))
    last_seen_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeploymentEvent(Base):
    __tablename__ = "deployment_history"
    __table_args__ = (Index("ix_deployment_history_deployment", "deployment_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    change_id: Mapped[int | None] = mapped_column(
        ForeignKey("changes.id", ondelete="SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(String(16))
    """apply | rollback | stop | start | delete | removed (outside Modelarium)."""
    manifest: Mapped[dict[str, Any] | None]
    digest: Mapped[str | None] = mapped_column(String(64))
    repo: Mapped[str | None] = mapped_column(String(255))
    commit: Mapped[str | None] = mapped_column(String(40))
    proposed_by: Mapped[str | None] = mapped_column(String(64))
    approved_by: Mapped[list[Any]] = mapped_column(default=list)
    outcome: Mapped[str] = mapped_column(String(16), default="running")
    """running | succeeded | failed | rolled back."""
    detail: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    effective_at: Mapped[datetime | None]
    """When it took effect (Ready, stopped, deleted): history --at reads this."""
