"""``core.backups``: create, list, restore and prune verified backups of Modelarium's database.

A backup is written under a temporary name, flushed, verified (it opens, SQLite's integrity
check or pg_restore's table of contents passes, and the audit chain inside it verifies under
this installation's audit key), checksummed, renamed into place, and only then given its
manifest. A full target, a missing tool or a failed check leaves nothing behind but one line.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from modelarium import __version__
from modelarium.config.settings import Settings
from modelarium.config.units import format_size
from modelarium.core.audit import AuditService
from modelarium.core.backups import postgres, sqlite
from modelarium.core.backups.files import free_bytes, fsync_file, is_full, sha256_file
from modelarium.core.backups.model import FORMATS, KINDS, BackupError, BackupInfo, backup_name
from modelarium.core.backups.retention import Retention, plan_retention
from modelarium.core.backups.targets import DirectoryTarget
from modelarium.core.clock import Clock
from modelarium.core.db import migrate
from modelarium.core.db.uow import Database
from modelarium.core.errors import NotFoundError, UsageError
from modelarium.core.logging import get_logger

log = get_logger(__name__)

STALE_PARTIAL_AFTER = 6 * 3600.0
"""A ``.partial`` file this old is left by a killed backup, not one still being written."""
MANIFEST_ROOM = 64 * 1024


@dataclass(frozen=True)
class RestoreReport:
    info: BackupInfo
    replaced: int
    """Rows the database held before (0: it was empty)."""
    revisions_before: list[str]
    revisions_after: list[str]
    audit_entries: int


class BackupService:
    def __init__(
        self, settings: Settings, db: Database, clock: Clock, audit: AuditService, audit_key: bytes
    ) -> None:
        self.settings = settings
        self._db = db
        self._clock = clock
        self._audit = audit
        self._key = audit_key
        self._tools = postgres.PgTools(settings.pg_bin_dir)

    # -- targets -------------------------------------------------------------------------------

    def target(self, where: str | None = None) -> DirectoryTarget:
        """A storage location's name (its ``backups`` folder) or a directory path."""
        where = where or self.settings.backup_location
        if not where:
            return DirectoryTarget(self.settings.data_dir / "backups")
        for location in self.settings.locations:
            if location.name == where:
                return DirectoryTarget(
                    location.path / "backups", f"{where} ({location.path}/backups)"
                )
        if "/" in where or where.startswith((".", "~")):
            return DirectoryTarget(Path(where).expanduser())
        names = ", ".join(loc.name for loc in self.settings.locations)
        raise UsageError(
            f"no storage location {where!r} (locations: {names}); give a folder as a path, "
            "e.g. ./backups or /mnt/backups"
        )

    # -- create --------------------------------------------------------------------------------

    def create(self, user: str, *, to: str | None = None, kind: str = "manual") -> BackupInfo:
        if kind not in KINDS:
            raise UsageError(f"backup kind must be one of {', '.join(KINDS)}")
        target = self.target(to)
        target.prepare()
        dialect = self._db.dialect
        if dialect not in FORMATS:
            raise BackupError(f"backups of {dialect} databases are not supported")
        fmt, suffix = FORMATS[dialect]
        started = time.monotonic()
        now = self._clock.now()
        name = backup_name(now, target.names())
        partial = target.partial(name, suffix)
        url = self.settings.effective_database_url
        needed: int | None = None
        schema: str | None = None
        try:
            # The copy holds everything the database does: only its owner may read it.
            os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            if dialect == "sqlite":
                source = sqlite.database_path(url)
                needed = sqlite.estimated_size(source) if source.is_file() else None
                if needed is not None and needed + MANIFEST_ROOM > free_bytes(target.root):
                    raise OSError(28, "No space left on device")
                sqlite.dump(source, partial, self.settings.database_busy_timeout)
            else:
                self._tools.check()
                schema = postgres.current_schema(self._db.engine)
                postgres.dump(self._tools, url, schema, partial)
            fsync_file(partial)
            revisions, report = self._verify(dialect, partial)
            digest, size = sha256_file(partial)
            info = BackupInfo(
                name=name,
                file=f"{name}{suffix}",
                created_at=now,
                kind=kind,
                dialect=dialect,
                format=fmt,
                size=size,
                sha256=digest,
                revisions=revisions,
                audit_entries=report.checked,
                created_by=user,
                modelarium_version=__version__,
                pg_schema=schema,
                duration=round(time.monotonic() - started, 3),
            )
            target.commit(info, partial)
        except BaseException as exc:
            partial.unlink(missing_ok=True)
            if is_full(exc):
                free = free_bytes(target.root)
                need = f", about {format_size(needed)} needed" if needed else ""
                raise BackupError(
                    f"backup target {target.label} is full ({format_size(free)} free{need}): "
                    "nothing was written"
                ) from None
            if isinstance(exc, OSError) and not isinstance(exc, BackupError):
                raise BackupError(
                    f"cannot write the backup to {target.label}: {exc.strerror or exc}"
                ) from None
            raise
        self._audit.record(
            user,
            "backup.create",
            target=name,
            params={"location": target.label, "kind": kind, "size": size, "sha256": digest},
        )
        log.info("backup_created", backup=name, size=size, kind=kind, location=target.label)
        return info

    def _verify(self, dialect: str, path: Path) -> tuple[list[str], object]:
        if dialect == "sqlite":
            return sqlite.verify(path, self._key)
        return postgres.verify(self._tools, path, self._db.engine, self._key)

    # -- list ----------------------------------------------------------------------------------

    def list(self, where: str | None = None) -> list[BackupInfo]:
        """Newest first."""
        infos = self.target(where).infos()
        return sorted(infos, key=lambda b: (b.created_at, b.name), reverse=True)

    def get(self, name: str, where: str | None = None) -> BackupInfo:
        target = self.target(where)
        for info in target.infos():
            if info.name == name or info.file == name:
                return info
        raise NotFoundError(
            f"no backup {name!r} in {target.label}; `modelarium backup list` shows them"
        )

    def retention(self, where: str | None = None) -> Retention:
        return plan_retention(
            self.list(where), self.settings.backup_keep_daily, self.settings.backup_keep_weekly
        )

    # -- restore -------------------------------------------------------------------------------

    def check(self, name: str, where: str | None = None) -> BackupInfo:
        """The backup's bytes match its manifest, and it verifies again."""
        target = self.target(where)
        info = self.get(name, where)
        digest, size = sha256_file(target.data_path(info))
        if digest != info.sha256 or size != info.size:
            raise BackupError(
                f"backup {info.name} is corrupt: its checksum does not match its manifest "
                f"(sha256 {digest[:12]}…, expected {info.sha256[:12]}…)"
            )
        if info.dialect != self._db.dialect:
            raise BackupError(
                f"backup {info.name} is of a {info.dialect} database; this Modelarium uses "
                f"{self._db.dialect}"
            )
        self._verify(info.dialect, target.data_path(info))
        return info

    def rows(self) -> int:
        """Rows in Modelarium's tables (the schema's version table aside): 0 means empty."""
        engine = self._db.engine
        tables = [t for t in sa.inspect(engine).get_table_names() if t != "alembic_version"]
        total = 0
        with engine.connect() as conn:
            for table in tables:
                quoted = engine.dialect.identifier_preparer.quote(table)
                total += int(conn.execute(sa.text(f"SELECT count(*) FROM {quoted}")).scalar() or 0)
        return total

    def restore(
        self, name: str, user: str, *, where: str | None = None, force: bool = False
    ) -> RestoreReport:
        info = self.check(name, where)
        unknown = set(info.revisions) - migrate.known_revisions()
        if unknown:
            raise BackupError(
                f"backup {info.name} was made by a newer Modelarium (schema revision "
                f"{', '.join(sorted(unknown))}); restore it with that version"
            )
        engine = self._db.engine
        before = self.rows()
        if before and not force:
            raise BackupError(
                f"the database is not empty ({before} rows); add --force to replace it with "
                f"backup {info.name}"
            )
        revisions_before = sorted(migrate.current_revisions(engine)) if before else []
        path = self.target(where).data_path(info)
        engine.dispose()
        if info.dialect == "sqlite":
            sqlite.restore(
                path,
                sqlite.database_path(self.settings.effective_database_url),
                self.settings.database_busy_timeout,
            )
        else:
            schema = postgres.current_schema(engine)
            if info.pg_schema and info.pg_schema != schema:
                raise BackupError(
                    f"backup {info.name} holds schema {info.pg_schema!r}; this database uses "
                    f"{schema!r} (set its search_path to {info.pg_schema!r} to restore it)"
                )
            self._tools.check()
            postgres.restore(self._tools, path, self.settings.effective_database_url, schema)
        engine.dispose()
        if self.settings.auto_upgrade:
            migrate.upgrade(engine)
        report = self._audit.verify()
        self._audit.record(
            user,
            "backup.restore",
            target=info.name,
            params={"replaced_rows": before, "forced": force, "sha256": info.sha256},
        )
        return RestoreReport(
            info,
            before,
            revisions_before,
            sorted(migrate.current_revisions(engine)),
            report.checked,
        )

    # -- schedule ------------------------------------------------------------------------------

    def prune(self, where: str | None = None) -> tuple[Retention, list[str]]:
        """Delete the scheduled backups retention does not keep, and stale partial files."""
        target = self.target(where)
        plan = self.retention(where)
        for info in plan.remove:
            target.delete(info)
            log.info("backup_pruned", backup=info.name, location=target.label)
        return plan, target.remove_stale_partials(STALE_PARTIAL_AFTER)

    def scheduled(self) -> tuple[BackupInfo, Retention]:
        info = self.create("daemon", kind="scheduled")
        plan, _ = self.prune()
        return info, plan
