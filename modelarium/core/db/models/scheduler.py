"""Leader lease, periodic task registry state and the record of every task run."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from modelarium.core.db.base import Base


class Lease(Base):
    """A named lease; ``token`` grows on every change of holder (the fencing token)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    token: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[datetime]
    renewed_at: Mapped[datetime]


class ScheduledTask(Base):
    __tablename__ = "scheduled_tasks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    interval: Mapped[float]
    description: Mapped[str] = mapped_column(Text, default="")
    next_run_at: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    last_status: Mapped[str | None] = mapped_column(String(16))
    last_summary: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    runs: Mapped[int] = mapped_column(default=0)
    failures: Mapped[int] = mapped_column(default=0)


class TaskRun(Base):
    """One execution; ``(task, tick)`` is unique so no tick runs twice across replicas."""

    __tablename__ = "task_runs"
    __table_args__ = (UniqueConstraint("task", "tick"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task: Mapped[str] = mapped_column(String(64), index=True)
    tick: Mapped[datetime]
    holder: Mapped[str] = mapped_column(String(128))
    fencing_token: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
