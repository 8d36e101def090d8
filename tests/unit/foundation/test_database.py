"""Migrations up and down on both backends; SQLite takes concurrent writers without locking up."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from modelarium.core.db import migrate
from modelarium.core.db.engine import create_engine
from modelarium.core.db.models.rbac import RoleGrant
from modelarium.core.db.uow import Database


def test_migrations_upgrade_from_empty_and_downgrade_to_empty(database_url):
    engine = create_engine(database_url)
    try:
        assert migrate.current_revisions(engine) == set()
        migrate.upgrade(engine)
        assert migrate.is_up_to_date(engine)
        tables = set(sa.inspect(engine).get_table_names())
        assert {"jobs", "approval_requests", "audit_log", "leases", "alerts"} <= tables
        migrate.downgrade(engine)
        assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(engine)  # and back up again: downgrade left nothing behind
        assert migrate.is_up_to_date(engine)
    finally:
        engine.dispose()


def test_orm_matches_migrations(database_url):
    """Autogenerate finds no difference: the schema only changes through migrations."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from modelarium.core.db.base import Base

    engine = create_engine(database_url)
    try:
        migrate.upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_sqlite_pragmas(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}", busy_timeout=7)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 7000
    engine.dispose()


def test_concurrent_writers_never_hit_database_is_locked(database_url):
    engine = create_engine(database_url)
    migrate.upgrade(engine)
    db = Database(engine)
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            for i in range(25):
                with db.transaction() as session:
                    # read-then-write: the pattern that deadlocks deferred SQLite transactions
                    session.scalar(sa.select(sa.func.count()).select_from(RoleGrant))
                    session.add(RoleGrant(user_id=f"U{worker}-{i}", role="viewer", granted_by="t"))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with db.transaction() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(RoleGrant)) == 200
    engine.dispose()


def test_nested_transactions_are_refused(database_url):
    import pytest

    engine = create_engine(database_url)
    db = Database(engine)
    with db.transaction(), pytest.raises(RuntimeError, match="nested"), db.transaction():
        pass
    engine.dispose()
