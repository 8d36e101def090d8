"""Group changes: traffic (and a new challenger), promotion, rollback and deletion.

Each is planned against the group's revision (an approval binds it: a group that moved since
refuses to run), approved by policy (a promotion needs ``group_promote_approvals`` people, two
by default, and shows the evidence on its card), and run as a job. For ``split`` groups the
traffic lives in Modelarium (``group pick`` reads it), so the stage is a database write plus, for
a promotion, a readiness check of the new champion's endpoint.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
from modelarium.core.errors import ConflictError, ModelariumError, UsageError
from modelarium.core.groups.service import GroupService
from modelarium.core.groups.views import GroupView, check_member, check_traffic
from modelarium.core.rbac import Role

if TYPE_CHECKING:
    from modelarium.core.kernel import Kernel

TRAFFIC = "group.traffic"
PROMOTE = "group.promote"
ROLLBACK = "group.rollback"
DELETE = "group.delete"


def target(name: str) -> str:
    return f"group:{name}"


def _members(group: GroupView) -> list[dict[str, Any]]:
    return [m.to_json() for m in group.members]


def diff_members(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> tuple[str, ...]:
    old = {m["name"]: m for m in before}
    lines = []
    for m in after:
        was = old.get(m["name"])
        if was is None:
            lines.append(f"+ {m['name']}: {m['role']}, {m['traffic']}%")
        elif (was["role"], was["traffic"]) != (m["role"], m["traffic"]):
            lines.append(
                f"~ {m['name']}: {was['role']} {was['traffic']}% -> {m['role']} {m['traffic']}%"
            )
    return tuple(lines) or ("(no change)",)


def _approval(count: int, why: str) -> ApprovalPolicy:
    if count <= 0:
        return ApprovalPolicy.none(
            "group changes need no approval (MODELARIUM_GROUP_CHANGE_APPROVALS=0)"
        )
    return ApprovalPolicy.required(why, role=Role.OPERATOR, count=count)


def apply_members(
    service: GroupService, p: dict[str, Any], members: list[dict[str, Any]], revision: int,
    status: str, action: str,
) -> GroupView:  # fmt: skip
    """Set a group's members for a change's job (a refusal fails the change)."""
    try:
        return service.apply_members(
            p["group"], members, revision=revision, status=status, action=action,
            user=p.get("_requested_by"), change_id=p["change_id"],
            detail={"before": p.get("before")},
        )  # fmt: skip
    except ModelariumError as exc:
        raise Failed(str(exc)) from None


class _Kind(ChangeKind):
    role = Role.OPERATOR
    inline = True
    status = "running"
    action = "traffic"

    def __init__(self, kernel: Kernel, service: GroupService) -> None:
        self.kernel = kernel
        self.service = service

    def check(self, params: dict[str, Any]) -> None:
        group = self.service.get(params["group"])
        if group.revision != params["revision"]:
            raise ConflictError(
                f"group {group.name} changed since this was approved; propose it again"
            )

    def run_stage(self, ctx: ChangeContext, stage: str) -> None:
        p = ctx.params
        self.ready(p)
        try:
            group = self.service.apply_members(
                p["group"],
                p["members"],
                revision=p["revision"],
                status=p.get("status", self.status),
                action=p.get("action", self.action),
                user=p.get("_requested_by"),
                change_id=p["change_id"],
                detail={"before": p.get("before")},
            )
        except ModelariumError as exc:
            raise Failed(str(exc)) from None
        shares = ", ".join(f"{m.name} {m.role} {m.traffic}%" for m in group.active)
        ctx.record(f"✅ {p['group']}: {shares}", members=_members(group))
        self.catalog(ctx, p)

    def catalog(self, ctx: ChangeContext, p: dict[str, Any]) -> None:
        """A finished promotion or rollback goes into the catalog's history of its models."""
        for line in self.service.record_in_catalog(
            p["group"], p.get("before") or [], p.get("action", self.action),
            user=p.get("_requested_by"), change_id=p["change_id"],
        ):  # fmt: skip
            ctx.record(line)

    def ready(self, params: dict[str, Any]) -> None:
        """Before traffic moves to a member: its endpoint is not down."""
        for spec in params["members"]:
            if spec["traffic"] > 0 and spec["role"] != "retired":
                endpoint = spec["name"].split("/", 1)[0]
                try:
                    status = self.kernel_status(endpoint, params)
                except ModelariumError as exc:
                    raise Failed(f"{spec['name']}: {exc}") from None
                if status == "down":
                    raise Failed(f"{spec['name']}: its endpoint is down; traffic not moved")

    def kernel_status(self, endpoint: str, params: dict[str, Any]) -> str:
        user = params.get("_requested_by") or "system"
        return self.service.ports.endpoint_status(endpoint, user) if user != "system" else "unknown"

    def revert(self, change: ChangeView) -> Inverse:
        before = change.params.get("before")
        if not before:
            raise NotRevertible("nothing was recorded to go back to")
        params = {"group": change.params["group"], "members": before, "action": "revert"}
        return Inverse(TRAFFIC, params)

    def describe(self, params: dict[str, Any]) -> str:
        return f"{self.action.capitalize()} group {params.get('group')}"


