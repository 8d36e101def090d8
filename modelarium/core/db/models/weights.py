"""Model weights installed (or being installed) in a storage location.

One row per (repo, commit, location). The files themselves live on disk in the Hugging Face cache
layout; this row owns them, carries the file manifest the install verifies against, the disk
space an unfinished install has reserved, and the inventory facts (pin, last access).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from modelarium.core.db.base import Base, utcnow


class WeightRecord(Base):
    __tablename__ = "weights"
    __table_args__ = (
        UniqueConstraint("repo_id", "commit", "location", name="uq_weights_repo_commit_location"),
        Index("ix_weights_location_status", "location", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repo_id: Mapped[str] = mapped_column(String(255), index=True)
    revision: Mapped[str] = mapped_column(String(255))
    """What was asked for (``main``, a tag, or the commit itself); ``commit`` is what it meant."""
    commit: Mapped[str] = mapped_column(String(40))
    location: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="installing")
    """installing | installed | failed | removing."""
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    file_count: Mapped[int] = mapped_column(default=0)
    files: Mapped[list[Any]] = mapped_column(default=list)
    """Manifest: ``[{"path", "size", "blob_id", "sha256"?}]`` as the hub listed it."""
    reserved_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    """Bytes an unfinished install still has to write; counted against free space."""
    reinstall: Mapped[bool] = mapped_column(default=False)
    replaced: Mapped[list[Any] | None] = mapped_column(default=None)
    """Etags an unfinished reinstall has replaced and verified: its retry (a new job) checks
    them by hash instead of fetching them again. Cleared when the reinstall completes."""
    pinned: Mapped[bool] = mapped_column(default=False)
    pinned_by: Mapped[str | None] = mapped_column(String(64))
    pinned_at: Mapped[datetime | None]
    job_id: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    installed_at: Mapped[datetime | None]
    last_access_at: Mapped[datetime | None]
    verified_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
