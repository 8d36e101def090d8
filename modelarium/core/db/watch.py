"""Notices a database recreated (or emptied, or restored older) under a running process.

Without it, a process whose database was recreated empty logged ``UndefinedTable`` on every
query forever. :class:`SchemaWatch` checks the schema version every ``interval`` seconds: a
schema that is missing or behind is migrated again when ``auto_upgrade`` allows (what start-up
would do), else the process is asked to exit (``on_fatal``) so whatever supervises it restarts
it against the new database. A schema newer than this version is left alone (another version
is rolling out) and shows in ``/healthz``. On SQLite a database file replaced on disk is seen by
its identity, and the pool reconnects to the new file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from modelarium.core.db import migrate
from modelarium.core.logging import get_logger

if TYPE_CHECKING:
    from modelarium.core.app import Core

log = get_logger(__name__)


class SchemaWatch:
    def __init__(
        self,
        core: Core,
        *,
        interval: float | None = None,
        auto_upgrade: bool | None = None,
        on_fatal: Callable[[str], None] | None = None,
        after_migrate: Iterable[Callable[[], None]] = (),
    ) -> None:
        settings = core.settings
        self.core = core
        self.interval = settings.schema_check_interval if interval is None else interval
        self.auto_upgrade = settings.auto_upgrade if auto_upgrade is None else auto_upgrade
        self.on_fatal = on_fatal
        self.after_migrate = list(after_migrate)
        """Run after a re-migration (e.g. writing the task list back)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._file = self._sqlite_file()
        self._identity = self._file_identity()
        self._reported: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="schema-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # the database may be down: /healthz says so
                log.warning("db.schema_check_failed", exc_info=True)

    def check(self) -> str:
        """Check once and act; returns the state found."""
        engine = self.core.db.engine
        identity = self._file_identity()
        if identity != self._identity:
            # The file was replaced: pooled connections still read the old, unlinked one.
            log.warning("db.file_replaced", path=str(self._file))
            engine.dispose()
            self._identity = identity
        state = migrate.schema_state(engine)
        if state == "current":
            self._reported = None
            return state
        detail = migrate.SCHEMA_DETAIL[state]
        if state == "unknown":
            if self._reported != state:
                log.warning("db.schema_newer", detail=detail)
                self._reported = state
            return state
        if not self.auto_upgrade:
            log.error("db.schema_lost", state=state, detail=detail, action="exit")
            if self.on_fatal is not None:
                self.on_fatal(
                    f"the database schema is {detail}; run `modelarium db upgrade`, "
                    "or enable MODELARIUM_AUTO_UPGRADE"
                )
            self._stop.set()
            return state
        log.warning("db.schema_lost", state=state, detail=detail, action="migrate")
        self.core.migrate()
        self._identity = self._file_identity()
        for hook in self.after_migrate:
            hook()
        log.info("db.schema_restored", revisions=sorted(migrate.current_revisions(engine)))
        return state

    def _sqlite_file(self) -> str | None:
        url = self.core.db.engine.url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        return str(url.database)

    def _file_identity(self) -> tuple[int, int] | None:
        if self._file is None:
            return None
        try:
            info = os.stat(self._file)
        except OSError:
            return None
        return info.st_dev, info.st_ino


__all__ = ["SchemaWatch"]
