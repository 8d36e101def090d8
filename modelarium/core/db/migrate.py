"""Schema migrations, run programmatically so ``modelarium db upgrade`` needs no alembic.ini.

Capabilities add migrations as branches off the foundation revision, so ``heads`` (not ``head``)
is the target; a merge revision can join them whenever convenient.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def _config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _run(engine: Engine, action: str, target: str) -> None:
    # A plain (non-"BEGIN IMMEDIATE") connection is fine: alembic runs DDL in its own txn.
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # Replicas starting together must not migrate concurrently.
            connection.execute(sa.text("SELECT pg_advisory_lock(7243001)"))
        try:
            getattr(command, action)(_config(connection), target)
            connection.commit()
        finally:
            if engine.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_unlock(7243001)"))
                connection.commit()


def upgrade(engine: Engine, target: str = "heads") -> None:
    _run(engine, "upgrade", target)


def downgrade(engine: Engine, target: str = "base") -> None:
    _run(engine, "downgrade", target)


def current_revisions(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def head_revisions() -> set[str]:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return set(ScriptDirectory.from_config(config).get_heads())


def is_up_to_date(engine: Engine) -> bool:
    return current_revisions(engine) == head_revisions()
