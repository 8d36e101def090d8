"""Exactly-once handling of inbound chat deliveries (Slack retries, duplicate clicks).

Chat platforms redeliver: Slack retries an event it thinks timed out, a user double-clicks, a
replica restarts mid-request. Each front derives a stable key per delivery (an event id, a
trigger id, user+action timestamp) and *claims* it here before acting; only the first claim
wins, on every replica, because the key is the table's primary key.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from modelarium.core.clock import Clock
from modelarium.core.db.models.notify import InboundDelivery
from modelarium.core.db.uow import Database

MAX_KEY_LENGTH = 255
DEFAULT_RETENTION = timedelta(days=2)
"""Slack stops retrying after about 5 minutes; two days leaves room for slow replays."""


class InboundDeliveries:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        table = InboundDelivery.__table__
        insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(db.dialect)
        self._insert = (
            insert(table)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(table.c.key)  # rowcount is not reliable across drivers
            if insert is not None
            else None
        )

    def claim_delivery(self, key: str) -> bool:
        """Record ``key``; True for the first claim, False for any duplicate (never raises).

        One statement on a plain connection (no ORM session), compiled once: this runs for
        every Slack request, and the session machinery would cost five times as much.
        """
        values = {"key": key[:MAX_KEY_LENGTH], "received_at": self._clock.now()}
        if self._insert is None:
            try:
                with self._db.transaction() as session:
                    session.add(InboundDelivery(**values))
            except IntegrityError:
                return False
            return True
        with self._db.engine.begin() as connection:
            return connection.execute(self._insert, values).first() is not None

    def seen(self, key: str) -> bool:
        with self._db.transaction() as session:
            return session.get(InboundDelivery, key[:MAX_KEY_LENGTH]) is not None

    def prune(self, older_than: timedelta = DEFAULT_RETENTION) -> int:
        """Forget keys older than ``older_than``; returns how many were removed."""
        cutoff = self._clock.now() - older_than
        with self._db.transaction() as session:
            result = session.execute(
                sa.delete(InboundDelivery).where(InboundDelivery.received_at < cutoff)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
