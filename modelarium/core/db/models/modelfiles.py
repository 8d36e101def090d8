"""Stored Modelfiles with their revisions, the reusable elements library, and applications.

A Modelfile's revisions are append-only (a rollback is a new revision), so history and diffs
never lie; a revision is a draft until an application row says it was created on an endpoint.
Link rows from revisions to the element revisions they were composed from give usage counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from modelarium.core.db.base import Base, utcnow


class ModelfileElement(Base):
    """A reusable part (system prompt, template, parameter set, message set)."""

    __tablename__ = "modelfile_elements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    head: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelfileElementRevision(Base):
    __tablename__ = "modelfile_element_revisions"
    __table_args__ = (UniqueConstraint("element_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    element_id: Mapped[int] = mapped_column(ForeignKey("modelfile_elements.id", ondelete="CASCADE"))
    number: Mapped[int]
    content: Mapped[dict[str, Any]]
    author: Mapped[str] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoredModelfile(Base):
    __tablename__ = "modelfiles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    head: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelfileRevision(Base):
    __tablename__ = "modelfile_revisions"
    __table_args__ = (UniqueConstraint("modelfile_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    modelfile_id: Mapped[int] = mapped_column(ForeignKey("modelfiles.id", ondelete="CASCADE"))
    number: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    """How it was made: paste, file, compose, extract, rollback."""
    author: Mapped[str] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelfileRevisionElement(Base):
    """One element revision a Modelfile revision was composed from (usage counting)."""

    __tablename__ = "modelfile_revision_elements"
    __table_args__ = (UniqueConstraint("revision_id", "element_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    revision_id: Mapped[int] = mapped_column(
        ForeignKey("modelfile_revisions.id", ondelete="CASCADE")
    )
    element_id: Mapped[int] = mapped_column(
        ForeignKey("modelfile_elements.id", ondelete="CASCADE"), index=True
    )
    element_number: Mapped[int]


class ModelfileApplication(Base):
    """A revision created as a model on an endpoint: where, as what, when and by whom."""

    __tablename__ = "modelfile_applications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    revision_id: Mapped[int] = mapped_column(
        ForeignKey("modelfile_revisions.id", ondelete="CASCADE"), index=True
    )
    endpoint: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(255))
    applied_by: Mapped[str] = mapped_column(String(64))
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)
    job_id: Mapped[int | None] = mapped_column(unique=True)
