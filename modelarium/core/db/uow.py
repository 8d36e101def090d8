"""Unit of work: one transaction per service call, committed or rolled back as a whole.

Services take a :class:`Database` and open ``with db.transaction() as session:``; nothing is
half-written when a step fails (the "nothing is lost or half-done" rule).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


class Database:
    """The engine plus a session factory; the one handle services need to reach storage."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._local = threading.local()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A new transaction. Nesting is refused: on SQLite an inner write transaction would
        wait forever for the outer one's lock, and anywhere it would not be atomic with it.
        Pass the outer ``session`` down instead."""
        if getattr(self._local, "active", False):
            raise RuntimeError("nested Database.transaction(); pass the session instead")
        self._local.active = True
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
            self._local.active = False

    def dispose(self) -> None:
        self.engine.dispose()
