"""The weights service: install plans, inventory, pins, verification and purges.

The database row (:class:`WeightRecord`) owns what is on disk; the disk is the truth about
bytes. Installs run as jobs (:mod:`modelarium.core.weights.install`); anything risky (a
reinstall, a big install, a big purge) goes through :mod:`modelarium.core.approvals`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelarium.config.settings import StorageLocation
from modelarium.config.units import format_size
from modelarium.core.alerts import Observation
from modelarium.core.approvals import ApprovalView
from modelarium.core.clients.huggingface import hub_api, hub_errors
from modelarium.core.db.models.jobs import Job
from modelarium.core.db.models.weights import WeightRecord
from modelarium.core.errors import ConflictError, NotFoundError, UsageError
from modelarium.core.jobs import JobView
from modelarium.core.logging import get_logger
from modelarium.core.weights import metrics
from modelarium.core.weights.layout import (
    COMMIT,
    REPO_ID,
    RepoFile,
    RepoLayout,
    install_tag,
    missing_files,
    remove_incomplete,
    remove_revision,
    scan_root,
)
from modelarium.core.weights.policy import Candidate, Policy, PurgePlan, plan_purge
from modelarium.core.weights.storage import Usage, measure

if TYPE_CHECKING:
    from modelarium.core.app import Core

log = get_logger(__name__)

INSTALL_JOB = "weights.install"
VERIFY_JOB = "weights.verify"
INSTALL_ACTION = "weights.install"
PURGE_ACTION = "weights.purge"
DISK_USAGE_RULE = "disk_usage"
STATUSES = ("installing", "installed", "failed", "orphaned")
_ACTIVE_JOB = ("queued", "running")
_LOCK_SPACE = 7243006  # pg_advisory_xact_lock namespace: space reservations per location


def parse_model_ref(text: str) -> tuple[str, str | None]:
    """``org/name`` or ``org/name@revision`` -> (repo id, revision or None)."""
    repo_id, _, revision = text.strip().partition("@")
    if not REPO_ID.match(repo_id) or "--" in repo_id or ".." in repo_id:
        raise UsageError(f"not a model id: {text!r} (expected org/name or org/name@revision)")
    if "@" in text and not revision:
        raise UsageError(f"empty revision in {text!r}")
    return repo_id, revision or None


@dataclass(frozen=True)
class InstallPlan:
    repo_id: str
    revision: str
    commit: str
    location: str
    files: tuple[RepoFile, ...]
    size: int
    to_download: int
    force: bool
    approval_reasons: tuple[str, ...] = ()

    def params(self, channel: str | None = None) -> dict[str, Any]:
        """What an approval is bound to and the job runs: the exact commit, not a branch."""
        return {
            "repo": self.repo_id,
            "revision": self.revision,
            "commit": self.commit,
            "location": self.location,
            "force": self.force,
            "size": self.size,
            "files": len(self.files),
            "channel": channel,
        }


@dataclass(frozen=True)
class InstallRequest:
    plan: InstallPlan
    job: JobView | None = None
    approval: ApprovalView | None = None


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


@dataclass
class PurgeResult:
    location: str
    removed: list[WeightView] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    freed: int = 0

    def summary(self) -> str:
        text = (
            f"removed {len(self.removed)} model revision(s) from {self.location}, "
            f"freed {format_size(self.freed)}"
        )
        if self.skipped:
            text += "; kept " + ", ".join(f"{what} ({why})" for what, why in self.skipped)
        return text


def _last_access(record: WeightRecord) -> datetime:
    return record.last_access_at or record.installed_at or record.created_at


def record_files(record: WeightRecord) -> list[RepoFile]:
    return [RepoFile.from_json(f) for f in record.files or []]


class WeightsService:
    def __init__(self, core: Core) -> None:
        self._core = core
        self.settings = core.settings
        self._db = core.db
        self._clock = core.clock
        self.deployments: Callable[[str, str, str], list[str]] | None = None
        """Set by a deployment capability: who serves (repo, commit, location). Until one
        exists nothing is deployed by Modelarium, purges need not spare anything for it, and
        the inventory says "—"."""

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
        return RepoLayout(loc.path, repo_id)

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

    # -- the hub -----------------------------------------------------------------------------

    def resolve(self, repo_id: str, revision: str | None) -> tuple[str, list[RepoFile]]:
        """(commit, files with sizes and hashes) of a revision, from the hub's own listing."""
        api = hub_api(self.settings)
        label = f"{repo_id}@{revision}" if revision else repo_id
        with hub_errors(label):
            info = api.model_info(
                repo_id, revision=revision, files_metadata=True, timeout=self.settings.hub_timeout
            )
        commit = str(info.sha or "")
        if not COMMIT.match(commit):
            raise NotFoundError(f"{label}: the hub gave no commit for this revision")
        siblings = info.siblings or []
        if siblings and all(s.size is not None and s.blob_id for s in siblings):
            files = [
                RepoFile(s.rfilename, int(s.size or 0), str(s.blob_id), _lfs_sha(s.lfs))
                for s in siblings
            ]
        else:
            with hub_errors(label):
                entries = list(api.list_repo_tree(repo_id, revision=commit, recursive=True))
            files = [
                RepoFile(e.path, int(e.size), str(e.blob_id), _lfs_sha(e.lfs))
                for e in entries
                if getattr(e, "blob_id", None) is not None and hasattr(e, "size")
            ]
        return commit, sorted(files, key=lambda f: f.path)

    # -- installing ----------------------------------------------------------------------------

    def bytes_to_write(
        self,
        location: StorageLocation,
        repo_id: str,
        files: Iterable[RepoFile],
        *,
        replace: bool = False,
        done: Iterable[str] = (),
        tag: str | None = None,
    ) -> int:
        """What an install still has to put on disk: missing blobs minus partial prefixes."""
        layout = RepoLayout(location.path, repo_id)
        finished = set(done)
        needed = 0
        for file in {f.etag: f for f in files}.values():
            if layout.blob(file.etag).exists() and (not replace or file.etag in finished):
                continue
            partial = 0
            if tag is not None:
                try:
                    partial = layout.incomplete(file.etag, tag).stat().st_size
                except OSError:
                    partial = 0
            needed += max(0, file.size - partial)
        return needed

    def plan_install(
        self,
        repo_id: str,
        revision: str | None,
        location: str | None = None,
        *,
        force: bool = False,
    ) -> InstallPlan:
        loc = self.location(location)
        commit, files = self.resolve(repo_id, revision)
        size = sum(f.size for f in files)
        reasons: list[str] = []
        replace = False
        with self._db.transaction() as session:
            record = self._find(session, repo_id, commit, loc.name)
            status = self._status(session, record) if record else None
            if status in ("installing", "removing"):
                raise ConflictError(
                    f"{repo_id}@{commit[:7]} is already {status} in {loc.name}"
                    + (f" (job #{record.job_id})" if record and record.job_id else "")
                )
            if status == "installed" and record is not None:
                broken = missing_files(self.layout(loc, repo_id), commit, record_files(record))
                if not broken:
                    if not force:
                        raise ConflictError(
                            f"{repo_id}@{commit[:7]} is already installed in {loc.name} "
                            f"({format_size(record.size_bytes)}); add --force to download and "
                            "verify it again (needs an approval)"
                        )
                    replace = True
                    reasons.append("it replaces an installed revision (--force)")
            reserved = self.reserved(session, loc.name)
        if size > self.settings.install_approval_threshold:
            reasons.append(
                f"{format_size(size)} is above the "
                f"{format_size(self.settings.install_approval_threshold)} install approval "
                "threshold"
            )
        needed = self.bytes_to_write(loc, repo_id, files, replace=replace)
        usage = self.usage(loc)
        if needed > usage.free - reserved:
            raise ConflictError(
                f"not enough space in {loc.name}: {repo_id} needs {format_size(needed)}, "
                f"{format_size(max(0, usage.free - reserved))} is free"
                + (
                    f" ({format_size(reserved)} reserved by installs in progress)"
                    if reserved
                    else ""
                )
                + "; see `purge --dry-run`"
            )
        return InstallPlan(
            repo_id,
            revision or "main",
            commit,
            loc.name,
            tuple(files),
            size,
            needed,
            force and replace,
            tuple(reasons),
        )

    def request_install(
        self, plan: InstallPlan, user: str, channel: str | None = None
    ) -> InstallRequest:
        params = plan.params(channel)
        if plan.approval_reasons:
            view = self._core.approvals.request(INSTALL_ACTION, params, user, channel=channel)
            return InstallRequest(plan, approval=view)
        return InstallRequest(plan, job=self.start_install(params, user, files=plan.files))

    def start_install(
        self, params: dict[str, Any], user: str, *, files: Iterable[RepoFile] | None = None
    ) -> JobView:
        """Create (or revive) the record and enqueue its job in one transaction."""
        loc = self.location(params["location"])
        repo_id, commit = params["repo"], params["commit"]
        manifest = [f.to_json() for f in files] if files is not None else []
        now = self._clock.now()
        try:
            with self._db.transaction() as session:
                record = self._find(session, repo_id, commit, loc.name, lock=True)
                if record is not None:
                    status = self._status(session, record)
                    if status in ("installing", "removing"):
                        raise ConflictError(f"{repo_id}@{commit[:7]} is already {status}")
                    complete = not missing_files(
                        self.layout(loc, repo_id), commit, record_files(record)
                    )
                    if status == "installed" and complete and not params.get("force"):
                        raise ConflictError(f"{repo_id}@{commit[:7]} is already installed")
                    record.reinstall = status == "installed"
                    record.status = "installing"
                    record.error = None
                    record.revision = params["revision"]
                    if manifest and not record.files:
                        record.files = manifest
                else:
                    record = WeightRecord(
                        repo_id=repo_id,
                        revision=params["revision"],
                        commit=commit,
                        location=loc.name,
                        status="installing",
                        size_bytes=int(params.get("size") or 0),
                        file_count=len(manifest),
                        files=manifest,
                        reserved_bytes=0,
                        reinstall=False,
                        pinned=False,
                        created_by=user,
                        created_at=now,
                    )
                    session.add(record)
                    session.flush()
                job = self._core.jobs.enqueue(
                    INSTALL_JOB,
                    {
                        "weight_id": record.id,
                        "repo": repo_id,
                        "revision": params["revision"],
                        "commit": commit,
                        "location": loc.name,
                        "force": bool(params.get("force")),
                    },
                    created_by=user,
                    channel=params.get("channel"),
                    session=session,
                )
                record.job_id = job.id
                return job
        except IntegrityError:
            raise ConflictError(
                f"{repo_id}@{commit[:7]} is being installed by someone else right now"
            ) from None

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

    def touch(self, repo_id: str, commit: str, location: str) -> None:
        """Record a use (a deployment loading the weights): LRU purges go by this."""
        with self._db.transaction() as session:
            record = self._find(session, repo_id, commit, location)
            if record is not None:
                record.last_access_at = self._clock.now()

    def deployed_by(self, repo_id: str, commit: str, location: str) -> tuple[str, ...]:
        if self.deployments is None:
            return ()
        return tuple(self.deployments(repo_id, commit, location))

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

    # -- pins ----------------------------------------------------------------------------------

    def set_pinned(
        self,
        repo_id: str,
        revision: str | None,
        location: str | None,
        user: str,
        pinned: bool,
    ) -> list[WeightView]:
        rows = self.matching(repo_id, revision, location)
        if not rows:
            where = f" in {location}" if location else ""
            raise NotFoundError(
                f"{repo_id}{'@' + revision if revision else ''} is not installed{where}"
            )
        now = self._clock.now()
        with self._db.transaction() as session:
            for row in rows:
                record = session.get(WeightRecord, row.id)
                if record is None:
                    continue
                record.pinned = pinned
                record.pinned_by = user if pinned else None
                record.pinned_at = now if pinned else None
        return [v for v in self.inventory() if v.id in {r.id for r in rows}]

    # -- verify --------------------------------------------------------------------------------

    def request_verify(
        self,
        repo_id: str,
        revision: str | None,
        location: str | None,
        user: str,
        channel: str | None = None,
    ) -> list[JobView]:
        rows = self.matching(repo_id, revision, location, statuses=("installed",))
        if not rows:
            label = f"{repo_id}@{revision}" if revision else repo_id
            raise NotFoundError(
                f"{label} is not installed" + (f" in {location}" if location else "")
            )
        return [
            self._core.jobs.enqueue(
                VERIFY_JOB,
                {
                    "weight_id": row.id,
                    "repo": row.repo_id,
                    "revision": row.revision,
                    "commit": row.commit,
                    "location": row.location,
                },
                created_by=user,
                channel=channel,
            )
            for row in rows
        ]

    # -- inventory -----------------------------------------------------------------------------

    def inventory(
        self,
        location: str | None = None,
        status: str | None = None,
        pinned: bool = False,
    ) -> list[WeightView]:
        if status is not None and status not in STATUSES:
            raise UsageError(f"--status must be one of {', '.join(STATUSES)}")
        locations = [self.location(location)] if location else self.locations
        names = {loc.name for loc in locations}
        views: list[WeightView] = []
        with self._db.transaction() as session:
            records = list(
                session.scalars(
                    sa.select(WeightRecord)
                    .where(WeightRecord.location.in_(names))
                    .order_by(WeightRecord.location, WeightRecord.repo_id, WeightRecord.id)
                )
            )
            statuses = {r.id: self._status(session, r) for r in records}
        by_loc: dict[str, list[WeightRecord]] = {}
        for record in records:
            by_loc.setdefault(record.location, []).append(record)
        for loc in locations:
            owned = by_loc.get(loc.name, [])
            for record in owned:
                views.append(self._view(loc, record, statuses[record.id]))
            views.extend(self._orphans_on_disk(loc, owned, statuses))
        if status is not None:
            views = [v for v in views if v.status == status]
        if pinned:
            views = [v for v in views if v.pinned]
        return views

    def _view(self, loc: StorageLocation, record: WeightRecord, status: str) -> WeightView:
        note = ""
        layout = RepoLayout(loc.path, record.repo_id)
        path = layout.snapshot(record.commit)
        if status == "installed":
            gone = missing_files(layout, record.commit, record_files(record))
            if gone:
                status = "orphaned"
                note = f"{len(gone)} of {record.file_count} file(s) missing on disk"
        elif status == "installing":
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
            path=str(path) if path.is_dir() else None,
        )

    def _orphans_on_disk(
        self, loc: StorageLocation, owned: list[WeightRecord], statuses: dict[int, str]
    ) -> list[WeightView]:
        """Data in the location that no record owns: snapshots, partial downloads of no
        install, blobs no record lists."""
        views = []
        for repo in scan_root(loc.path):
            records = [r for r in owned if r.repo_id == repo.repo_id]
            commits = {r.commit for r in records}
            listed = {RepoFile.from_json(f).etag for r in records for f in r.files or []}
            owned_tags = {install_tag(r.id) for r in records}  # a failed install resumes
            for commit, size in sorted(repo.revisions.items()):
                if commit not in commits:
                    views.append(
                        WeightView(
                            None, repo.repo_id, None, commit, loc.name, "orphaned", size,
                            note="snapshot on disk that no record owns",
                            path=str(repo.path / "snapshots" / commit),
                        )
                    )  # fmt: skip
            stale = sum(
                size
                for name, size in repo.incomplete.items()
                if name.split(".")[-2] not in owned_tags
            )
            loose = sum(size for blob, size in repo.loose_blobs.items() if blob not in listed)
            if stale or loose:
                parts = []
                if stale:
                    parts.append(f"{format_size(stale)} of abandoned partial downloads")
                if loose:
                    parts.append(f"{format_size(loose)} of blobs no record lists")
                views.append(
                    WeightView(
                        None, repo.repo_id, None, None, loc.name, "orphaned", stale + loose,
                        note="; ".join(parts), path=str(repo.path),
                    )
                )  # fmt: skip
        return views

    # -- access times ----------------------------------------------------------------------------

    def refresh_access(self) -> int:
        """Carry blob access times (a server loading the weights) into ``last_access_at``.

        Only an access after the last write counts (relatime and strictatime mounts both record
        that), and verification restores the times it disturbs, so only real readers count.
        """
        updated = 0
        with self._db.transaction() as session:
            records = list(
                session.scalars(sa.select(WeightRecord).where(WeightRecord.status == "installed"))
            )
            for record in records:
                try:
                    loc = self.location(record.location)
                except UsageError:
                    continue
                layout = RepoLayout(loc.path, record.repo_id)
                latest = 0.0
                for file in record_files(record):
                    try:
                        stat = layout.blob(file.etag).stat()
                    except OSError:
                        continue
                    if stat.st_atime > stat.st_mtime + 1:  # read after it was written
                        latest = max(latest, stat.st_atime)
                if not latest:
                    continue
                seen = datetime.fromtimestamp(latest, UTC)
                if seen > _last_access(record):
                    record.last_access_at = seen
                    updated += 1
        return updated

    # -- purging -------------------------------------------------------------------------------

    def candidates(self, location: StorageLocation) -> list[Candidate]:
        with self._db.transaction() as session:
            records = list(
                session.scalars(
                    sa.select(WeightRecord).where(WeightRecord.location == location.name)
                )
            )
            statuses = {r.id: self._status(session, r) for r in records}
        out = []
        for record in records:
            status = statuses[record.id]
            if status not in ("installed", "failed"):
                continue
            others = {
                RepoFile.from_json(f).etag
                for r in records
                if r.id != record.id and r.repo_id == record.repo_id
                for f in r.files or []
            }
            files = {f.etag: f for f in record_files(record)}
            exclusive = sum(f.size for etag, f in files.items() if etag not in others)
            if status == "failed":
                exclusive = self._failed_bytes(location, record, others)
            out.append(
                Candidate(
                    id=record.id,
                    repo_id=record.repo_id,
                    revision=record.revision,
                    commit=record.commit,
                    status=status,
                    size=exclusive,
                    last_access=_last_access(record),
                    pinned=record.pinned,
                    deployed=bool(self.deployed_by(record.repo_id, record.commit, record.location)),
                )
            )
        return out

    def _failed_bytes(self, loc: StorageLocation, record: WeightRecord, others: set[str]) -> int:
        layout = RepoLayout(loc.path, record.repo_id)
        total = 0
        for path in layout.blobs.glob(f"*.{install_tag(record.id)}.incomplete"):
            try:
                total += path.stat().st_size
            except OSError:
                continue
        for file in record_files(record):
            if file.etag in others:
                continue
            try:
                total += layout.blob(file.etag).stat().st_size
            except OSError:
                continue
        return total

    def plan_purge(self, location: str | None = None, policy: Policy = "all") -> list[PurgePlan]:
        locations = [self.location(location)] if location else self.locations
        now = self._clock.now()
        return [
            plan_purge(loc, self.usage(loc), self.candidates(loc), now, policy) for loc in locations
        ]

    def purge(
        self, location: str, items: Iterable[dict[str, Any]], actor: str, *, reason: str = ""
    ) -> PurgeResult:
        """Remove the listed revisions that are still removable (checked again, row by row)."""
        loc = self.location(location)
        result = PurgeResult(loc.name)
        for item in items:
            label = f"{item['repo']}@{str(item['commit'])[:7]}"
            outcome = self._remove(loc, int(item["id"]), str(item["commit"]), actor, reason)
            if isinstance(outcome, str):
                result.skipped.append((label, outcome))
            else:
                view, freed = outcome
                result.removed.append(view)
                result.freed += freed
        metrics.PURGED_BYTES.labels(location=loc.name).inc(result.freed)
        self.usage(loc)
        return result

    def _remove(
        self, loc: StorageLocation, record_id: int, commit: str, actor: str, reason: str
    ) -> tuple[WeightView, int] | str:
        with self._db.transaction() as session:
            record = session.scalar(
                sa.select(WeightRecord).where(WeightRecord.id == record_id).with_for_update()
            )
            if record is None or record.commit != commit or record.location != loc.name:
                return "already gone"
            status = self._status(session, record)
            if record.pinned:
                return "pinned"
            if status not in ("installed", "failed"):
                return status
            if self.deployed_by(record.repo_id, record.commit, record.location):
                return "deployed"
            record.status = "removing"
            view = self._view(loc, record, status)
            keep = {
                RepoFile.from_json(f).etag
                for other in session.scalars(
                    sa.select(WeightRecord).where(
                        WeightRecord.repo_id == record.repo_id,
                        WeightRecord.location == loc.name,
                        WeightRecord.id != record.id,
                    )
                )
                for f in other.files or []
            }
            manifest = [f.etag for f in record_files(record)]
        layout = RepoLayout(loc.path, view.repo_id)
        freed = remove_incomplete(layout, install_tag(record_id))
        freed += remove_revision(layout, commit, keep, manifest)
        with self._db.transaction() as session:
            record = session.get(WeightRecord, record_id)
            if record is not None:
                session.delete(record)
            self._core.audit.record(
                actor,
                "weights.remove",
                target=f"{view.repo_id}@{commit}",
                params={"location": loc.name, "freed": freed, "reason": reason},
                session=session,
            )
        log.info("weights.removed", model=view.repo_id, commit=commit, freed=freed, actor=actor)
        return view, freed

    def request_purge(
        self, plan: PurgePlan, user: str, channel: str | None = None
    ) -> ApprovalView | PurgeResult:
        """Purge now, or ask for an approval when it frees more than the threshold."""
        if plan.bytes > self.settings.purge_approval_threshold:
            return self._core.approvals.request(
                PURGE_ACTION, purge_params(plan), user, channel=channel
            )
        return self.purge(plan.location, purge_params(plan)["items"], user, reason=plan.policy)

    def pending_purge(self, location: str) -> ApprovalView | None:
        for view in self._core.approvals.pending():
            if view.action == PURGE_ACTION and view.params.get("location") == location:
                return view
        return None

    def enforce(self, actor: str = "daemon", *, above_watermark_only: bool = False) -> list[str]:
        """Apply the policies of every location: purge at once when it frees no more than the
        approval threshold, else post the proposed purge for approval (once)."""
        lines = []
        for plan in self.plan_purge(policy="all"):
            loc = self.location(plan.location)
            if above_watermark_only and plan.usage.fraction <= loc.high_watermark:
                continue
            if not plan.items:
                if plan.target:
                    lines.append(
                        f"{plan.location}: above its high watermark but nothing is removable "
                        f"({_kept(plan)})"
                    )
                continue
            if plan.bytes > self.settings.purge_approval_threshold:
                pending = self.pending_purge(plan.location)
                if pending is not None:
                    lines.append(f"{plan.location}: purge approval #{pending.id} still pending")
                    continue
                view = self._core.approvals.request(PURGE_ACTION, purge_params(plan), actor)
                lines.append(
                    f"{plan.location}: proposed purge of {format_size(plan.bytes)} "
                    f"(approval #{view.id})"
                )
            else:
                result = self.purge(
                    plan.location, purge_params(plan)["items"], actor, reason="policy"
                )
                lines.append(f"{plan.location}: {result.summary()}")
        return lines

    # -- the daemon's view of disks --------------------------------------------------------------

    def observations(self) -> tuple[list[Observation], list[Usage]]:
        usages = [self.usage(loc) for loc in self.locations]
        # Each location alerts at its own high watermark, the same line its purge policy uses.
        return (
            [
                Observation(
                    DISK_USAGE_RULE,
                    round(u.fraction, 4),
                    {"location": u.location},
                    threshold=loc.high_watermark,
                )
                for u, loc in zip(usages, self.locations, strict=True)
            ],
            usages,
        )


def purge_params(plan: PurgePlan) -> dict[str, Any]:
    return {
        "location": plan.location,
        "policy": plan.policy,
        "bytes": plan.bytes,
        "items": [
            {"id": i.id, "repo": i.repo_id, "commit": i.commit, "size": i.size} for i in plan.items
        ],
    }


def _kept(plan: PurgePlan) -> str:
    return ", ".join(f"{n} {why}" for why, n in plan.kept.items()) or "no installed weights"


def _lfs_sha(lfs: Any) -> str | None:
    if not lfs:
        return None
    sha = lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)
    return str(sha) if sha else None


def restore_times(path: Path, stat: os.stat_result) -> None:
    """Put back the access time a verification read disturbed (LRU must not count it)."""
    with contextlib.suppress(OSError):
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