class TrafficChange(_Kind):
    """``group traffic <name> <P>``, ``group challenge`` (a new challenger) and the guard's
    automatic cut to 0% (``guard: true``: no approval, it only takes traffic away)."""

    name = TRAFFIC

    def plan(self, params: dict[str, Any], user: str) -> Plan:
        group = self.service.get(params["group"])
        if group.strategy != "split":
            raise UsageError("traffic changes of canary groups are not built yet")
        before = _members(group)
        if "members" in params:  # resolved already (a revert)
            after = [dict(m) for m in params["members"]]
            summary = f"Restore the traffic of group {group.name}"
            action = params.get("action", "revert")
        else:
            after, summary, action = self._resolve(group, params, user)
        total = sum(m["traffic"] for m in after if m["role"] != "retired")
        if total != 100:
            raise UsageError(f"the shares would add up to {total}%, not 100%")
        if params.get("guard"):
            approval = ApprovalPolicy.none("the guard only takes traffic away from a challenger")
        else:
            approval = _approval(self.kernel.settings.group_change_approvals,
                                 "group traffic changes need approval by policy")  # fmt: skip
        return Plan(
            target=target(group.name),
            summary=summary,
            params={
                "group": group.name,
                "revision": group.revision,
                "members": after,
                "before": before,
                "was": group.status,
                "status": "running",
                "action": action,
                **({"guard": True, "why": params.get("why")} if params.get("guard") else {}),
            },
            approval=approval,
            diff=diff_members(before, after),
        )

    def _resolve(
        self, group: GroupView, params: dict[str, Any], user: str
    ) -> tuple[list[dict[str, Any]], str, str]:
        after = _members(group)
        champion = next((m for m in after if m["role"] == "champion"), None)
        if champion is None:
            raise ConflictError(f"group {group.name} has no champion")
        share = check_traffic(params["traffic"])
        if params.get("member"):  # a new challenger
            name = check_member(params["member"])
            self.service._check_endpoint(name, user)
            existing = next((m for m in after if m["name"] == name), None)
            if existing is not None and existing["role"] in ("champion", "challenger"):
                raise ConflictError(f"{name} is already the group's {existing['role']}")
            if any(m["role"] == "challenger" for m in after):
                raise ConflictError(
                    f"group {group.name} has a challenger already; promote it or roll it back "
                    "first (one challenger at a time)"
                )
            if existing is None:
                existing = {"name": name}
                after.append(existing)
            existing.update(role="challenger", traffic=share)
            champion["traffic"] = 100 - share
            return (
                after,
                f"Challenge {champion['name']} with {name} on {share}% in group {group.name}",
                "challenge",
            )
        challengers = [m for m in after if m["role"] == "challenger"]
        if not challengers:
            raise ConflictError(
                f"group {group.name} has no challenger; add one with `group challenge`"
            )
        challengers[0]["traffic"] = share
        champion["traffic"] = 100 - share
        verb = "Cut" if params.get("guard") else "Set"
        return (
            after,
            f"{verb} challenger {challengers[0]['name']} of group {group.name} to {share}%",
            "guard" if params.get("guard") else "traffic",
        )


def check_steps(text: Any, current: int) -> list[int]:
    """``10,25,50,100`` -> rising shares above the challenger's current one, ending at 100."""
    try:
        steps = [int(str(s).strip().rstrip("%")) for s in str(text).split(",") if str(s).strip()]
    except ValueError:
        raise UsageError(f"--steps is a list of percentages like 25,50,100, not {text!r}") from None
    if not steps or steps[-1] != 100:
        steps.append(100)
    if any(b <= a for a, b in itertools.pairwise(steps)) or steps[0] <= current:
        raise UsageError(
            f"--steps must rise above the challenger's current {current}% and end at 100"
        )
    if len(steps) > 10:
        raise UsageError("at most 10 steps")
    return steps


