"""Model endpoints (Ollama, OpenAI-compatible, custom) and a bounded history of their checks.

The API key is stored only as a Fernet token (``api_key_token``); its last four characters are
kept beside it so listings never decrypt. Check history is a ring buffer per endpoint
(``slot = check_count % health_history``), so it stays bounded without a pruning pass.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from modelarium.core.db.base import Base, utcnow


class Endpoint(Base):
    __tablename__ = "endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    base_url: Mapped[str] = mapped_column(String(1024))
    type: Mapped[str] = mapped_column(String(32))
    health_path: Mapped[str | None] = mapped_column(String(255))
    owner: Mapped[str] = mapped_column(String(64), index=True)
    shared_with: Mapped[str] = mapped_column(String(16), default="owner")
    """``owner`` (private) or ``everyone``."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    api_key_token: Mapped[str | None] = mapped_column(Text)
    api_key_last4: Mapped[str | None] = mapped_column(String(4))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    """Bumped on every edit, so a check started before the edit is not recorded against it."""

    status: Mapped[str] = mapped_column(String(16), default="unknown")
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    consecutive_successes: Mapped[int] = mapped_column(Integer, default=0)
    check_count: Mapped[int] = mapped_column(Integer, default=0)
    last_check_at: Mapped[datetime | None]
    last_ok_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    status_changed_at: Mapped[datetime | None]
    response_ms: Mapped[float | None]
    """Last successful check's response time."""
    latency_ms: Mapped[float | None]
    """Moving average of successful response times: what failover ranks by."""
    cooldown_until: Mapped[datetime | None]
    server_version: Mapped[str | None] = mapped_column(String(64))
    models: Mapped[list[str]] = mapped_column(default=list)
    models_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    use_count: Mapped[int] = mapped_column(Integer, default=0)

    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class EndpointCheck(Base):
    """One health check; ``slot`` cycles through ``0..health_history-1`` per endpoint."""

    __tablename__ = "endpoint_checks"

    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True
    )
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    checked_at: Mapped[datetime]
    ok: Mapped[bool] = mapped_column(Boolean)
    response_ms: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(Text)
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
