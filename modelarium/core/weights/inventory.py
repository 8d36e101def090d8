"""The inventory: what is installed where, orphaned data on disk, access times, pins, and the
daemon's view of each location's usage."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from modelarium.config.settings import StorageLocation
from modelarium.config.units import format_size
from modelarium.core.alerts import Observation
from modelarium.core.db.models.weights import WeightRecord
from modelarium.core.errors import NotFoundError, UsageError
from modelarium.core.weights.buckets import Bucket, storage_uri
from modelarium.core.weights.layout import (
    RepoFile,
    RepoLayout,
    install_tag,
    scan_root,
)
from modelarium.core.weights.storage import Usage

if TYPE_CHECKING:
    pass

from modelarium.core.weights.records import (
    DISK_USAGE_RULE,
    STATUSES,
    WeightsBase,
    WeightView,
    _last_access,
    record_files,
)


class Inventory(WeightsBase):
    # -- pins ----------------------------------------------------------------------------------

    def set_pinned(
        self,
        repo_id: str,
        revision: str | None,
        location: str | None,
        user: str,
        pinned: bool,
    ) -> tuple[list[WeightView], int]:
        """The matching weights after pinning (or unpinning) them, and how many changed: 0 says
        there was nothing to do."""
        rows = self.matching(repo_id, revision, location)
        if not rows:
            where = f" in {location}" if location else ""
            raise NotFoundError(
                f"{repo_id}{'@' + revision if revision else ''} is not installed{where}"
            )
        now = self._clock.now()
        changed = 0
        with self._db.transaction() as session:
            for row in rows:
                record = session.get(WeightRecord, row.id)
                if record is None or bool(record.pinned) == pinned:
                    continue
                changed += 1
                record.pinned = pinned
                record.pinned_by = user if pinned else None
                record.pinned_at = now if pinned else None
        return [v for v in self.inventory() if v.id in {r.id for r in rows}], changed

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
            if loc.is_bucket:
                views.extend(self._bucket_views(loc, owned, statuses))
                continue
            for record in owned:
                views.append(self._view(loc, record, statuses[record.id]))
            views.extend(self._orphans_on_disk(loc, owned, statuses))
        if status is not None:
            views = [v for v in views if v.status == status]
        if pinned:
            views = [v for v in views if v.pinned]
        return views

    def _bucket_views(
        self, loc: StorageLocation, owned: list[WeightRecord], statuses: dict[int, str]
    ) -> list[WeightView]:
        """A bucket's records (checked against its manifests, listed once) and what no record
        owns: activated folders, and unfinished multipart uploads (parts still billed)."""
        bucket = Bucket(loc)
        manifests = bucket.manifests()
        views = [self._view(loc, r, statuses[r.id], manifests) for r in owned]
        known = {(r.repo_id, r.commit) for r in owned}
        for model_id, version in sorted(manifests - known):
            manifest = bucket.read_manifest(model_id, version) or {}
            size = sum(int(f.get("size") or 0) for f in manifest.get("files") or [])
            views.append(
                WeightView(
                    None, model_id, None, version, loc.name, "orphaned", size,
                    files=len(manifest.get("files") or []),
                    note="a folder in the bucket that no record owns",
                    path=storage_uri(loc, model_id, version),
                )
            )  # fmt: skip
        uploads = bucket.stale_uploads(older_than=0.0)
        active = {u for r in owned if statuses[r.id] == "installing" for u in [r.repo_id]}
        stale = [u for u in uploads if not any(f"/{a}/" in u.key for a in active)]
        if stale:
            views.append(
                WeightView(
                    None, f"({len(stale)} unfinished multipart upload(s))", None, None, loc.name,
                    "orphaned", 0, note="aborted by `purge` once a day old",
                    path=f"s3://{loc.bucket}/{loc.prefix}",
                )
            )  # fmt: skip
        return views

    def _orphans_on_disk(
        self, loc: StorageLocation, owned: list[WeightRecord], statuses: dict[int, str]
    ) -> list[WeightView]:
        """Data in the location that no record owns: snapshots, partial downloads of no
        install, blobs no record lists."""
        views = []
        for repo in scan_root(loc.root):
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
                if loc.is_bucket:
                    continue  # buckets keep no access times; deployments touch() instead
                layout = RepoLayout(loc.root, record.repo_id)
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
