"""Purges: which revisions a policy would remove, and removing one of them safely (rechecked
row by row, resumable after a crash)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from modelarium.config.settings import StorageLocation
from modelarium.core.db.models.weights import WeightRecord
from modelarium.core.errors import ConflictError, NotFoundError
from modelarium.core.logging import get_logger
from modelarium.core.weights import metrics
from modelarium.core.weights.buckets import Bucket, model_prefix
from modelarium.core.weights.layout import (
    RepoFile,
    RepoLayout,
    install_tag,
    remove_incomplete,
    remove_revision,
)
from modelarium.core.weights.policy import Candidate, Policy, PurgeItem, PurgePlan, plan_purge

if TYPE_CHECKING:
    pass

from modelarium.config.units import format_size
from modelarium.core.changes import ApprovalPolicy, Plan
from modelarium.core.rbac import Role
from modelarium.core.weights.records import (
    WeightsBase,
    WeightView,
    _last_access,
    parse_model_ref,
    record_files,
    short_ref,
)

log = get_logger(__name__)

STALE_UPLOAD_AFTER = 86400.0
"""A multipart upload untouched this long belongs to a job that died, not one still running."""


class Purging(WeightsBase):
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
                    deployed_by=self.deployed_by(record.repo_id, record.commit, record.location),
                )
            )
        return out

    def _failed_bytes(self, loc: StorageLocation, record: WeightRecord, others: set[str]) -> int:
        if loc.is_bucket:
            return sum(Bucket(loc).objects(record.repo_id, record.commit).values())
        layout = RepoLayout(loc.root, record.repo_id)
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

    def plan_purge_one(
        self, location: str | None, policy: Policy = "all", *, select: list[str] | None = None
    ) -> PurgePlan:
        """One location's plan; ``select`` (``repo@commit`` refs) purges exactly those."""
        loc = self.location(location)
        candidates = self.candidates(loc)
        if select is None:
            return plan_purge(loc, self.usage(loc), candidates, self._clock.now(), policy)
        wanted = [parse_model_ref(ref) for ref in select]
        chosen = [
            c
            for c in candidates
            if any(
                c.repo_id == repo and (not rev or c.commit.startswith(rev.lower()))
                for repo, rev in wanted
            )
        ]
        if not chosen:
            raise NotFoundError(f"none of {', '.join(select)} is installed in {loc.name}")
        kept = [c for c in chosen if c.pinned or c.deployed]
        if kept:
            why = "pinned" if kept[0].pinned else f"deployed by {', '.join(kept[0].deployed_by)}"
            raise ConflictError(f"{kept[0].repo_id}@{kept[0].commit[:7]} is {why}; it stays")
        items = tuple(
            PurgeItem(c.id, c.repo_id, c.revision, c.commit, c.size, c.last_access, "selected")
            for c in chosen
        )
        return PurgePlan(loc.name, "selected", self.usage(loc), items)

    def purge_plan_from_params(self, params: dict[str, Any]) -> PurgePlan:
        """A plan made earlier (by the daemon's policy run), re-read for proposing."""
        loc = self.location(params["location"])
        by_id = {c.id: c for c in self.candidates(loc)}
        items = tuple(
            PurgeItem(
                c.id, c.repo_id, c.revision, c.commit, c.size, c.last_access, params["policy"]
            )
            for item in params.get("items") or []
            if (c := by_id.get(int(item["id"]))) is not None and c.commit == item["commit"]
        )
        return PurgePlan(loc.name, str(params.get("policy")), self.usage(loc), items)

    def remove_one(
        self,
        location: str,
        item: dict[str, Any],
        actor: str,
        *,
        reason: str = "",
        resuming: bool = False,
    ) -> str:
        """Remove one planned revision if it is still removable: "removed", or why not."""
        loc = self.location(location)
        outcome = self._remove(loc, int(item["id"]), str(item["commit"]), actor, reason, resuming)
        if isinstance(outcome, str):
            return outcome
        _view, freed = outcome
        metrics.PURGED_BYTES.labels(location=loc.name).inc(freed)
        return "removed"

    def _remove(
        self,
        loc: StorageLocation,
        record_id: int,
        commit: str,
        actor: str,
        reason: str,
        resuming: bool = False,
    ) -> tuple[WeightView, int] | str:
        with self._db.transaction() as session:
            record = session.scalar(
                sa.select(WeightRecord).where(WeightRecord.id == record_id).with_for_update()
            )
            if record is None or record.commit != commit or record.location != loc.name:
                return "already gone"
            status = self._status(session, record)
            if status == "removing" and resuming:
                status = "installed"  # our own removal, interrupted: finish it
            elif record.pinned:
                return "pinned"
            if status not in ("installed", "failed"):
                return status
            users = self.deployed_by(record.repo_id, record.commit, record.location)
            if users:
                return f"deployed by {', '.join(users)}"
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
        if loc.is_bucket:
            freed = Bucket(loc).remove(view.repo_id, commit)
        else:
            layout = RepoLayout(loc.root, view.repo_id)
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

    def abort_stale_uploads(self, older_than: float = STALE_UPLOAD_AFTER) -> list[str]:
        """Abort multipart uploads left in buckets for more than ``older_than`` seconds by
        installs, publishes or uploads that died (their parts are billed until then)."""
        lines = []
        now = self._clock.now()
        for loc in self.locations:
            if not loc.is_bucket:
                continue
            with self._db.transaction() as session:
                # A long install still running keeps its uploads (it resumes them).
                running = tuple(
                    model_prefix(loc, r.repo_id, r.commit)
                    for r in session.scalars(
                        sa.select(WeightRecord).where(
                            WeightRecord.location == loc.name, WeightRecord.status == "installing"
                        )
                    )
                    if self._status(session, r) == "installing"
                )
            bucket = Bucket(loc)
            stale = [
                u
                for u in bucket.stale_uploads(older_than=older_than, now=now)
                if not (running and u.key.startswith(running))
            ]
            for upload in stale:
                bucket.abort(upload)
                log.info("weights.upload_aborted", location=loc.name, key=upload.key)
            if stale:
                lines.append(f"{loc.name}: aborted {len(stale)} stale multipart upload(s)")
        return lines


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


def purge_change_plan(plan: PurgePlan, threshold: int) -> Plan:
    names = ", ".join(short_ref(i.repo_id, i.commit) for i in plan.items[:5])
    more = f" and {len(plan.items) - 5} more" if len(plan.items) > 5 else ""
    approval = (
        ApprovalPolicy.required(
            f"frees {format_size(plan.bytes)}, more than the {format_size(threshold)} purge "
            "approval threshold",
            role=Role.ADMIN,
        )
        if plan.bytes > threshold
        else ApprovalPolicy.none(f"frees no more than {format_size(threshold)}")
    )
    return Plan(
        target=f"location:{plan.location}",
        summary=(
            f"Purge {len(plan.items)} model revision(s) from {plan.location} "
            f"({format_size(plan.bytes)}): {names}{more}"
        ),
        params=purge_params(plan),
        approval=approval,
        diff=tuple(
            f"- {i.repo_id}@{i.commit[:12]} ({format_size(i.size)}, {i.reason})" for i in plan.items
        ),
        facts={"bytes": plan.bytes, "items": len(plan.items), "usage_after": plan.usage_after},
    )
