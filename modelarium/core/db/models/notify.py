"""The outbox: chat messages (posted, then edited in place) and webhook deliveries.

A message row holds the latest wanted content (``version``) and what the channel shows
(``delivered_version``); the dispatcher sends only the newest content, which coalesces rapid
progress updates and survives restarts. ``content_hash`` makes a publish of unchanged content a
no-op, so a living message is edited only when what it shows changes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from modelarium.core.db.base import Base, utcnow


class OutboundMessage(Base):
    __tablename__ = "outbound_messages"
    __table_args__ = (Index("ix_outbound_pending", "pending", "next_attempt_at"),)

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32), default="notice")
    payload: Mapped[dict[str, Any]]
    content_hash: Mapped[str | None] = mapped_column(String(64))
    """sha256 of ``payload``: a publish with the same content is not sent again."""
    version: Mapped[int] = mapped_column(default=1)
    delivered_version: Mapped[int] = mapped_column(default=0)
    pending: Mapped[bool] = mapped_column(default=True)
    ref: Mapped[str | None] = mapped_column(String(64))
    thread_of: Mapped[str | None] = mapped_column(String(128))
    """Key of the message this one follows up on: posted in that message's thread."""
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_pending", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(64))
    event: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class InboundDelivery(Base):
    """Ids of chat deliveries already handled, so a redelivery never runs a command twice."""

    __tablename__ = "inbound_deliveries"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
