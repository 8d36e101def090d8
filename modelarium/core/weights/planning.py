"""Install planning: resolve a revision on the Hub, count what must be written, decide whether
an approval is needed, and describe it as a change."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelarium.config.settings import StorageLocation
from modelarium.config.units import format_size
from modelarium.core.clients.huggingface import hub_api, hub_errors
from modelarium.core.errors import ConflictError, NotFoundError
from modelarium.core.weights.bucket_install import bucket_bytes_to_write
from modelarium.core.weights.buckets import Bucket
from modelarium.core.weights.layout import (
    COMMIT,
    RepoFile,
    RepoLayout,
    missing_files,
)

if TYPE_CHECKING:
    pass

from modelarium.core.changes import ApprovalPolicy, Plan
from modelarium.core.rbac import Role
from modelarium.core.weights.records import WeightsBase, WeightView, record_files


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

    def params(self) -> dict[str, Any]:
        """What an approval is bound to and the job runs: the exact commit, not a branch."""
        return {
            "repo": self.repo_id,
            "revision": self.revision,
            "commit": self.commit,
            "location": self.location,
            "force": self.force,
            "size": self.size,
            "files": len(self.files),
        }


class AlreadyInstalled(ConflictError):
    """The revision asked for is installed and complete: for scripts, a success."""

    def __init__(self, view: WeightView) -> None:
        super().__init__(
            f"{view.repo_id}@{(view.commit or '')[:7]} is already installed in {view.location}; "
            "add --force to download and verify it again (needs an approval)"
        )
        self.view = view


class Planning(WeightsBase):
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
        layout = RepoLayout(location.root, repo_id)
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
        if loc.is_bucket:
            Bucket(loc).check()  # a missing bucket or refused credentials: one line, now
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
                complete = (
                    Bucket(loc).has_manifest(repo_id, commit)
                    if loc.is_bucket
                    else not missing_files(self.layout(loc, repo_id), commit, record_files(record))
                )
                if complete:
                    if not force:
                        raise AlreadyInstalled(self._view(loc, record, "installed"))
                    replace = True
                    reasons.append("it replaces an installed revision (--force)")
            reserved = self.reserved(session, loc.name)
        if size > self.settings.install_approval_threshold:
            reasons.append(
                f"{format_size(size)} is above the "
                f"{format_size(self.settings.install_approval_threshold)} install approval "
                "threshold"
            )
        if loc.is_bucket:
            needed = size if replace else bucket_bytes_to_write(loc, repo_id, commit, files)
        else:
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


def _lfs_sha(lfs: Any) -> str | None:
    if not lfs:
        return None
    sha = lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)
    return str(sha) if sha else None


def install_change_plan(plan: InstallPlan) -> Plan:
    what = f"{plan.repo_id}@{plan.revision} ({plan.commit[:7]})"
    verb = "Reinstall" if plan.force else "Install"
    summary = f"{verb} {what} into {plan.location}, {format_size(plan.size)}"
    approval = (
        ApprovalPolicy.required(*plan.approval_reasons, role=Role.ADMIN)
        if plan.approval_reasons
        else ApprovalPolicy.none(f"{format_size(plan.size)} is below the approval threshold")
    )
    return Plan(
        target=f"weights:{plan.location}/{plan.repo_id}@{plan.commit}",
        summary=summary,
        params=plan.params(),
        approval=approval,
        diff=(
            f"{'~' if plan.force else '+'} {plan.repo_id}@{plan.commit[:12]} in {plan.location}: "
            f"{len(plan.files)} file(s), {format_size(plan.size)}",
        ),
        facts={
            "repo": plan.repo_id,
            "revision": plan.revision,
            "commit": plan.commit,
            "location": plan.location,
            "size": plan.size,
            "files": len(plan.files),
            "download": plan.to_download,
        },
    )
