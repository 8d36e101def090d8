"""Catalog pull requests as changes: planned with the entry's diff, approved by policy, opened or
updated by a job in the daemon, the PR link on the change's living message.

``catalog.pr`` publishes a validated draft; ``catalog.status`` first drafts the status change
(deprecated, retired, or back to approved) and then publishes it the same way. The digest covers
the entry's git blob id, so an approval can only ever publish the bytes the approver saw: a draft
edited after the approval is refused by ``check`` and must be proposed again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelarium.core.catalog.entry import check_id, diff_lines
from modelarium.core.catalog.pulls import PublishResult, blob_sha, branch_for
from modelarium.core.catalog.template import kind_for
from modelarium.core.catalog.validate import Checks, validate_document
from modelarium.core.changes import (
    ApprovalPolicy,
    ChangeContext,
    ChangeKind,
    ChangeView,
    Failed,
    Inverse,
    NotRevertible,
    Plan,
)
from modelarium.core.errors import ConflictError, UsageError, ValidationError
from modelarium.core.rbac import Role

if TYPE_CHECKING:
    from modelarium.core.catalog.service import CatalogService
    from modelarium.core.kernel import Kernel

PR = "catalog.pr"
STATUS = "catalog.status"
STORAGE = "catalog.storage"
_WHY = {
    "new-model": "adds a model to the catalog (merging the PR approves it for the fleet)",
    "update": "changes an entry of the catalog",
    "deprecation": "deprecates or retires an entry of the catalog",
}


def _policy(kind: str, source: str) -> ApprovalPolicy:
    if source == "watch":
        return ApprovalPolicy.none("a Renovate-style update: reviewers decide by merging the PR")
    return ApprovalPolicy.required(f"opens a pull request that {_WHY[kind]}", role=Role.ADMIN)


def _publish(catalog: CatalogService, ctx: ChangeContext, source: str) -> None:
    """GitHub down or rate limited is retried by the job (those errors are retryable); a
    refusal (no push rights, a conflict) fails the change at once, with GitHub's reason."""
    p = ctx.params
    result = catalog.publish(p["entry_id"], p["_requested_by"], source=source)
    _report(ctx, result)


def _report(ctx: ChangeContext, result: PublishResult) -> None:
    if result.action == "left-alone":
        raise Failed(f"{result.summary()}: nothing was published")
    icon = {"opened": "🔀", "updated": "🔁", "unchanged": "✅"}[result.action]
    ctx.record(
        f"{icon} {result.summary()[0].upper()}{result.summary()[1:]}",
        pull=result.number,
        url=result.url,
        action=result.action,
        branch=result.branch,
        head=result.head_sha,
        github_calls=result.calls,
    )


class CatalogPrChange(ChangeKind):
    name = PR
    stages = ("publish",)
    role = Role.OPERATOR

    def __init__(self, catalog: CatalogService) -> None:
        self.catalog = catalog

    def describe(self, params: dict[str, Any]) -> str:
        return f"Catalog PR for {params.get('entry_id')}"

    def plan(self, params: dict[str, Any], user: str) -> Plan:
        entry_id = check_id(str(params.get("entry_id", "")))
        source = str(params.get("source") or "chat")
        pr = self.catalog.plan_pr(entry_id)
        verb = "Update" if pr.previous is not None else "Open"
        warnings = []
        if source != "watch" and pr.entry.storage_uri is None:
            warnings.append("storage_uri is not set: validation will fail in the PR's CI")
        return Plan(
            target=f"catalog:{entry_id}",
            summary=f"{verb} the catalog pull request for {entry_id} ({pr.kind})",
            params={
                "entry_id": entry_id,
                "source": source,
                "kind": pr.kind,
                "repo": self.catalog.repo,
                "branch": pr.branch,
                "blob_sha": pr.blob_sha,
                "pull": pr.previous.number if pr.previous else None,
                "model": f"{pr.entry.repo}@{pr.entry.commit}",
                "status": pr.entry.status,
            },
            approval=_policy(pr.kind, source),
            diff=pr.diff,
            facts={
                "entry": entry_id,
                "kind": pr.kind,
                "repo": self.catalog.repo,
                "branch": pr.branch,
                "pull": pr.previous.number if pr.previous else None,
                "model": f"{pr.entry.repo}@{pr.entry.commit}",
            },
            warnings=tuple(warnings),
        )

    def check(self, params: dict[str, Any]) -> None:
        pr = self.catalog.plan_pr(params["entry_id"])
        if pr.blob_sha != params["blob_sha"]:
            raise ConflictError(
                f"the draft of {params['entry_id']} changed since this was approved; "
                "propose the PR again"
            )

    def run_stage(self, ctx: ChangeContext, stage: str) -> None:
        _publish(self.catalog, ctx, str(ctx.params.get("source") or "chat"))

    def revert(self, change: ChangeView) -> Any:
        url = change.result.get("url") or "the pull request"
        raise NotRevertible(
            f"close {url} on GitHub, or propose the previous state with `catalog status`"
        )


