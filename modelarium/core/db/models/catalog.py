"""The model catalog: Git's entries mirrored, drafts not yet in Git, the PRs between them.

Git (the catalog repository's default branch) is the source of truth for entries;
``catalog_entries`` mirrors it (kept by ``catalog_sync``, with each file's blob id so an unchanged
file is never fetched twice). ``catalog_drafts`` are changes made in chat that are not in Git yet
(new entries, edits, status changes); ``catalog_pulls`` the pull requests that carry them there.
``catalog_sync`` holds the conditional-request validators (ETags) of the last sync.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from modelarium.core.db.base import Base, utcnow


class CatalogEntryRow(Base):
    """One entry as the default branch has it."""

    __tablename__ = "catalog_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(String(100), unique=True)
    path: Mapped[str] = mapped_column(String(512))
    blob_sha: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), index=True)
    """The entry's status, or ``invalid`` when the file does not pass the schema."""
    issues: Mapped[list[Any]] = mapped_column(default=list)
    repo_id: Mapped[str | None] = mapped_column(String(255), index=True)
    commit: Mapped[str | None] = mapped_column(String(40))
    git_commit: Mapped[str] = mapped_column(String(40))
    """The catalog repository commit this version was read at."""
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # catalog_watch: what the Hub says now
    hub_commit: Mapped[str | None] = mapped_column(String(40))
    hub_license: Mapped[str | None] = mapped_column(String(100))
    hub_checked_at: Mapped[datetime | None]


class CatalogDraft(Base):
    """A change to one entry made in chat, on its way to Git."""

    __tablename__ = "catalog_drafts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(String(100), unique=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    """draft | validated | proposed (a PR is open) | merged | rejected (PR closed unmerged)."""
    reason: Mapped[str | None] = mapped_column(Text)
    """Why: shown in the PR body (a status change's --reason, what catalog_watch found)."""
    issues: Mapped[list[Any]] = mapped_column(default=list)
    validated_at: Mapped[datetime | None]
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16), default="chat")
    """``chat`` or ``watch`` (a Renovate-style update found by catalog_watch)."""
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CatalogPull(Base):
    """A pull request Modelarium opened for an entry (one open at a time per entry)."""

    __tablename__ = "catalog_pulls"
    __table_args__ = (Index("ix_catalog_pulls_entry_state", "entry_id", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(String(100))
    repo: Mapped[str] = mapped_column(String(255))
    number: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(1024))
    branch: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="open")
    """open | merged | closed (without merging)."""
    head_sha: Mapped[str] = mapped_column(String(40))
    tree_sha: Mapped[str] = mapped_column(String(40))
    blob_sha: Mapped[str] = mapped_column(String(40))
    left_alone: Mapped[bool] = mapped_column(Boolean, default=False)
    """A person pushed to the branch: Modelarium stopped updating it."""
    source: Mapped[str] = mapped_column(String(16), default="chat")
    opened_by: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    """When Modelarium last wrote to the PR (what catalog_prs_per_day counts)."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]


class CatalogSyncState(Base):
    """Validators of the last sync of one catalog repository (one row per repository)."""

    __tablename__ = "catalog_sync"

    repo: Mapped[str] = mapped_column(String(255), primary_key=True)
    branch: Mapped[str | None] = mapped_column(String(255))
    """The branch read (the configured one, or the repository's default branch)."""
    branch_checked_at: Mapped[datetime | None]
    repo_etag: Mapped[str | None] = mapped_column(String(255))
    ref_etag: Mapped[str | None] = mapped_column(String(255))
    pulls_etag: Mapped[str | None] = mapped_column(String(255))
    head_sha: Mapped[str | None] = mapped_column(String(40))
    entries: Mapped[int] = mapped_column(Integer, default=0)
    synced_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class CatalogHistory(Base):
    """Something Modelarium did with an entry's model that Git does not record (a group
    promotion or rollback); ``source`` identifies the event so a resumed job records it once."""

    __tablename__ = "catalog_history"
    __table_args__ = (
        Index("ix_catalog_history_entry", "entry_id", "id"),
        Index("ix_catalog_history_source", "source", "action"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    user: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