def serve_step(
    service: GroupService,
    ctx: ChangeContext,
    steps: list[int],
    index: int,
    revision: int,
    interval: float,
    restore: Callable[[], None] | None = None,
) -> int:
    """One step of a progressive promotion (split or canary): the challenger's share set, the
    interval served, then judged over it. A rule breached with significance puts the traffic
    back where it was (``restore`` first: a canary's deployment) and fails the change.
    Returns the group's revision."""
    p = ctx.params
    share = steps[index]
    challenger = next(m["name"] for m in p["before"] if m["role"] == "challenger")
    champion = next(m["name"] for m in p["before"] if m["role"] == "champion")
    members = [
        {**m, "traffic": share if m["name"] == challenger else
         (100 - share if m["name"] == champion else 0)}
        for m in p["before"]
    ]  # fmt: skip
    revision = apply_members(
        service, p, members, revision, "running", f"promote step {share}%"
    ).revision
    ctx.checkpoint(step=index, revision=revision)
    ctx.progress(index + 1, len(steps), message=f"{share}%: analysis in {interval:g}s",
                 force=True)  # fmt: skip
    deadline = time.monotonic() + interval
    while time.monotonic() < deadline:
        ctx.check_cancelled()
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    comparison = service.compare(p["group"], since=interval)
    versus = next((v for v in comparison.versus if v.challenger == challenger), None)
    if versus is not None and versus.breached:
        why = "; ".join(f"{r.rule}: {r.detail}" for r in versus.breached)
        if restore is not None:
            restore()
        apply_members(service, p, p["before"], revision, "running", "promote aborted")
        ctx.record(f"🛑 step {share}%: {why}; traffic back to where it was",
                   words=versus.words)  # fmt: skip
        raise Failed(f"step {share}%: a rule was breached ({why}); traffic restored")
    ctx.checkpoint(step=index + 1, revision=revision)
    return revision


class PromoteChange(_Kind):
    """Promotion at once, or in steps (``--steps 25,50,100``): each step serves for
    ``MODELARIUM_GROUP_STEP_INTERVAL``, then the analysis over that interval decides: a rule
    breached with significance sends the traffic back to where it was and fails the change."""

    name = PROMOTE
    status = "promoted"
    action = "promote"
    inline = False  # steps wait between them: always the daemon's work

    def run_stage(self, ctx: ChangeContext, stage: str) -> None:
        p = ctx.params
        steps = [int(s) for s in p.get("steps") or []]
        if not steps:
            super().run_stage(ctx, stage)
            return
        interval = float(self.kernel.settings.group_step_interval)
        revision = int(ctx.state.get("revision", p["revision"]))
        for index in range(int(ctx.state.get("step", 0)), len(steps)):
            if steps[index] >= 100:
                self.ready(p)
                group = apply_members(
                    self.service, p, p["members"], revision, "promoted", "promote"
                )
                shares = ", ".join(f"{m.name} {m.role} {m.traffic}%" for m in group.active)
                ctx.record(f"✅ {p['group']}: {shares} (after steps {steps})")
                self.catalog(ctx, p)
                return
            revision = serve_step(self.service, ctx, steps, index, revision, interval)

    def plan(self, params: dict[str, Any], user: str) -> Plan:
        group = self.service.get(params["group"])
        challengers = group.challengers
        if not challengers:
            raise ConflictError(f"group {group.name} has no challenger to promote")
        challenger = challengers[0]
        steps = check_steps(params["steps"], challenger.traffic) if params.get("steps") else None
        champion = group.champion
        comparison = self.service.compare(group.name)
        versus = next((v for v in comparison.versus if v.challenger == challenger.name), None)
        judged = [m for m in comparison.members if m.role in ("champion", "challenger")]
        evidence = [
            f"{m.member} ({m.role}): {m.requests:,} requests, "
            f"{(m.error_rate or 0) * 100:.2f}% errors, p95 "
            + (f"{m.p95:.0f} ms" if m.p95 is not None else "—")
            for m in judged
        ]
        minimum = group.rules.min_requests
        short = [m for m in judged if m.requests < minimum]
        if short and not params.get("force"):
            need = "; ".join(
                f"{m.member} has {m.requests:,}, needs {minimum - m.requests:,} more" for m in short
            )
            raise ConflictError(
                f"too few requests to promote: every member needs {group.rules.min_requests:,} "
                f"({need}); send traffic or run `group eval {group.name}`"
            )
        after = []
        for m in group.members:
            if m.name == challenger.name:
                after.append({"name": m.name, "role": "champion", "traffic": 100})
            else:
                after.append({"name": m.name, "role": "retired", "traffic": 0})
        warnings = []
        if versus is not None:
            evidence.append("verdict: " + versus.verdict + " — " + versus.words)
            evidence += [
                ("✓ " if r.passed else "✗ ") + f"{r.rule}: {r.detail}" for r in versus.rules
            ]
            warnings = [f"rule breached: {r.rule} ({r.detail})" for r in versus.breached]
        count = self.kernel.settings.group_promote_approvals
        return Plan(
            target=target(group.name),
            summary=f"Promote {challenger.name} to champion of group {group.name}"
            + (f" (replacing {champion.name})" if champion else "")
            + (" in steps " + " → ".join(f"{s}%" for s in steps) if steps else ""),
            params={
                "group": group.name,
                "revision": group.revision,
                "members": after,
                "before": _members(group),
                "was": group.status,
                "status": "promoted",
                "action": "promote",
                **({"steps": steps} if steps else {}),
            },
            approval=_approval(count, f"a promotion needs {count} approver(s)"),
            diff=(*diff_members(_members(group), after), "— evidence —", *evidence),
            facts={"comparison": comparison.to_json()},
            warnings=tuple(warnings),
        )


