"""What the weights capability registers on the core: job kinds, approval actions, alert rule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelarium.config.units import format_size
from modelarium.core.alerts import AlertRule
from modelarium.core.approvals import ApprovalAction, ApprovalOutcome
from modelarium.core.jobs import JobKind
from modelarium.core.rbac import Role
from modelarium.core.weights.install import (
    INSTALL_STAGES,
    VERIFY_STAGES,
    InstallPipeline,
    render_job_card,
)
from modelarium.core.weights.service import (
    DISK_USAGE_RULE,
    INSTALL_ACTION,
    INSTALL_JOB,
    PURGE_ACTION,
    VERIFY_JOB,
)

if TYPE_CHECKING:
    from modelarium.core.app import Core


def _describe_install(params: dict[str, Any]) -> str:
    commit = str(params.get("commit") or "")[:7]
    text = (
        f"Install {params['repo']}@{params.get('revision') or 'main'} ({commit}) "
        f"into {params['location']}"
    )
    if params.get("size") is not None:
        text += f", {format_size(float(params['size']))}"
    if params.get("force"):
        text += ", replacing the installed copy"
    return text


def _describe_verify(params: dict[str, Any]) -> str:
    return f"Verify {params['repo']}@{str(params.get('commit') or '')[:7]} in {params['location']}"


def _describe_purge(params: dict[str, Any]) -> str:
    items = params.get("items") or []
    names = ", ".join(f"{i['repo']}@{str(i['commit'])[:7]}" for i in items[:5])
    more = f" and {len(items) - 5} more" if len(items) > 5 else ""
    return (
        f"Purge {len(items)} model revision(s) from {params['location']} "
        f"({format_size(float(params.get('bytes') or 0))}): {names}{more}"
    )


def register(core: Core) -> None:
    pipeline = InstallPipeline(core)
    core.jobs.register(
        JobKind(
            INSTALL_JOB,
            INSTALL_STAGES,
            pipeline.run_install,
            _describe_install,
            on_cancel=pipeline.on_cancel,
            render=render_job_card,
        )
    )
    core.jobs.register(
        JobKind(
            VERIFY_JOB, VERIFY_STAGES, pipeline.run_verify, _describe_verify, render=render_job_card
        )
    )

    def install(params: dict[str, Any], outcome: ApprovalOutcome) -> str:
        job = core.weights.start_install(params, outcome.requester)
        return f"queued install job #{job.id}"

    def purge(params: dict[str, Any], outcome: ApprovalOutcome) -> str:
        result = core.weights.purge(
            params["location"],
            params.get("items") or [],
            outcome.requester,
            reason=f"{params.get('policy')} purge approved by {', '.join(outcome.approvers)}",
        )
        return result.summary()

    core.approvals.register(
        ApprovalAction(INSTALL_ACTION, _describe_install, install, approver_role=Role.ADMIN)
    )
    core.approvals.register(
        ApprovalAction(PURGE_ACTION, _describe_purge, purge, approver_role=Role.ADMIN)
    )
    # One rule, one instance per location (``disk_usage{location=...}``), as the alert commands
    # expect. Each observation carries its location's high watermark as the threshold, so the
    # alert fires on the same line that triggers the purge; the proposal with approval buttons
    # is posted beside the alert.
    core.alerts.register(
        AlertRule(
            name=DISK_USAGE_RULE,
            summary="Weights location {location} is {value:.0%} full",
            op=">=",
            threshold=0.85,  # overridden per location by its high_watermark
            severity="warning",
            kind="storage",
        )
    )