class CatalogStatusChange(ChangeKind):
    name = STATUS
    stages = ("draft", "publish")
    role = Role.OPERATOR

    def __init__(self, catalog: CatalogService) -> None:
        self.catalog = catalog

    def describe(self, params: dict[str, Any]) -> str:
        return f"Mark {params.get('entry_id')} {params.get('status')}"

    def plan(self, params: dict[str, Any], user: str) -> Plan:
        entry_id = check_id(str(params.get("entry_id", "")))
        status, reason = str(params.get("status", "")), str(params.get("reason") or "")
        entry, before = self.catalog.status_entry(entry_id, status, reason)
        result = validate_document(entry.to_json(), Checks(), f"{entry_id}.json")
        if not result.ok:
            raise ValidationError(f"{entry_id}: {result.errors[0]}")
        kind = kind_for(entry, before)

        return Plan(
            target=f"catalog:{entry_id}",
            summary=f"Mark {entry_id} {status} through a catalog pull request",
            params={
                "entry_id": entry_id,
                "status": status,
                "reason": reason.strip(),
                "kind": kind,
                "repo": self.catalog.repo,
                "branch": branch_for(entry_id),
                "blob_sha": blob_sha(entry.dumps().encode()),
                "previous": before.status if before is not None else None,
            },
            approval=_policy(kind, "chat"),
            diff=diff_lines(before, entry),
            facts={"entry": entry_id, "status": status, "kind": kind, "reason": reason.strip()},
        )

    def check(self, params: dict[str, Any]) -> None:
        entry, _ = self.catalog.status_entry(params["entry_id"], params["status"], params["reason"])
        if blob_sha(entry.dumps().encode()) != params["blob_sha"]:
            raise ConflictError(
                f"{params['entry_id']} changed since this was approved; propose it again"
            )

    def run_stage(self, ctx: ChangeContext, stage: str) -> None:
        p = ctx.params
        if stage == "draft":
            view = self.catalog.view(p["entry_id"])
            current = view.draft
            if current is not None and blob_sha(current.dumps().encode()) == p["blob_sha"]:
                return  # drafted already (a resumed job)
            try:
                self.catalog.set_status(p["entry_id"], p["status"], p["reason"], p["_requested_by"])
            except (UsageError, ConflictError, ValidationError) as exc:
                raise Failed(str(exc)) from None
            return
        _publish(self.catalog, ctx, "chat")

    def revert(self, change: ChangeView) -> Inverse:
        p = change.params
        previous = p.get("previous")
        if previous not in ("approved", "deprecated", "retired"):
            raise NotRevertible(f"{p['entry_id']} had no status in Git to go back to")
        return Inverse(
            STATUS,
            {
                "entry_id": p["entry_id"],
                "status": previous,
                "reason": f"reverts change #{change.id} ({p['status']}: {p['reason']})",
            },
        )


class CatalogStorageChange(ChangeKind):
    """An entry's ``storage_uri`` moved to where its weights were published (proposed by
    ``publish`` through the ``catalog_storage`` port): drafted, validated (the weights there are
    installed and verified), then published as the entry's PR."""

    name = STORAGE
    stages = ("draft", "publish")
    role = Role.OPERATOR

    def __init__(self, catalog: CatalogService) -> None:
        self.catalog = catalog

    def describe(self, params: dict[str, Any]) -> str:
        return f"Point {params.get('entry_id')} at {params.get('storage_uri')}"

    def plan(self, params: dict[str, Any], user: str) -> Plan:
        entry_id = check_id(str(params.get("entry_id", "")))
        uri, reason = str(params.get("storage_uri", "")), str(params.get("reason") or "")
        entry, before = self.catalog.storage_entry(entry_id, uri)
        kind = kind_for(entry, before)
        return Plan(
            target=f"catalog:{entry_id}",
            summary=f"Point {entry_id} at {uri} through a catalog pull request",
            params={
                "entry_id": entry_id,
                "storage_uri": uri,
                "reason": reason.strip() or f"weights published to {uri}",
                "kind": kind,
                "repo": self.catalog.repo,
                "branch": branch_for(entry_id),
                "blob_sha": blob_sha(entry.dumps().encode()),
                "previous": before.storage_uri if before is not None else None,
            },
            approval=_policy(kind, "chat"),
            diff=diff_lines(before, entry),
            facts={"entry": entry_id, "storage_uri": uri, "kind": kind},
        )

    def check(self, params: dict[str, Any]) -> None:
        entry, _ = self.catalog.storage_entry(params["entry_id"], params["storage_uri"])
        if blob_sha(entry.dumps().encode()) != params["blob_sha"]:
            raise ConflictError(
                f"{params['entry_id']} changed since this was approved; propose it again"
            )

    def run_stage(self, ctx: ChangeContext, stage: str) -> None:
        p = ctx.params
        if stage == "draft":
            current = self.catalog.view(p["entry_id"]).draft
            if current is not None and blob_sha(current.dumps().encode()) == p["blob_sha"]:
                return  # drafted already (a resumed job)
            try:
                self.catalog.set_storage(
                    p["entry_id"], p["storage_uri"], p["reason"], p["_requested_by"]
                )
            except (UsageError, ConflictError, ValidationError) as exc:
                raise Failed(str(exc)) from None
            return
        _publish(self.catalog, ctx, "chat")

    def revert(self, change: ChangeView) -> Inverse:
        p = change.params
        previous = p.get("previous")
        if not previous:
            raise NotRevertible(f"{p['entry_id']} had no storage_uri in Git to go back to")
        return Inverse(
            STORAGE,
            {
                "entry_id": p["entry_id"],
                "storage_uri": previous,
                "reason": f"reverts change #{change.id}",
            },
        )


def register(kernel: Kernel, catalog: CatalogService) -> None:
    kernel.changes.register(CatalogPrChange(catalog))
    kernel.changes.register(CatalogStatusChange(catalog))
    kernel.changes.register(CatalogStorageChange(catalog))
