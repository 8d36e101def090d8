"""Alembic environment: runs on the connection Modelarium hands over (see core/db/migrate.py)."""

from __future__ import annotations

from alembic import context

import modelarium.core.db.models  # noqa: F401  (registers every table on Base.metadata)
from modelarium.core.db.base import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
