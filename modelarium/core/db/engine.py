"""Engines for the embedded default (SQLite) and production (PostgreSQL).

SQLite gets WAL (readers never block the writer), a busy timeout, foreign keys, and
``BEGIN IMMEDIATE`` for every transaction: pysqlite's deferred transactions upgrade read locks
to write locks mid-transaction, which is what produces "database is locked" when the bot and the
daemon write at once. Taking the write lock up front turns that into an orderly wait.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine


def create_engine(url: str, *, busy_timeout: float = 30.0, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, busy_timeout)
    engine = sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 10},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # A process frozen inside a transaction (SIGSTOP, a partition) must not hold row locks
        # such as the scheduler lease forever: PostgreSQL ends such sessions after a minute.
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET idle_in_transaction_session_timeout = '60s'")
        dbapi_connection.commit()

    return engine


def _sqlite_engine(url: str, busy_timeout: float) -> Engine:
    database = sa.engine.make_url(url).database
    if database and database != ":memory:":
        _private_file(Path(database))
    engine = sa.create_engine(
        url,
        connect_args={"timeout": busy_timeout, "check_same_thread": False},
        pool_size=20,
        max_overflow=20,
        poolclass=sa.pool.QueuePool,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Manage transactions ourselves so BEGIN IMMEDIATE can be issued (see module doc).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    if database and database != ":memory:":
        _follow_the_file(engine, Path(database))
    return engine


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino


def _follow_the_file(engine: Engine, path: Path) -> None:
    """A pooled connection to a file that was replaced (deleted, restored from a backup,
    recreated empty) is dropped at checkout, so the process sees the file now at the path.

    An open SQLite connection keeps reading the old file's inode: without this, /healthz and
    every query kept reporting the old schema for as long as the pool held its connections.
    """

    @event.listens_for(engine, "connect")
    def _remember(_dbapi_connection: Any, record: Any) -> None:
        record.info["file_id"] = _file_id(path)
        # A replaced file SQLite just created keeps the owner-only rule. chmod only: opening
        # and closing the file here would drop this process's SQLite locks on it (POSIX locks
        # belong to the process and go with any descriptor's close).
        _owner_only(path)

    @event.listens_for(engine, "checkout")
    def _check(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.info.get("file_id") != _file_id(path):
            raise sa.exc.DisconnectionError(f"{path.name} was replaced")


def _private_file(path: Path) -> None:
    """The database file exists, readable by its owner only (0600), before SQLite opens it.

    SQLite creates its ``-wal`` and ``-shm`` files with the database file's permissions, so
    they are private too; a new folder for it is 0700. Existing files are tightened.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    _owner_only(path)


def _owner_only(path: Path) -> None:
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError):
            file.chmod(0o600)


def database_health(engine: Engine) -> tuple[bool, str]:
    """(ok, detail) for /healthz: a round trip, not just a pool checkout.

    Anyone may read /healthz, so the detail says what is wrong, never the database's own error
    text (host names, users, SQL); that goes to the log.
    """
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as exc:  # health checks report, they do not raise
        _log_failure("database", exc)
        return False, "unreachable"
    return True, engine.dialect.name


def schema_health(engine: Engine) -> tuple[bool, str]:
    """(ok, detail) for /healthz: the schema is this version's (not recreated empty, say)."""
    from modelarium.core.db.migrate import SCHEMA_DETAIL, schema_state

    try:
        state = schema_state(engine)
    except Exception as exc:
        _log_failure("schema", exc)
        return False, "unknown (the database is unreachable)"
    return state == "current", SCHEMA_DETAIL[state]


def _log_failure(check: str, exc: Exception) -> None:
    from modelarium.core.logging import get_logger

    get_logger(__name__).warning(
        "health.check_failed",
        check=check,
        error=type(exc).__name__,
        detail=str(exc).splitlines()[0][:200] if str(exc) else "",
    )
