"""Role grants and revocations as changes: history, a way back, and the two-person rule for
anything that makes or unmakes an admin."""

from __future__ import annotations

from typing import Any

from modelarium.core.changes import (
    ApprovalPolicy,
    ChangeContext,
    ChangeKind,
    ChangeView,
    Inverse,
    Plan,
)
from modelarium.core.errors import ConflictError, NotFoundError
from modelarium.core.rbac.roles import Role
from modelarium.core.rbac.service import RbacService

GRANT = "role.grant"
REVOKE = "role.revoke"


class _RoleChange(ChangeKind):
    role = Role.ADMIN
    inline = True

    def __init__(self, rbac: RbacService, self_approval: frozenset[str] = frozenset()) -> None:
        self.rbac = rbac
        self.self_approval = self_approval

    def _guard(self, user: str) -> None:
        if user in self.rbac.bootstrap_admins:
            raise ConflictError(
                f"<@{user}> is an admin through MODELARIUM_ADMINS; change that setting instead"
            )

    def _policy(self, proposer: str, why: str) -> ApprovalPolicy:
        """Admin changes need another admin; say so now if there is none (it would never end)."""
        others = [
            a.user_id
            for a in self.rbac.assignments()
            if a.role >= Role.ADMIN and a.user_id != proposer
        ]
        if not others and self.name not in self.self_approval:
            raise ConflictError(
                f"{why} needs another admin's approval and you are the only admin; "
                "add a second admin to MODELARIUM_ADMINS first"
            )
        return ApprovalPolicy.required(why + " (two-person rule)", role=Role.ADMIN)

    def check(self, params: dict[str, Any]) -> None:
        now = self.rbac.granted_role(params["user"])
        if (str(now) if now else None) != params.get("previous"):
            raise ConflictError(
                f"<@{params['user']}>'s granted role changed since this was proposed "
                f"(now {now or 'none'}); propose it again"
            )

    def _after(self, user: str) -> str:
        return f"<@{user}> is now {self.rbac.role_of(user)}"


class RoleGrant(_RoleChange):
    name = GRANT

    def describe(self, params: dict[str, Any]) -> str:
        return f"Grant the {params['role']} role to <@{params['user']}>"

    def plan(self, params: dict[str, Any], user: str) -> Plan:
        target, role = str(params["user"]), Role.parse(str(params["role"]))
        self._guard(target)
        previous = self.rbac.granted_role(target)
        if previous == role:
            raise ConflictError(f"<@{target}> already has the {role} role; nothing to do")
        approval = (
            self._policy(user, f"granting {'admin' if role == Role.ADMIN else role}")
            if Role.ADMIN in (role, previous)
            else ApprovalPolicy.none(f"{role} is below admin")
        )
        before = str(previous) if previous else f"{self.rbac.default_role} (default)"
        return Plan(
            target=f"role:{target}",
            summary=self.describe({"user": target, "role": str(role)}),
            params={
                "user": target,
                "role": str(role),
                "previous": str(previous) if previous else None,
            },
            approval=approval,
            diff=(f"- {target}: {before}", f"+ {target}: {role}"),
        )

    def run_stage(self, ctx: ChangeContext, stage: str) -> None:
        p = ctx.params
        self.rbac.grant(p["user"], Role.parse(p["role"]), granted_by=p["_requested_by"])
        ctx.record(f"✅ {self._after(p['user'])}.")

    def revert(self, change: ChangeView) -> Inverse:
        p = change.params
        if p.get("previous"):
            return Inverse(GRANT, {"user": p["user"], "role": p["previous"]})
        return Inverse(REVOKE, {"user": p["user"]})


class RoleRevoke(_RoleChange):
    name = REVOKE

    def describe(self, params: dict[str, Any]) -> str:
        return f"Revoke the {params.get('previous') or 'granted'} role of <@{params['user']}>"

    def plan(self, params: dict[str, Any], user: str) -> Plan:
        target = str(params["user"])
        self._guard(target)
        previous = self.rbac.granted_role(target)
        if previous is None:
            raise NotFoundError(f"<@{target}> has no granted role to revoke")
        approval = (
            self._policy(user, "revoking admin")
            if previous == Role.ADMIN
            else ApprovalPolicy.none(f"{previous} is below admin")
        )
        return Plan(
            target=f"role:{target}",
            summary=self.describe({"user": target, "previous": str(previous)}),
            params={"user": target, "previous": str(previous)},
            approval=approval,
            diff=(f"- {target}: {previous}", f"+ {target}: {self.rbac.default_role} (default)"),
        )

    def run_stage(self, ctx: ChangeContext, stage: str) -> None:
        p = ctx.params
        self.rbac.revoke(p["user"])
        ctx.record(f"Revoked {p['previous']} from <@{p['user']}>; {self._after(p['user'])}.")

    def revert(self, change: ChangeView) -> Inverse:
        return Inverse(GRANT, {"user": change.params["user"], "role": change.params["previous"]})


def register(kernel: Any, service: Any, ports: Any) -> None:
    allowed = frozenset(kernel.settings.self_approval_actions)
    kernel.changes.register(RoleGrant(kernel.rbac, allowed))
    kernel.changes.register(RoleRevoke(kernel.rbac, allowed))
