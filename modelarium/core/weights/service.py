"""The weights service: one façade over records, inventory, planning and purges.

Installs run as jobs (:mod:`modelarium.core.weights.install`); installs and purges are changes
(:mod:`modelarium.core.weights.changes`): approved by policy, run in the daemon's workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelarium.config.units import format_size
from modelarium.core.approvals import ApprovalView
from modelarium.core.errors import NotFoundError
from modelarium.core.jobs import JobView
from modelarium.core.weights.policy import PurgePlan

if TYPE_CHECKING:
    pass

from modelarium.core.weights.inventory import Inventory
from modelarium.core.weights.planning import (
    AlreadyInstalled,
    InstallPlan,
    Planning,
    install_change_plan,
)
from modelarium.core.weights.publish import BUCKET_VERIFY_JOB
from modelarium.core.weights.purge import Purging, _kept, purge_change_plan, purge_params
from modelarium.core.weights.records import (
    DISK_USAGE_RULE,
    INSTALL_JOB,
    PURGE_JOB,
    STATUSES,
    VERIFY_JOB,
    WeightView,
    parse_model_ref,
    record_files,
    restore_times,
)

__all__ = [
    "DISK_USAGE_RULE",
    "INSTALL_JOB",
    "PURGE_JOB",
    "STATUSES",
    "VERIFY_JOB",
    "AlreadyInstalled",
    "InstallPlan",
    "InstallRequest",
    "WeightView",
    "WeightsService",
    "parse_model_ref",
    "purge_params",
    "record_files",
    "restore_times",
]


@dataclass(frozen=True)
class InstallRequest:
    plan: InstallPlan
    job: JobView | None = None
    approval: ApprovalView | None = None
    change: Any = None
    """The :class:`~modelarium.core.changes.Proposal` that recorded it."""


class WeightsService(Inventory, Planning, Purging):
    def request_install(
        self, plan: InstallPlan, user: str, channel: str | None = None
    ) -> InstallRequest:
        """Propose the install as a change (approval by policy, then a job)."""
        proposal = self._core.changes.propose(
            INSTALL_JOB, plan.params(), user, channel, plan=install_change_plan(plan)
        )
        return InstallRequest(plan, job=proposal.job, approval=proposal.approval, change=proposal)

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
                BUCKET_VERIFY_JOB if self.location(row.location).is_bucket else VERIFY_JOB,
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

    def propose_purge(self, plan: PurgePlan, user: str, channel: str | None = None) -> Any:
        """Propose removing what ``plan`` lists: a change, approved by policy, run as a job."""
        return self._core.changes.propose(
            PURGE_JOB,
            purge_params(plan),
            user,
            channel,
            plan=purge_change_plan(plan, self.settings.purge_approval_threshold),
            system=user == "daemon",
        )

    def enforce(self, actor: str = "daemon", *, above_watermark_only: bool = False) -> list[str]:
        """Apply the policies of every location: propose the purge each one needs (once; one
        that frees no more than the approval threshold runs without an approval)."""
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
            pending = self._core.changes.active(f"location:{plan.location}")
            if pending is not None:
                lines.append(
                    f"{plan.location}: purge change #{pending.id} is still "
                    f"{pending.status.replace('_', ' ')}"
                )
                continue
            proposal = self.propose_purge(plan, actor)
            what = f"purge of {format_size(plan.bytes)} (change #{proposal.change.id}"
            if proposal.approval is not None:
                lines.append(f"{plan.location}: proposed {what}, approval #{proposal.approval.id})")
            else:
                lines.append(f"{plan.location}: started {what}, job #{proposal.job.id})")
        return lines
