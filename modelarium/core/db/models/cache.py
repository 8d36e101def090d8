"""A small key-value cache with TTLs, shared by replicas (hub answers, GPU inventory...)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from modelarium.core.db.base import Base, utcnow


class CacheEntry(Base):
    __tablename__ = "cache_entries"

    namespace: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    value: Mapped[dict[str, Any]]
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    hits: Mapped[int] = mapped_column(default=0)
    last_hit_at: Mapped[datetime | None]