class RollbackChange(_Kind):
    name = ROLLBACK
    status = "rolled_back"
    action = "rollback"

    def plan(self, params: dict[str, Any], user: str) -> Plan:
        group = self.service.get(params["group"])
        if not group.challengers:
            raise ConflictError(f"group {group.name} has no challenger to roll back")
        after = []
        for m in group.members:
            if m.role == "champion":
                after.append({"name": m.name, "role": "champion", "traffic": 100})
            else:
                after.append({"name": m.name, "role": "retired", "traffic": 0})
        return Plan(
            target=target(group.name),
            summary=f"Roll back group {group.name}: all traffic to its champion",
            params={
                "group": group.name,
                "revision": group.revision,
                "members": after,
                "before": _members(group),
                "was": group.status,
                "status": "rolled_back",
                "action": "rollback",
            },
            approval=_approval(
                self.kernel.settings.group_change_approvals,
                "group rollbacks need approval by policy",
            ),
            diff=diff_members(_members(group), after),
        )


class DeleteChange(_Kind):
    name = DELETE
    action = "delete"

    def plan(self, params: dict[str, Any], user: str) -> Plan:
        group = self.service.get(params["group"])
        count = max(1, self.kernel.settings.group_change_approvals)
        return Plan(
            target=target(group.name),
            summary=f"Delete group {group.name} and drop its inference records",
            params={"group": group.name, "revision": group.revision, "table": group.table_name},
            approval=ApprovalPolicy.required(
                "deleting a group drops its inference records", role=Role.OPERATOR, count=count
            ),
            diff=(
                f"- group {group.name} ({len(group.members)} member(s))",
                f"- table {group.table_name}",
            ),
            warnings=(
                (
                    f"{group.deployment} keeps its logger: it still splits traffic between "
                    "revisions (canaryTrafficPercent), so a new spec would not reach the one "
                    "that serves; its events will be refused (401, counted as auth)",
                )
                if group.strategy == "canary"
                else ()
            ),
        )

    def check(self, params: dict[str, Any]) -> None:
        pass  # deleting what moved since is still deleting it

    def run_stage(self, ctx: ChangeContext, stage: str) -> None:
        p = ctx.params
        gone = self.service.drop(p["group"], user=p.get("_requested_by"), change_id=p["change_id"])
        ctx.record(f"🗑 Deleted group {p['group']}" + ("" if gone else " (it was gone already)"))

    def revert(self, change: ChangeView) -> Inverse:
        raise NotRevertible("a deleted group's records are dropped; create the group again")


KINDS = (TrafficChange, PromoteChange, RollbackChange, DeleteChange)
