"""SQLite backups through SQLite's online backup API.

``Connection.backup`` copies the database page by page inside one read transaction. In WAL
mode readers never block the writer, so the daemon keeps writing while the copy sees one
consistent snapshot (copying the file instead would tear it between the database and its WAL).
The copy is switched to a rollback journal so it is one self-contained file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa

from modelarium.core.audit import VerifyReport
from modelarium.core.backups.audit_check import audit_failure, verify_orm
from modelarium.core.backups.model import BackupError


def database_path(url: str) -> Path:
    database = sa.engine.make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def estimated_size(source: Path) -> int:
    """Bytes the copy will take: every page, free ones included."""
    with sqlite3.connect(source) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    return int(pages) * int(size)


def dump(source: Path, dest: Path, busy_timeout: float) -> None:
    """Copy the live database at ``source`` into the new file ``dest``."""
    if not source.is_file():
        raise BackupError(f"there is no database at {source} to back up")
    src = sqlite3.connect(source, timeout=busy_timeout)
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst)  # pages=-1: the whole database in one step, one snapshot
        dst.execute("PRAGMA journal_mode=DELETE")
        dst.commit()
    finally:
        dst.close()
        src.close()


def _readonly(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def verify(path: Path, key: bytes) -> tuple[list[str], VerifyReport]:
    """Open the copy read-only: SQLite's integrity check, the schema revision, the audit chain."""
    try:
        conn = _readonly(path)
        try:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            revisions = (
                sorted(r[0] for r in conn.execute("SELECT version_num FROM alembic_version"))
                if "alembic_version" in tables
                else []
            )
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the backup does not open as a SQLite database: {exc}") from None
    if check != "ok":
        raise BackupError(f"the backup fails SQLite's integrity check: {check}")
    engine = sa.create_engine("sqlite://", creator=lambda: _readonly(path), poolclass=sa.NullPool)
    try:
        report = verify_orm(engine, key)
    finally:
        engine.dispose()
    if not report.ok:
        raise audit_failure(report)
    return revisions, report


def restore(backup: Path, target: Path, busy_timeout: float) -> None:
    """Replace the content of ``target`` with the backup, atomically (one write transaction)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = _readonly(backup)
    dst = sqlite3.connect(target, timeout=busy_timeout)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
