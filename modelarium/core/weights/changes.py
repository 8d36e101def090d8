"""Installs and purges as changes: planned with their size, approved by policy, run as jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelarium.config.units import format_size
from modelarium.core.changes import (
    ChangeContext,
    ChangeKind,
    ChangeView,
    Failed,
    Inverse,
    NotRevertible,
    Plan,
)
from modelarium.core.errors import ConflictError, UsageError
from modelarium.core.jobs import JobView
from modelarium.core.weights.install import INSTALL_STAGES, InstallPipeline
from modelarium.core.weights.planning import install_change_plan
from modelarium.core.weights.policy import POLICIES
from modelarium.core.weights.purge import purge_change_plan
from modelarium.core.weights.records import short_ref
from modelarium.core.weights.service import (
    INSTALL_JOB,
    PURGE_JOB,
    WeightsService,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class InstallChange(ChangeKind):
    name = INSTALL_JOB
    stages = INSTALL_STAGES
    stage_labels = {"download": "download + verify"}

    def __init__(self, weights: WeightsService, pipeline: InstallPipeline) -> None:
        self.weights = weights
        self.pipeline = pipeline

    def describe(self, params: dict[str, Any]) -> str:
        return f"Install {short_ref(params['repo'], params['commit'])} into {params['location']}"

    def plan(self, params: dict[str, Any], user: str) -> Plan:
        if "commit" in params and "files" in params:  # a revert or a re-proposal: exact commit
            repo, revision = params["repo"], params["commit"]
        else:
            repo, revision = params["repo"], params.get("revision")
        plan = self.weights.plan_install(
            repo, revision, params.get("location"), force=bool(params.get("force"))
        )
        return install_change_plan(plan)

    def start(self, session: Session, change: ChangeView, job: JobView) -> dict[str, Any]:
        record = self.weights.open_record(session, change.params, change.requested_by)
        record.job_id = job.id
        return {"weight_id": record.id}

    def run_stage(self, ctx: ChangeContext, stage: str) -> None:
        self.pipeline.run_install(ctx, stage)
        if stage == "activate":
            p = ctx.params
            path = ctx.state.get("path")
            uri = ctx.state.get("storage_uri")
            ctx.record(
                f"✅ Installed {short_ref(p['repo'], p['commit'])} in `{p['location']}`"
                + (f" (`{path}`)" if path else ""),
                path=path,
                **({"storage_uri": uri} if uri else {}),
            )

    def on_cancel(self, ctx: ChangeContext) -> None:
        if "weight_id" in ctx.params:
            self.pipeline.on_cancel(ctx)

    def revert(self, change: ChangeView) -> Inverse:
        p = change.params
        if p.get("force"):
            raise NotRevertible("a reinstall replaced verified bytes with the same bytes")
        return Inverse(
            PURGE_JOB, {"location": p["location"], "select": [f"{p['repo']}@{p['commit']}"]}
        )


class PurgeChange(ChangeKind):
    """Removes planned revisions one by one; a killed job resumes with the next one."""

    name = PURGE_JOB
    stages = ("remove",)

    def __init__(self, weights: WeightsService) -> None:
        self.weights = weights

    def describe(self, params: dict[str, Any]) -> str:
        items = params.get("items") or []
        return f"Purge {len(items)} revision(s) from {params['location']}"

    def plan(self, params: dict[str, Any], user: str) -> Plan:
        if params.get("items") is not None:  # already planned (the alert's proposal)
            purge = self.weights.purge_plan_from_params(params)
        else:
            policy = params.get("policy") or "all"
            if policy not in (*POLICIES, "all"):
                raise UsageError(f"no purge policy {policy!r}; policies: {', '.join(POLICIES)}")
            select = params.get("select")
            purge = self.weights.plan_purge_one(params.get("location"), policy, select=select)
        if not purge.items:
            raise ConflictError(f"nothing to purge in {purge.location}")
        return purge_change_plan(purge, self.weights.settings.purge_approval_threshold)

    def run_stage(self, ctx: ChangeContext, stage: str) -> None:
        p = ctx.params
        items = list(p.get("items") or [])
        done: dict[str, str] = dict(ctx.state.get("done") or {})
        for index, item in enumerate(items):
            key = str(item["id"])
            if key in done:
                continue
            ctx.check_cancelled()
            label = short_ref(item["repo"], item["commit"])
            ctx.progress(index, len(items), message=f"removing {label}", force=True)
            ctx.checkpoint(current=item["id"])
            outcome = self.weights.remove_one(
                p["location"],
                item,
                p["_requested_by"],
                reason=f"{p.get('policy') or 'selected'} purge, change #{p['change_id']}",
                resuming=True,
            )
            done[key] = outcome
            ctx.checkpoint(done=done, current=None)
        removed = [i for i in items if done.get(str(i["id"])) == "removed"]
        skipped = [(i, done.get(str(i["id"]), "?")) for i in items if i not in removed]
        freed = sum(int(i.get("size") or 0) for i in removed)
        lines = [
            f"🧹 Removed {len(removed)} revision(s) from `{p['location']}`, "
            f"freed {format_size(freed)}:"
        ]
        lines += [
            f"• {short_ref(i['repo'], i['commit'])} — reinstall: "
            f"`install {i['repo']}@{i['commit']}`"
            for i in removed
        ]
        lines += [f"• kept {short_ref(i['repo'], i['commit'])}: {why}" for i, why in skipped]
        ctx.record(*lines, removed=[f"{i['repo']}@{i['commit']}" for i in removed], freed=freed)
        if not removed and items:
            kept = "; ".join(f"{short_ref(i['repo'], i['commit'])} {why}" for i, why in skipped)
            raise Failed(f"nothing was removed: {kept}")

    def revert(self, change: ChangeView) -> Inverse:
        removed = change.result.get("removed") or []
        hint = "; ".join(f"`install {r}`" for r in removed[:5]) or "nothing was removed"
        raise NotRevertible(f"deleted weights cannot be restored; reinstall them: {hint}")
