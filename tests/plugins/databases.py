"""Databases for tests, migrated once per test process and handed out clean (a pytest plugin).

Migrating a new database for every test was most of the suite's setup time. Instead each test
process (each xdist worker) migrates once per backend and then:

- SQLite: copies a migrated template file into the test's ``tmp_path`` (microseconds);
- PostgreSQL: keeps a small pool of migrated schemas. A test leases one under a new unique name;
  after it ends (at the next lease, when all its fixtures are torn down), connections still
  using the name are ended, the schema is renamed (so a leaked
  engine that reconnects finds nothing), checked against the template's shape, emptied with
  DELETE and given back its seeded rows and fresh sequences. A schema whose shape the test
  changed (a downgrade, a dropped table, extra tables) is dropped instead, and a new one is
  migrated when needed. Emptying 30-odd small tables takes milliseconds; TRUNCATE or a
  per-test migration took hundreds.

Tests that need an *empty* database (migrations from nothing, recreated-empty detection) ask
for ``empty_database_url``; an empty PostgreSQL schema is cheap to create.

Names are unique per process (a uuid), so parallel workers and other checkouts running the
suite against the same PostgreSQL never meet.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from modelarium.core.db import migrate
from modelarium.core.db.engine import create_engine

POSTGRES_URL = os.environ.get(
    "MODELARIUM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

# The shape of a schema's known relations (columns, constraints, triggers), and how many
# relations it gained since ``since`` (an OID). Every lookup goes through a catalog index: the
# shared test database's catalogs are large and bloated by the schemas every run creates and
# drops, and a sequential scan of pg_class alone costs tens of milliseconds.
_SHAPE = """
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = %(schema)s),
rels AS (SELECT c.oid, c.relname, c.relkind FROM pg_class c JOIN ns ON c.relnamespace = ns.oid
          WHERE c.relname = ANY(%(names)s))
SELECT md5(concat_ws('|',
  (SELECT string_agg(format('%%s:%%s:%%s:%%s:%%s', r.relname, r.relkind, a.attname,
                            format_type(a.atttypid, a.atttypmod), a.attnotnull),
                     ',' ORDER BY r.relname, a.attnum)
     FROM rels r LEFT JOIN pg_attribute a
       ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped),
  (SELECT string_agg(conname::text, ',' ORDER BY conname)
     FROM pg_constraint WHERE conrelid IN (SELECT oid FROM rels)),
  (SELECT string_agg(tgname::text, ',' ORDER BY tgname)
     FROM pg_trigger WHERE tgrelid IN (SELECT oid FROM rels) AND NOT tgisinternal),
  (SELECT string_agg(version_num, ',' ORDER BY version_num) FROM {versions})
)),
(SELECT count(*) FROM pg_class c JOIN ns ON c.relnamespace = ns.oid WHERE c.oid > %(since)s)
"""


def _sqlalchemy_url(schema: str) -> str:
    base = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    separator = "&" if "?" in base else "?"
    # application_name marks the lease's connections, so the ones a test leaks can be ended.
    # search_path stays last: some tests read the schema name from the URL's tail.
    return f"{base}{separator}application_name={schema}&options=-csearch_path%3D{schema}"


def _new_name(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


class PostgresSchemas:
    """This process's migrated schemas: a template, and a pool of clean copies to lease."""

    def __init__(self) -> None:
        self._conn: psycopg.Connection | None = None
        self._template: str | None = None
        self._shape = ""
        self._names: list[str] = []  # every relation of a migrated schema
        self._tables: list[str] = []  # its tables but alembic_version
        self._seeded: list[str] = []  # tables the migrations put rows in
        self._sequences: dict[str, tuple[int, bool]] = {}  # name -> (last_value, is_called)
        self._free: list[tuple[str, int]] = []  # clean schemas, and the OID counter then
        self._returned: list[tuple[str, int | None]] = []  # released, not yet recycled
        self._owned: set[str] = set()

    @property
    def conn(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
                # Test data need not survive a server crash: commits skip the WAL flush.
                self._conn.execute("SET synchronous_commit = off")
            except psycopg.OperationalError as exc:
                pytest.fail(f"PostgreSQL is required for the test suite and is unreachable: {exc}")
        return self._conn

    def empty(self) -> str:
        """A new empty schema (dropped at the end of the run, or by ``drop``)."""
        name = _new_name()
        self.conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        self._owned.add(name)
        return name

    def _migrated(self) -> str:
        name = self.empty()
        engine = create_engine(_sqlalchemy_url(name), pool_size=1)
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()
        return name

    def _ensure_template(self) -> None:
        if self._template is not None:
            return
        template = self._migrated()
        conn = self.conn
        relations = conn.execute(
            "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n"
            " ON c.relnamespace = n.oid WHERE n.nspname = %s ORDER BY c.relname",
            (template,),
        ).fetchall()
        self._names = [name for name, _ in relations]
        self._tables = [n for n, kind in relations if kind in ("r", "p") and n != "alembic_version"]
        self._seeded = [
            t
            for t in self._tables
            if conn.execute(
                sql.SQL("SELECT EXISTS (SELECT FROM {})").format(sql.Identifier(template, t))
            ).fetchone()[0]  # type: ignore[index]
        ]
        for name in (n for n, kind in relations if kind == "S"):
            row = conn.execute(
                sql.SQL("SELECT last_value, is_called FROM {}").format(
                    sql.Identifier(template, name)
                )
            ).fetchone()
            self._sequences[name] = (int(row[0]), bool(row[1]))  # type: ignore[index]
        self._template = template
        self._shape = self._shape_of(template, 0)[0]

    def _shape_of(self, schema: str, since: int) -> tuple[str, int]:
        """(shape of the known relations, relations created since the OID ``since``)."""
        try:
            query = sql.SQL(_SHAPE).format(versions=sql.Identifier(schema, "alembic_version"))
            row = self.conn.execute(
                query, {"schema": schema, "names": self._names, "since": since}
            ).fetchone()
        except psycopg.Error:  # no alembic_version: dropped, or downgraded to nothing
            return "", 0
        return (str(row[0]), int(row[1])) if row else ("", 0)

    def _oid_now(self) -> int:
        row = self.conn.execute("SELECT max(oid)::bigint FROM pg_class").fetchone()
        return int(row[0]) if row else 0  # type: ignore[index]

    def lease(self) -> tuple[str, int]:
        """A migrated schema holding only what the migrations seed, under a new name, and the
        OID counter when it was last known clean."""
        self._ensure_template()
        while self._returned:
            self._recycle(*self._returned.pop())
        if self._free:
            return self._free.pop()
        name = self._migrated()
        return name, self._oid_now()

    def release(self, name: str, since: int | None) -> None:
        """End the lease. The schema is recycled when the next one is leased: by then every
        fixture of the test that used it is torn down, whatever their order (a core still open
        here would have its connections ended under it)."""
        self._returned.append((name, since))

    def _recycle(self, name: str, since: int | None) -> None:
        """Clean a returned schema for the next test, or drop it if the test changed it (or
        it was an empty one)."""
        if since is None:
            self.drop(name)
            return
        conn = self.conn
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        fresh = _new_name()
        try:
            conn.execute(
                sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                    sql.Identifier(name), sql.Identifier(fresh)
                )
            )
        except psycopg.Error:
            self._owned.discard(name)  # the test dropped or renamed it
            return
        self._owned.discard(name)
        self._owned.add(fresh)
        shape, created = self._shape_of(fresh, since)
        if shape != self._shape or created or not self._clean(fresh):
            self.drop(fresh)
            return
        self._free.append((fresh, self._oid_now()))

    def _clean(self, schema: str) -> bool:
        statements = [
            sql.SQL("SET LOCAL lock_timeout = '5s'"),
            # Without foreign-key triggers the order of the DELETEs does not matter.
            sql.SQL("SET LOCAL session_replication_role = replica"),
            *(sql.SQL("DELETE FROM {}").format(sql.Identifier(schema, t)) for t in self._tables),
            *(
                sql.SQL("INSERT INTO {} SELECT * FROM {}").format(
                    sql.Identifier(schema, t), sql.Identifier(self._template or "", t)
                )
                for t in self._seeded
            ),
        ]
        if self._sequences:
            statements.append(
                sql.SQL("SELECT {}").format(
                    sql.SQL(", ").join(
                        sql.SQL("setval({}, {}, {})").format(
                            sql.Literal(f'"{schema}"."{name}"'),
                            sql.Literal(value),
                            sql.Literal(called),
                        )
                        for name, (value, called) in self._sequences.items()
                    )
                )
            )
        try:
            with self.conn.transaction():
                self.conn.execute(sql.SQL("; ").join(statements))
        except psycopg.Error:
            return False
        return True

    def drop(self, name: str) -> None:
        self.conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        try:
            self.conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
            )
        finally:
            self._owned.discard(name)
            self._free = [entry for entry in self._free if entry[0] != name]

    def close(self) -> None:
        if self._conn is None:
            return
        self._returned.clear()  # every name returned is still in _owned
        for name in list(self._owned):
            with contextlib.suppress(psycopg.Error):
                self.drop(name)
        self._conn.close()


