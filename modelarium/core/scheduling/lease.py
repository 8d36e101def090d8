"""Leader election by a lease row with a fencing token.

The holder renews before expiry; anyone may take an expired lease, which increments ``token``.
Work done under leadership is tagged with the token and re-checked in the same transaction that
records it, so a paused ex-leader (GC, SIGSTOP, network partition) cannot record work after a
successor took over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from modelarium.core.clock import Clock
from modelarium.core.db.models.scheduler import Lease
from modelarium.core.db.uow import Database


@dataclass(frozen=True)
class Leadership:
    holder: str
    token: int


class LeaseManager:
    def __init__(self, db: Database, clock: Clock, *, name: str, holder: str, ttl: float) -> None:
        self._db = db
        self._clock = clock
        self.name = name
        self.holder = holder
        self.ttl = ttl

    def acquire_or_renew(self) -> Leadership | None:
        """Become or stay leader; None if someone else holds a live lease."""
        now = self._clock.now()
        expires = now + timedelta(seconds=self.ttl)
        with self._db.transaction() as session:
            self._ensure_row(session, now)
            result = session.execute(
                sa.update(Lease)
                .where(
                    Lease.name == self.name,
                    sa.or_(Lease.holder == self.holder, Lease.expires_at <= now),
                )
                .values(
                    token=sa.case(
                        (Lease.holder == self.holder, Lease.token), else_=Lease.token + 1
                    ),
                    holder=self.holder,
                    expires_at=expires,
                    renewed_at=now,
                )
            )
            if not result.rowcount:
                return None
            token = session.scalar(sa.select(Lease.token).where(Lease.name == self.name))
            return Leadership(self.holder, int(token or 0))

    def release(self) -> None:
        with self._db.transaction() as session:
            session.execute(
                sa.update(Lease)
                .where(Lease.name == self.name, Lease.holder == self.holder)
                .values(expires_at=self._clock.now())
            )

    def current(self) -> tuple[str, int, bool] | None:
        """(holder, token, live) of the lease, for status pages."""
        with self._db.transaction() as session:
            lease = session.get(Lease, self.name)
            if lease is None:
                return None
            return lease.holder, lease.token, lease.expires_at > self._clock.now()

    def still_valid(self, session: Session, token: int) -> bool:
        """Checked inside the transaction that records leader-only work (fencing)."""
        now = self._clock.now()
        lease = session.scalar(sa.select(Lease).where(Lease.name == self.name).with_for_update())
        return (
            lease is not None
            and lease.holder == self.holder
            and lease.token == token
            and lease.expires_at > now
        )

    def _ensure_row(self, session: Session, now: object) -> None:
        dialect = session.get_bind().dialect.name
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Lease)
        session.execute(
            insert.values(
                name=self.name, holder="", token=0, expires_at=now, renewed_at=now
            ).on_conflict_do_nothing(index_elements=["name"])
        )
