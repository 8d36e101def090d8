"""Weight records: the database rows that own what is on disk, and the views made of them.

The base of the weights service's parts (inventory, planning, purge): storage locations, record
queries and locks, and how a record is shown. The disk is the truth about bytes; a record says
what an install wrote and in which state it is.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelarium.config.settings import StorageLocation
from modelarium.core.clients.s3 import read_object, s3_client
from modelarium.core.db.models.jobs import Job
from modelarium.core.db.models.weights import WeightRecord
from modelarium.core.errors import ConflictError, ModelariumError, NotFoundError, UsageError
from modelarium.core.logging import get_logger
from modelarium.core.ports import InstalledSnapshot
from modelarium.core.weights import metrics
from modelarium.core.weights.buckets import Bucket, model_prefix, storage_uri
from modelarium.core.weights.layout import (
    REPO_ID,
    RepoFile,
    RepoLayout,
    missing_files,
)
from modelarium.core.weights.storage import Usage, measure

if TYPE_CHECKING:
    from modelarium.core.kernel import Kernel
    from modelarium.core.ports import WeightsInUse

log = get_logger(__name__)

INSTALL_JOB = "weights.install"
VERIFY_JOB = "weights.verify"
PURGE_JOB = "weights.purge"
DISK_USAGE_RULE = "disk_usage"
STATUSES = ("installing", "installed", "failed", "orphaned")
_ACTIVE_JOB = ("queued", "running")
_LOCK_SPACE = 7243006  # pg_advisory_xact_lock namespace: space reservations per location


def short_ref(repo: str, commit: str) -> str:
    return f"{repo}@{commit[:7]}"


def parse_model_ref(text: str) -> tuple[str, str | None]:
    """``org/name`` or ``org/name@revision`` -> (repo id, revision or None)."""
    repo_id, _, revision = text.strip().partition("@")
    if not REPO_ID.match(repo_id) or "--" in repo_id or ".." in repo_id:
        raise UsageError(f"not a model id: {text!r} (expected org/name or org/name@revision)")
    if "@" in text and not revision:
        raise UsageError(f"empty revision in {text!r}")
    return repo_id, revision or None


@dataclass(frozen=True)
class WeightView:
    """One inventory line: a record, or orphaned data found on disk."""

    id: int | None
    repo_id: str
    revision: str | None
    commit: str | None
    location: str
    status: str
    size: int
    files: int = 0
    pinned: bool = False
    pinned_by: str | None = None
    last_access: datetime | None = None
    installed_at: datetime | None = None
    job_id: int | None = None
    error: str | None = None
    deployed_by: tuple[str, ...] = ()
    note: str = ""
    path: str | None = None

    @property
    def ref(self) -> str:
        short = (self.commit or "")[:7]
        if self.revision and self.revision != self.commit:
            return f"{self.revision} ({short})" if short else self.revision
        return short or "—"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "repo": self.repo_id,
            "revision": self.revision,
            "commit": self.commit,
            "location": self.location,
            "status": self.status,
            "size": self.size,
            "files": self.files,
            "pinned": self.pinned,
            "pinned_by": self.pinned_by,
            "last_access": self.last_access.isoformat() if self.last_access else None,
            "installed_at": self.installed_at.isoformat() if self.installed_at else None,
            "job_id": self.job_id,
            "error": self.error,
            "deployed_by": list(self.deployed_by),
            "note": self.note,
            "path": self.path,
        }


def _last_access(record: WeightRecord) -> datetime:
    return record.last_access_at or record.installed_at or record.created_at


def record_files(record: WeightRecord) -> list[RepoFile]:
    return [RepoFile.from_json(f) for f in record.files or []]


class WeightsBase:
    """What every part of the weights service shares: settings, database, locations, records."""

    def __init__(self, kernel: Kernel, in_use: WeightsInUse) -> None:
        self._core = kernel
        self.settings = kernel.settings
        self._db = kernel.db
        self._clock = kernel.clock
        self.in_use = in_use
        """Who serves (repo, commit, location): a port the deployments capability provides.
        Until one does, nothing is deployed by Modelarium and the inventory says "—"."""

    # -- locations -------------------------------------------------------------------------

    @property
    def locations(self) -> list[StorageLocation]:
        return self.settings.locations

    def location(self, name: str | None = None) -> StorageLocation:
        locations = self.locations
        if name is None:
            return locations[0]
        for location in locations:
            if location.name == name:
                return location
        known = ", ".join(loc.name for loc in locations)
        raise UsageError(f"no storage location {name!r}; locations: {known}")

    def layout(self, location: str | StorageLocation, repo_id: str) -> RepoLayout:
        loc = self.location(location) if isinstance(location, str) else location
        return RepoLayout(loc.root, repo_id)

    def usage(self, location: str | StorageLocation | None = None) -> Usage:
        loc = location if isinstance(location, StorageLocation) else self.location(location)
        usage = measure(loc)
        metrics.BYTES_USED.labels(location=loc.name).set(usage.used)
        metrics.BYTES_FREE.labels(location=loc.name).set(usage.free)
        metrics.BYTES_TOTAL.labels(location=loc.name).set(usage.total)
        return usage

    def reserved(self, session: Session, location: str, exclude: int | None = None) -> int:
        """Bytes unfinished installs in ``location`` still have to write."""
        stmt = (
            sa.select(sa.func.coalesce(sa.func.sum(WeightRecord.reserved_bytes), 0))
            .join(Job, Job.id == WeightRecord.job_id)
            .where(
                WeightRecord.location == location,
                WeightRecord.status == "installing",
                Job.status.in_(_ACTIVE_JOB),
            )
        )
        if exclude is not None:
            stmt = stmt.where(WeightRecord.id != exclude)
        return int(session.scalar(stmt) or 0)

    def lock_location(self, session: Session, location: str) -> None:
        """Serialise space decisions per location (SQLite's BEGIN IMMEDIATE already does)."""
        if self._db.dialect == "postgresql":
            session.execute(
                sa.text("SELECT pg_advisory_xact_lock(:space, hashtext(:loc))"),
                {"space": _LOCK_SPACE, "loc": location},
            )

    def open_record(self, session: Session, params: dict[str, Any], user: str) -> WeightRecord:
        """Create (or revive) the record an install job writes, in the enqueueing transaction."""
        loc = self.location(params["location"])
        repo_id, commit = params["repo"], params["commit"]
        now = self._clock.now()
        record = self._find(session, repo_id, commit, loc.name, lock=True)
        if record is not None:
            status = self._status(session, record)
            if status in ("installing", "removing"):
                raise ConflictError(f"{repo_id}@{commit[:7]} is already {status}")
            complete = (
                Bucket(loc).has_manifest(repo_id, commit)
                if loc.is_bucket
                else not missing_files(self.layout(loc, repo_id), commit, record_files(record))
            )
            if status == "installed" and complete and not params.get("force"):
                raise ConflictError(f"{repo_id}@{commit[:7]} is already installed")
            record.reinstall = status == "installed"
            record.status = "installing"
            record.error = None
            record.revision = params["revision"]
        else:
            record = WeightRecord(
                repo_id=repo_id,
                revision=params["revision"],
                commit=commit,
                location=loc.name,
                status="installing",
                size_bytes=int(params.get("size") or 0),
                file_count=0,
                files=[],
                reserved_bytes=0,
                reinstall=False,
                pinned=False,
                created_by=user,
                created_at=now,
            )
            session.add(record)
            try:
                with session.begin_nested():
                    session.flush()
            except IntegrityError:
                raise ConflictError(
                    f"{repo_id}@{commit[:7]} is being installed by someone else right now"
                ) from None
        return record

    # -- records -------------------------------------------------------------------------------

    def _find(
        self, session: Session, repo_id: str, commit: str, location: str, *, lock: bool = False
    ) -> WeightRecord | None:
        stmt = sa.select(WeightRecord).where(
            WeightRecord.repo_id == repo_id,
            WeightRecord.commit == commit,
            WeightRecord.location == location,
        )
        if lock:
            stmt = stmt.with_for_update()
        return session.scalar(stmt)

    def _status(self, session: Session, record: WeightRecord) -> str:
        """The record's status, except an install whose job ended without activating is failed
        (its worker died too often, it was failed by the runner, or the job is gone)."""
        if record.status != "installing":
            return record.status
        job = session.get(Job, record.job_id) if record.job_id else None
        if job is None or job.status not in _ACTIVE_JOB:
            return "failed"
        return "installing"

    def record(self, record_id: int) -> WeightRecord:
        with self._db.transaction() as session:
            record = session.get(WeightRecord, record_id)
            if record is None:
                raise NotFoundError(f"no weights record #{record_id}")
            session.expunge(record)
            return record

    def update(self, record_id: int, **values: Any) -> None:
        with self._db.transaction() as session:
            record = session.get(WeightRecord, record_id)
            if record is not None:
                for key, value in values.items():
                    setattr(record, key, value)

    def discard(self, record_id: int) -> None:
        """Forget an unfinished record whose job was cancelled and whose data is gone."""
        with self._db.transaction() as session:
            record = session.get(WeightRecord, record_id)
            if record is not None and record.status != "installed":
                session.delete(record)

    def touch(self, repo_id: str, commit: str, location: str) -> None:
        """Record a use (a deployment loading the weights): LRU purges go by this."""
        with self._db.transaction() as session:
            record = self._find(session, repo_id, commit, location)
            if record is not None:
                record.last_access_at = self._clock.now()

    def deployed_by(self, repo_id: str, commit: str, location: str) -> tuple[str, ...]:
        return tuple(self.in_use(repo_id, commit, location))

    def matching(
        self,
        repo_id: str,
        revision: str | None = None,
        location: str | None = None,
        statuses: Iterable[str] | None = None,
    ) -> list[WeightRecord]:
        """Records of a repo, narrowed by revision (ref name or commit prefix) and location."""
        if location is not None:
            self.location(location)
        with self._db.transaction() as session:
            stmt = sa.select(WeightRecord).where(WeightRecord.repo_id == repo_id)
            if location is not None:
                stmt = stmt.where(WeightRecord.location == location)
            rows = list(session.scalars(stmt.order_by(WeightRecord.id)))
            if revision:
                rows = [
                    r
                    for r in rows
                    if r.revision == revision
                    or (len(revision) >= 7 and r.commit.startswith(revision.lower()))
                ]
            wanted = set(statuses) if statuses is not None else None
            out = []
            for row in rows:
                if wanted is None or self._status(session, row) in wanted:
                    session.expunge(row)
                    out.append(row)
            return out

    def bucket_uri(self, location: str, repo_id: str, commit: str) -> str:
        """``s3://...`` of these weights in a bucket location (the ``weights_store`` port)."""
        loc = self.location(location)
        if not loc.is_bucket:
            raise UsageError(f"{loc.name} is not a bucket location")
        return storage_uri(loc, repo_id, commit)

    def installed_snapshots(self, repo_id: str, revision: str | None) -> list[InstalledSnapshot]:
        """The ``installed_weights`` port: verified snapshots on disk or in a bucket, in
        configured locations (a bucket's with its ``s3://`` URI and its config.json)."""
        out = []
        locations = {loc.name: loc for loc in self.locations}
        for record in self.matching(repo_id, revision, statuses=("installed",)):
            loc = locations.get(record.location)
            if loc is None:
                continue
            if loc.is_bucket:
                folder = model_prefix(loc, record.repo_id, record.commit)
                try:
                    raw = read_object(s3_client(loc), loc, f"{folder}config.json")
                    config = json.loads(raw) if raw is not None else None
                except (ModelariumError, ValueError):
                    config = None  # unreadable now: not offered to serve from
                out.append(
                    InstalledSnapshot(
                        record.repo_id, record.revision, record.commit, record.location,
                        Path(folder), record.id,
                        storage_uri=storage_uri(loc, record.repo_id, record.commit),
                        service_account=loc.service_account,
                        config=config if isinstance(config, dict) else None,
                    )
                )  # fmt: skip
                continue
            path = self.layout(record.location, repo_id).snapshot(record.commit)
            out.append(
                InstalledSnapshot(
                    record.repo_id, record.revision, record.commit, record.location, path, record.id
                )
            )
        return out

    def _view(
        self,
        loc: StorageLocation,
        record: WeightRecord,
        status: str,
        manifests: set[tuple[str, str]] | None = None,
    ) -> WeightView:
        """``manifests``: the bucket's activated folders (bucket locations; listed once)."""
        note = ""
        where: str | None
        if loc.is_bucket:
            where = storage_uri(loc, record.repo_id, record.commit)
            if manifests is None:
                manifests = Bucket(loc).manifests()
            if status == "installed" and (record.repo_id, record.commit) not in manifests:
                status = "orphaned"
                note = "its manifest is missing from the bucket"
        else:
            layout = RepoLayout(loc.root, record.repo_id)
            path = layout.snapshot(record.commit)
            where = str(path) if path.is_dir() else None
            if status == "installed":
                gone = missing_files(layout, record.commit, record_files(record))
                if gone:
                    status = "orphaned"
                    note = f"{len(gone)} of {record.file_count} file(s) missing on disk"
        if status == "installing":
            note = f"job #{record.job_id}"
        elif status == "failed":
            note = (record.error or "install did not finish")[:200]
        return WeightView(
            id=record.id,
            repo_id=record.repo_id,
            revision=record.revision,
            commit=record.commit,
            location=record.location,
            status=status,
            size=record.size_bytes,
            files=record.file_count,
            pinned=record.pinned,
            pinned_by=record.pinned_by,
            last_access=record.last_access_at or record.installed_at,
            installed_at=record.installed_at,
            job_id=record.job_id,
            error=record.error,
            deployed_by=self.deployed_by(record.repo_id, record.commit, record.location),
            note=note,
            path=where,
        )


def restore_times(path: Path, stat: os.stat_result) -> None:
    """Put back the access time a verification read disturbed (LRU must not count it)."""
    with contextlib.suppress(OSError):
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
