"""Engines for the embedded default (SQLite) and production (PostgreSQL).

SQLite gets WAL (readers never block the writer), a busy timeout, foreign keys, and
``BEGIN IMMEDIATE`` for every transaction: pysqlite's deferred transactions upgrade read locks
to write locks mid-transaction, which is what produces "database is locked" when the bot and the
daemon write at once. Taking the write lock up front turns that into an orderly wait.
"""

from __future__ import annotations

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
        Path(database).parent.mkdir(parents=True, exist_ok=True)
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

    return engine


def database_health(engine: Engine) -> tuple[bool, str]:
    """(ok, detail) for /healthz: a round trip, not just a pool checkout."""
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as exc:  # health checks report, they do not raise
        return False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return True, engine.dialect.name
