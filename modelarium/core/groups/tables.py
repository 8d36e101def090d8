"""Each group's own inference table: one row per request, created with the group, dropped with it.

The name is derived from the group's id (``group_inference_<id>``), never from what a user typed,
so no identifier from chat ever reaches DDL. The same definition serves SQLite and PostgreSQL.
Times are epoch seconds (``ts``): bucketing by time is then plain arithmetic in SQL on both.
"""

from __future__ import annotations

import functools

import sqlalchemy as sa

PREFIX = "group_inference_"


def table_name(group_id: int) -> str:
    if not isinstance(group_id, int) or group_id <= 0:
        raise ValueError("a group id is a positive integer")
    return f"{PREFIX}{group_id}"


@functools.lru_cache(maxsize=1024)
def table(name: str) -> sa.Table:
    """The table object for ``name`` (on its own metadata: not part of the migrated schema).
    Cached: one object per name keeps SQLAlchemy's compiled-statement cache warm."""
    if not name.startswith(PREFIX) or not name[len(PREFIX) :].isdigit():
        raise ValueError(f"not a group inference table: {name!r}")
    metadata = sa.MetaData()
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("member", sa.String(255), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.String(255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=True),
        sa.Column("completion", sa.Text(), nullable=True),
        sa.Index(f"ix_{name}_member_ts", "member", "ts"),
        sa.Index(f"ix_{name}_ts", "ts"),
    )


def create(connection: sa.Connection, name: str) -> None:
    table(name).create(connection, checkfirst=True)


def drop(connection: sa.Connection, name: str) -> None:
    table(name).drop(connection, checkfirst=True)
