"""Canary groups: the champion is a deployment; a challenger is a new revision of the same
InferenceService taking ``canaryTrafficPercent`` of its traffic (KServe splits it).

Every group operation is one ``group.canary`` change: its plan is a deployment plan (through the
``deployment_canary`` port: the namespace's policy, a server-side dry run, the diff) plus the
group's member diff; its job runs the deployment's own stages (validate, apply, wait for Ready)
and then records the roles. Each revision's spec names its own member in KServe's logger URL.

- ``attach``: the champion's spec again, with its logger (a new revision of the same model);
- ``challenge``: another model, commit or engine arguments, on P% of the traffic;
- ``traffic``: only ``canaryTrafficPercent`` changes (no new revision);
- ``promote``: ``canaryTrafficPercent`` removed: the challenger's revision takes everything;
- ``rollback``: ``canaryTrafficPercent: 0``: all traffic back to the previous revision;
- ``delete``: the logger removed (the split left as it is), then the group and its records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelarium.core.changes import (
    ApprovalPolicy,
    ChangeContext,
    ChangeKind,
    ChangeView,
    Failed,
    NotRevertible,
    Plan,
)
from modelarium.core.errors import ConflictError, ModelariumError, UsageError
from modelarium.core.groups.changes import (
    check_steps,
    diff_members,
    serve_step,
    target,
)
from modelarium.core.groups.service import GroupService
from modelarium.core.groups.views import GroupView, check_traffic, member_name
from modelarium.core.rbac import Role

if TYPE_CHECKING:
    from modelarium.core.kernel import Kernel

CANARY = "group.canary"
OPS = ("attach", "challenge", "traffic", "promote", "rollback", "delete")


def _members(group: GroupView) -> list[dict[str, Any]]:
    return [m.to_json() for m in group.members]


class _StepContext:
    """A stage context whose durable state is one step's own (``ctx.state[key]``), so the
    deployment stages of every step (each a deployment event) keep apart in one change."""

    def __init__(self, ctx: ChangeContext, key: str) -> None:
        self._ctx = ctx
        self._key = key

    @property
    def state(self) -> dict[str, Any]:
        return self._ctx.state.setdefault(self._key, {})  # type: ignore[no-any-return]

    def checkpoint(self, **updates: Any) -> None:
        self._ctx.checkpoint(**{self._key: {**dict(self._ctx.state.get(self._key) or {}),
                                            **updates}})  # fmt: skip

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


class CanaryChange(ChangeKind):
    name = CANARY
    stages = ("validate", "apply", "wait", "roles")
    stage_labels = {"validate": "validate (dry run)", "wait": "wait for Ready"}
    role = Role.OPERATOR

    def __init__(self, kernel: Kernel, service: GroupService) -> None:
        self.kernel = kernel
        self.service = service

    @property
    def port(self) -> Any:
        return self.service.ports.deployment_canary

    def describe(self, params: dict[str, Any]) -> str:
        return f"{str(params.get('op', 'change')).capitalize()} canary group {params.get('group')}"

    # -- planning ---------------------------------------------------------------------------
    def plan(self, params: dict[str, Any], user: str) -> Plan:
        group = self.service.get(params["group"])
        if group.strategy != "canary" or not group.deployment:
            raise UsageError(f"group {group.name} is not a canary group")
        op = params.get("op")
        if op not in OPS:
            raise UsageError(f"a canary change is one of {', '.join(OPS)}")
        before = _members(group)
        after = [dict(m) for m in before]
        manifest, source = self.port.current(group.deployment)
        percent = self.port.percent(manifest)
        champion = next((m for m in after if m["role"] == "champion"), None)
        challenger = next((m for m in after if m["role"] == "challenger"), None)
        if champion is None:
            raise ConflictError(f"group {group.name} has no champion")
        logger = None
        steps: list[int] = []
        status = "running"
        settings = self.kernel.settings
        count = settings.group_change_approvals
        if op == "attach":
            logger = self._logger(group, (challenger or champion)["name"])
            summary = f"Attach KServe's logger to {group.deployment} for group {group.name}"
        elif op == "challenge":
            if challenger is not None:
                raise ConflictError(
                    f"group {group.name} has a challenger already; promote it or roll it back"
                )
            share = check_traffic(params.get("traffic", 10))
            if not 0 < share < 100:
                raise UsageError("a canary challenger takes 1-99% of the traffic")
            manifest, source = self.port.render(
                group.deployment, str(params["model"]), dict(params.get("options") or {})
            )
            name = member_name(len(after) + 1, str(source["repo"]), str(source["commit"]))
            after.append({"name": name, "role": "challenger", "traffic": share})
            champion["traffic"] = 100 - share
            percent = share
            logger = self._logger(group, name)
            summary = (
                f"Challenge {champion['name']} with {name} on {share}% of {group.deployment} "
                f"(group {group.name})"
            )
        elif op == "delete":
            if percent is not None:
                raise ConflictError(
                    f"{group.deployment} splits traffic between revisions: a new spec would "
                    "not reach the revision that serves; delete the group without it"
                )
            manifest = self.port.without_logger(manifest)
            status = "deleted"
            count = max(1, count)
            summary = (
                f"Delete group {group.name}: remove KServe's logger from {group.deployment} and "
                "drop its inference records"
            )
        elif op in ("traffic", "promote", "rollback"):
            if challenger is None:
                raise ConflictError(f"group {group.name} has no challenger")
            if op == "traffic":
                percent = check_traffic(params["traffic"])
                challenger["traffic"], champion["traffic"] = percent, 100 - percent
                summary = f"Set challenger {challenger['name']} of group {group.name} to {percent}%"
                if params.get("guard"):
                    summary = summary.replace("Set", "Cut", 1)
            elif op == "promote":
                self._evidence(group, params)
                if params.get("steps"):
                    steps = check_steps(params["steps"], int(challenger["traffic"]))
                percent = None
                for m in after:
                    m.update(role="retired", traffic=0)
                challenger.update(role="champion", traffic=100)
                status = "promoted"
                count = settings.group_promote_approvals
                summary = f"Promote {challenger['name']} to champion of group {group.name}"
                if steps:
                    summary += " in steps " + " → ".join(f"{s}%" for s in steps)
            else:
                percent = 0
                challenger.update(role="retired", traffic=0)
                champion["traffic"] = 100
                status = "rolled_back"
                summary = f"Roll back group {group.name}: all traffic to {champion['name']}"
        if op != "delete":  # (a deletion leaves the split as it is)
            manifest = self.port.with_canary(manifest, percent, logger)
        deployment = self.port.plan(manifest, source, summary)
        namespace_count = deployment.approval.count if deployment.approval.needed else 0
        needed = 0 if params.get("guard") else max(count, namespace_count)
        reasons = list(deployment.approval.reasons) if deployment.approval.needed else []
        if op == "promote" and count:
            reasons.append(f"a promotion needs {count} approver(s)")
        if op == "delete":
            reasons.append("deleting a group drops its inference records")
        approval = (
            ApprovalPolicy.required(*reasons, role=Role.OPERATOR, count=needed)
            if needed
            else ApprovalPolicy.none("the guard only takes traffic away from a challenger"
                                     if params.get("guard") else "")
        )  # fmt: skip
        evidence = tuple(params.get("_evidence") or ())
        stepped: dict[str, Any] = {}
        if steps:  # one deployment plan per step (its dry run, its event), and the way back
            back = next(int(m["traffic"]) for m in before if m["role"] == "challenger")
            step_plans = [  # its own deployment event: not an apply (the spec it wants)
                {**self.port.plan(self.port.with_canary(manifest, share, None), source,
                                  f"{summary}: step {share}%").params,
                 "action": f"canary {share}%"}
                for share in steps[:-1]
            ]  # fmt: skip
            restore = self.port.plan(self.port.with_canary(manifest, back, None), source,
                                     f"{summary}: traffic back to {back}%")  # fmt: skip
            stepped = {"steps": steps, "step_deployments": step_plans, "restore": restore.params}
        return Plan(
            target=target(group.name),
            summary=summary,
            params={
                "group": group.name,
                "op": op,
                "revision": group.revision,
                "members": after,
                "before": before,
                "status": status,
                "action": "guard" if params.get("guard") else op,
                "deployment": deployment.params,
                **stepped,
            },
            approval=approval,
            diff=(
                *(diff_members(before, after) if op not in ("attach", "delete") else ()),
                *(
                    (
                        f"- group {group.name} ({len(before)} member(s))",
                        f"- table {group.table_name}",
                    )
                    if op == "delete"
                    else ()
                ),
                *deployment.diff,
                *(
                    (
                        f"steps: {' → '.join(f'{s}%' for s in steps)}, each served "
                        f"{float(settings.group_step_interval):g}s, then analysed",
                    )
                    if steps
                    else ()
                ),
                *evidence,
            ),
            facts=dict(deployment.facts),
            warnings=deployment.warnings,
        )

    def _logger(self, group: GroupView, member: str) -> str:
        url = self.service.logger_url(group, member)
        if url is None:
            raise UsageError(
                "set MODELARIUM_PUBLIC_URL (the address the cluster reaches Modelarium at) so "
                "KServe's logger can post this revision's requests"
            )
        return url

    def _evidence(self, group: GroupView, params: dict[str, Any]) -> None:
        comparison = self.service.compare(group.name)
        minimum = group.rules.min_requests
        judged = [m for m in comparison.members if m.role in ("champion", "challenger")]
        short = [m for m in judged if m.requests < minimum]
        if short:
            need = "; ".join(
                f"{m.member} has {m.requests:,}, needs {minimum - m.requests:,} more" for m in short
            )
            raise ConflictError(
                f"too few requests to promote: every member needs {minimum:,} ({need})"
            )
        lines = ["— evidence —"] + [
            f"{m.member} ({m.role}): {m.requests:,} requests, {(m.error_rate or 0) * 100:.2f}% "
            f"errors, p95 " + (f"{m.p95:.0f} ms" if m.p95 is not None else "—")
            for m in judged
        ]
        for v in comparison.versus:
            lines.append(f"verdict: {v.verdict} — {v.words}")
            lines += [("✓ " if r.passed else "✗ ") + f"{r.rule}: {r.detail}" for r in v.rules]
        params["_evidence"] = lines

    # -- running ----------------------------------------------------------------------------
    def check(self, params: dict[str, Any]) -> None:
        group = self.service.get(params["group"])
        if group.revision != params["revision"]:
            raise ConflictError(
                f"group {group.name} changed since this was approved; propose it again"
            )
        self.port.check(params["deployment"])

    def run_stage(self, ctx: ChangeContext, stage: str) -> None:
        p = ctx.params
        if p.get("steps") and stage != "roles":
            if stage == "apply":  # validate, apply and wait of every step happen here
                self._steps(ctx)
            return
        if stage != "roles":
            self.port.run_stage(ctx, stage, p["deployment"])
            return
        if p["op"] == "delete":
            gone = self.service.drop(p["group"], user=p.get("_requested_by"),
                                     change_id=p["change_id"])  # fmt: skip
            ctx.record(f"🗑 Deleted group {p['group']}" + ("" if gone else " (it was gone already)"))
            return
        try:
            group = self.service.apply_members(
                p["group"], p["members"], revision=int(ctx.state.get("revision", p["revision"])),
                status=p["status"],
                action=p["action"], user=p.get("_requested_by"), change_id=p["change_id"],
                detail={"before": p.get("before")},
            )  # fmt: skip
        except ModelariumError as exc:
            raise Failed(str(exc)) from None
        shares = ", ".join(f"{m.name} {m.role} {m.traffic}%" for m in group.active)
        ctx.record(f"✅ group {p['group']}: {shares}", members=_members(group))
        if p["op"] in ("promote", "rollback"):
            challenger = next((m["name"] for m in p["before"] if m["role"] == "challenger"), None)
            repo = ((p["deployment"].get("source") or {}).get("repo")) or None
            for line in self.service.record_in_catalog(
                p["group"], p["before"], p["op"], user=p.get("_requested_by"),
                change_id=p["change_id"],
                repos={challenger: str(repo)} if challenger and repo else {},
            ):  # fmt: skip
                ctx.record(line)

    def _deploy(self, ctx: ChangeContext, key: str, deployment: dict[str, Any]) -> None:
        scoped: Any = _StepContext(ctx, key)
        for stage in ("validate", "apply", "wait"):
            if stage not in scoped.state.get("done", []):
                self.port.run_stage(scoped, stage, deployment)
                scoped.checkpoint(done=[*scoped.state.get("done", []), stage])

    def _steps(self, ctx: ChangeContext) -> None:
        """Each step below 100%: KServe's canaryTrafficPercent set (validate, apply, Ready),
        the roles recorded, ``MODELARIUM_GROUP_STEP_INTERVAL`` served, then the analysis over
        it; a rule breached with significance puts the traffic back and fails the change. The
        last step (100%) is the promotion's own deployment."""
        p = ctx.params
        steps = [int(s) for s in p["steps"]]
        interval = float(self.kernel.settings.group_step_interval)
        revision = int(ctx.state.get("revision", p["revision"]))
        for index in range(int(ctx.state.get("step", 0)), len(steps) - 1):
            self._deploy(ctx, f"step{index}", p["step_deployments"][index])
            revision = serve_step(
                self.service, ctx, steps, index, revision, interval,
                restore=lambda: self._deploy(ctx, "restore", p["restore"]),
            )  # fmt: skip
        self._deploy(ctx, "final", p["deployment"])

    def revert(self, change: ChangeView) -> Any:
        raise NotRevertible(
            "undo a canary step with the next one: `group traffic`, `group rollback`"
        )