class SqliteTemplate:
    """A migrated SQLite file, built once per process; each test gets a copy."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._path: Path | None = None

    def copy_to(self, path: Path) -> None:
        if self._path is None:
            template = self._folder / "template.db"
            engine = create_engine(f"sqlite:///{template}")
            try:
                migrate.upgrade(engine)
            finally:
                engine.dispose()  # the last connection closing checkpoints the WAL into the file
            self._path = template
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.copyfile(self._path, path)
        path.chmod(0o600)


@pytest.fixture(scope="session")
def postgres_schemas() -> Iterator[PostgresSchemas]:
    schemas = PostgresSchemas()
    yield schemas
    schemas.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    return SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


def _leased_postgres_url(schemas: PostgresSchemas) -> Iterator[str]:
    name, since = schemas.lease()
    yield _sqlalchemy_url(name)
    schemas.release(name, since)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: SqliteTemplate,
    postgres_schemas: PostgresSchemas,
) -> Iterator[str]:
    """A fresh database migrated to this version's heads, on each backend.

    Nothing is in it but what the migrations seed; ``Core.migrate()`` on it is a no-op.
    """
    if request.param == "sqlite":
        path = tmp_path / "modelarium.db"
        sqlite_template.copy_to(path)
        yield f"sqlite:///{path}"
    else:
        yield from _leased_postgres_url(postgres_schemas)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_schemas: PostgresSchemas
) -> Iterator[str]:
    """A fresh, empty database on each backend (for tests of the migrations themselves)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'modelarium.db'}"
    else:
        name = postgres_schemas.empty()
        yield _sqlalchemy_url(name)
        postgres_schemas.release(name, None)


@pytest.fixture
def postgres_url(postgres_schemas: PostgresSchemas) -> Iterator[str]:
    """A fresh migrated PostgreSQL schema, for tests that only make sense there (SKIP LOCKED
    races, several processes)."""
    yield from _leased_postgres_url(postgres_schemas)
