"""Schema migrations, run programmatically so ``modelarium db upgrade`` needs no alembic.ini.

Capabilities add migrations as branches off the foundation revision, so ``heads`` (not ``head``)
is the target; a merge revision can join them whenever convenient.

Every process start checks the schema's version, and most find it current: that check reads the
version table and the scripts' ``revision``/``down_revision`` lines, without importing alembic
or running the scripts (a third of a second of every ``modelarium cmd``). Alembic is loaded
only to migrate.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def _config(connection: sa.Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _run(engine: Engine, action: str, target: str) -> None:
    from alembic import command

    # A plain (non-"BEGIN IMMEDIATE") connection is fine: alembic runs DDL in its own txn.
    with engine.connect() as connection:
        if engine.dialect.name != "postgresql":
            getattr(command, action)(_config(connection), target)
            connection.commit()
            return
        # Replicas starting together must not migrate concurrently. The lock belongs to the
        # session, not the transaction: a failed migration must still release it, or this
        # pooled connection keeps it and every later migration waits forever.
        connection.execute(sa.text("SELECT pg_advisory_lock(7243001)"))
        try:
            getattr(command, action)(_config(connection), target)
            connection.commit()
        finally:
            _release_migration_lock(connection)


def _release_migration_lock(connection: sa.Connection) -> None:
    try:
        connection.rollback()  # a failed statement aborted the transaction: unlock needs a new one
        connection.execute(sa.text("SELECT pg_advisory_unlock(7243001)"))
        connection.commit()
    except sa.exc.DBAPIError:
        connection.invalidate()  # closing the session releases its locks


def upgrade(engine: Engine, target: str = "heads") -> None:
    """Migrate to ``target``; a schema already at this version's heads costs one query.

    Every process start (and every test's core) calls this: reading the version table is much
    cheaper than letting alembic load every migration script to find nothing to do.
    """
    if target == "heads" and _at_heads(engine):
        return
    _run(engine, "upgrade", target)


def _at_heads(engine: Engine) -> bool:
    return current_revisions(engine) == head_revisions()


def downgrade(engine: Engine, target: str = "base") -> None:
    _run(engine, "downgrade", target)


def current_revisions(engine: Engine) -> set[str]:
    """The revisions in alembic's version table (none: not migrated)."""
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return set()
        rows = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
        return {str(row[0]) for row in rows}


@cache
def revision_graph() -> dict[str, frozenset[str]]:
    """Each script's revision and the revisions it follows, read from its source."""
    graph: dict[str, frozenset[str]] = {}
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        values: dict[str, object] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                name, value = node.target.id, node.value
            elif (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                name, value = node.targets[0].id, node.value
            else:
                continue
            if name in ("revision", "down_revision") and value is not None:
                values[name] = ast.literal_eval(value)
        if "revision" not in values:
            continue  # __init__.py
        down = values.get("down_revision")
        downs = (down,) if isinstance(down, str) else tuple(down or ())  # type: ignore[arg-type]
        graph[str(values["revision"])] = frozenset(str(d) for d in downs)
    return graph


def head_revisions() -> set[str]:
    graph = revision_graph()
    followed = {down for downs in graph.values() for down in downs}
    return set(graph) - followed


def known_revisions() -> frozenset[str]:
    return frozenset(revision_graph())


def is_up_to_date(engine: Engine) -> bool:
    return current_revisions(engine) == head_revisions()


SchemaState = Literal["current", "missing", "behind", "unknown"]


def schema_state(engine: Engine) -> SchemaState:
    """How the database's schema compares with this version's migrations.

    ``missing``: no migration applied (a new database, or one recreated empty under us);
    ``behind``: older revisions this version knows; ``unknown``: revisions it does not know (a
    newer version migrated it). Raises when the database cannot be reached.
    """
    current = current_revisions(engine)
    if current == head_revisions():
        return "current"
    if not current:
        return "missing"
    return "behind" if current <= known_revisions() else "unknown"


SCHEMA_DETAIL: dict[str, str] = {
    "current": "current",
    "missing": "not migrated (an empty database?)",
    "behind": "behind this version's migrations",
    "unknown": "newer than this version",
}
