"""Role changes that need an approval: granting admin goes through the two-person rule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelarium.core.approvals import ApprovalAction, ApprovalOutcome
from modelarium.core.rbac.roles import Role

if TYPE_CHECKING:
    from modelarium.core.app import Core

GRANT_ACTION = "role.grant"


def register(core: Core) -> None:
    def execute(params: dict[str, Any], outcome: ApprovalOutcome) -> str:
        role = Role.parse(params["role"])
        core.rbac.grant(params["user"], role, granted_by=outcome.requester)
        return f"<@{params['user']}> is now {role}"

    core.approvals.register(
        ApprovalAction(
            name=GRANT_ACTION,
            describe=lambda p: f"Grant the {p['role']} role to <@{p['user']}>",
            execute=execute,
            approver_role=Role.ADMIN,
        )
    )
