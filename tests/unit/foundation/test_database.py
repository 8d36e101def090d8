"""Migrations up and down on both backends; SQLite takes concurrent writers without locking up."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading

import sqlalchemy as sa

from modelarium.core.db import migrate
from modelarium.core.db.engine import create_engine
from modelarium.core.db.models.rbac import RoleGrant
from modelarium.core.db.uow import Database


def test_migrations_upgrade_from_empty_and_downgrade_to_empty(empty_database_url):
    engine = create_engine(empty_database_url)
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


def test_the_version_check_reads_the_scripts_as_alembic_does():
    """Process starts read heads from the scripts' source (no alembic import): the same graph
    alembic builds by running them."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
    scripts = ScriptDirectory.from_config(config)
    assert migrate.head_revisions() == set(scripts.get_heads())
    assert migrate.revision_graph() == {
        s.revision: frozenset(s._all_down_revisions) for s in scripts.walk_revisions()
    }


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


def test_a_replaced_sqlite_file_is_seen_by_pooled_connections(tmp_path):
    """An open SQLite connection keeps reading a deleted file's inode: the pool drops it, so a
    database recreated under a running process is noticed at once (not when the pool happens
    to open a new connection)."""
    path = tmp_path / "m.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE kept (id INTEGER)"))
        os.remove(path)
        sqlite3.connect(path).close()  # an empty database in its place
        with engine.connect() as connection:
            tables = connection.execute(sa.text("SELECT name FROM sqlite_master")).all()
        assert tables == []
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        engine.dispose()


def test_a_failed_postgresql_migration_releases_its_lock(postgres_schemas):
    """A migration that fails (here: its schema was dropped under it) used to leave the
    session-level advisory lock on its pooled connection; the unlock itself failed in the
    aborted transaction, hiding the real error, and the next migration waited forever."""
    import psycopg
    import pytest

    from tests.conftest import POSTGRES_URL
    from tests.plugins.databases import _sqlalchemy_url

    name = postgres_schemas.empty()
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{name}"')
    engine = create_engine(_sqlalchemy_url(name))
    try:
        with pytest.raises(sa.exc.ProgrammingError, match="no schema has been selected"):
            migrate.upgrade(engine)
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        retry = threading.Thread(target=migrate.upgrade, args=(engine,), daemon=True)
        retry.start()
        retry.join(30)
        assert not retry.is_alive(), "the second migration waits for the first one's lock"
        assert migrate.is_up_to_date(engine)
    finally:
        engine.dispose()
        postgres_schemas.release(name, None)
