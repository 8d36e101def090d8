"""A database-backed TTL cache shared by replicas, with stale-while-revalidate reads.

Entries stay readable past their TTL (up to ``stale_ttl``) so a front can answer at once from a
stale entry while a refresh runs, and keep answering when the upstream is down.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from modelarium.core.clock import Clock
from modelarium.core.db.models.cache import CacheEntry
from modelarium.core.db.uow import Database


@dataclass(frozen=True)
class Cached:
    value: dict[str, Any]
    fetched_at: datetime
    fresh: bool


class Cache:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, namespace: str, key: str, *, stale_ttl: float = 0.0) -> Cached | None:
        now = self._clock.now()
        table = CacheEntry.__table__
        # One statement both reads the entry and counts the hit (hot keys drive refreshes);
        # a session round trip per read was most of a warm search's time.
        stmt = (
            sa.update(table)
            .where(
                table.c.namespace == namespace,
                table.c.key == key,
                table.c.expires_at >= now - timedelta(seconds=stale_ttl),
            )
            .values(hits=table.c.hits + 1, last_hit_at=now)
            .returning(table.c.value, table.c.fetched_at, table.c.expires_at)
        )
        with self._db.engine.begin() as connection:
            row = connection.execute(stmt).first()
        if row is None:
            self._count(hit=False)
            return None
        value, fetched_at, expires_at = row
        fresh = expires_at > now
        self._count(hit=fresh)
        return Cached(dict(value), fetched_at, fresh)

    def put(self, namespace: str, key: str, value: dict[str, Any], ttl: float) -> None:
        now = self._clock.now()
        with self._db.transaction() as session:
            dialect = session.get_bind().dialect.name
            insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(CacheEntry)
            session.execute(
                insert.values(
                    namespace=namespace,
                    key=key,
                    value=value,
                    fetched_at=now,
                    expires_at=now + timedelta(seconds=ttl),
                    hits=0,
                ).on_conflict_do_update(
                    index_elements=["namespace", "key"],
                    set_={
                        "value": insert.excluded.value,
                        "fetched_at": now,
                        "expires_at": insert.excluded.expires_at,
                    },
                )
            )

    def hot_keys(
        self, namespace: str, *, limit: int = 20, since: datetime | None = None
    ) -> list[str]:
        """Most-used keys (for the daemon's refresh of hot entries)."""
        with self._db.transaction() as session:
            stmt = (
                sa.select(CacheEntry.key)
                .where(CacheEntry.namespace == namespace)
                .order_by(CacheEntry.hits.desc())
                .limit(limit)
            )
            if since is not None:
                stmt = stmt.where(CacheEntry.last_hit_at >= since)
            return list(session.scalars(stmt))

    def purge_expired(self, older_than: float) -> int:
        cutoff = self._clock.now() - timedelta(seconds=older_than)
        with self._db.transaction() as session:
            return int(
                session.execute(
                    sa.delete(CacheEntry).where(CacheEntry.expires_at < cutoff)
                ).rowcount
                or 0
            )

    def _count(self, *, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    @property
    def hit_ratio(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None
