"""Deployments as changes: apply, rollback, stop, start and delete, each planned with its diff,
approved by the namespace's policy, run as a job in the daemon and kept in history.

An apply validates again against what is live (a server-side dry run), applies with
server-side apply as field manager ``modelarium``, then watches the object until it is Ready or
has failed, within ``MODELARIUM_DEPLOY_READY_TIMEOUT``. A failure is explained (the failing
condition's reason, the pods' recent Warning events) and, when an earlier spec was serving,
rolled back: at once (``MODELARIUM_DEPLOY_ROLLBACK=automatic``) or offered with a button.
"""

from __future__ import annotations

import contextlib
import json
import time
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
    Retryable,
)
from modelarium.core.clients.kubernetes import (
    KubeClient,
    KubernetesUnreachableError,
    WatchTimeoutError,
)
from modelarium.core.deployments import diff as diffs
from modelarium.core.deployments.manifest import ANN_LOCATION, STOP_ANNOTATION, with_change
from modelarium.core.deployments.names import check_name
from modelarium.core.deployments.policy import NamespacePolicy, namespace_policy
from modelarium.core.deployments.service import (
    DeploymentService,
    DeployPlan,
    DeployRequest,
    Preview,
)
from modelarium.core.deployments.status import Health, event_line, health, pod_failures
from modelarium.core.deployments.store import GONE, DeploymentStore
from modelarium.core.errors import (
    ConflictError,
    ModelariumError,
    NotFoundError,
    PermissionDeniedError,
    UnreachableError,
    ValidationError,
)
from modelarium.core.messages import Button, Message
from modelarium.core.rbac import Role

if TYPE_CHECKING:
    from modelarium.core.kernel import Kernel

DEPLOY = "deployment.apply"
ROLLBACK = "deployment.rollback"
STOP = "deployment.stop"
START = "deployment.start"
DELETE = "deployment.delete"
KINDS = (DEPLOY, ROLLBACK, STOP, START, DELETE)
STOP_TIMEOUT = 300.0
POD_CHECK_INTERVAL = 2.0
EVENTS_SHOWN = 5


def target(namespace: str, name: str) -> str:
    return f"deployment:{namespace}/{name}"


def approval_for(
    policy: NamespacePolicy, *, at_least: int = 0, why: str | None = None
) -> ApprovalPolicy:
    count = max(policy.approvals, at_least)
    if count == 0:
        return ApprovalPolicy.none(policy.approval_reason)
    reasons = [policy.approval_reason] if policy.approvals else []
    if why:
        reasons.append(why)
    return ApprovalPolicy.required(*reasons, role=Role.parse(policy.approver_role), count=count)


def deploy_change_plan(
    plan: DeployPlan, preview: Preview, *, action: str = "apply", summary: str | None = None
) -> Plan:
    """The change a deploy (or rollback) proposes: its params bind the whole object."""
    warnings = list(plan.warnings)
    if plan.force and preview.dry_run.conflicts:
        owners = ", ".join(sorted({c.manager for c in preview.dry_run.conflicts}))
        warnings.append(f"--force takes fields over from {owners}")
    return Plan(
        target=plan.target,
        summary=summary or plan.summary(),
        params={**plan.params(), "action": action},
        approval=approval_for(plan.policy),
        diff=tuple(preview.changes) or ("(no change: the live object already matches)",),
        facts={**plan.facts(), "dry_run": preview.dry_run.to_json()},
        warnings=tuple(warnings),
    )


def curl_example(url: str, model: str) -> str:
    """KServe's Hugging Face runtime serves vLLM's OpenAI-compatible API under /openai/v1."""
    body = json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "Hello!"}]},
        separators=(", ", ": "),
    )
    return (
        f"curl -s {url.rstrip('/')}/openai/v1/chat/completions "
        f"-H 'Content-Type: application/json' -d '{body}'"
    )


class _Kind(ChangeKind):
    """What every deployment change shares: the core, the store, a client per stage."""

    role = Role.OPERATOR

    def __init__(self, kernel: Kernel, service: DeploymentService) -> None:
        self.kernel = kernel
        self.service = service
        self.store: DeploymentStore = service.store

    def _client(self) -> KubeClient:
        try:
            return self.service.client()
        except UnreachableError as exc:
            raise Retryable(str(exc)) from None
        except ModelariumError as exc:
            raise Failed(str(exc)) from None

    def _approvers(self, change_id: int) -> list[str]:
        _, approval, _ = self.kernel.changes.details(change_id)
        if approval is None:
            return []
        return [user for user, decision, _ in approval.votes if decision == "approve"]

    def _known(self, params: dict[str, Any]) -> tuple[str, str]:
        name, namespace = str(params["name"]), params.get("namespace")
        view = self.store.find(name, namespace)
        return view.namespace, view.name

    def _explain(self, client: KubeClient, namespace: str, name: str, state: Health) -> list[str]:
        """The failing condition's reason and the recent Warning events of the pods."""
        lines = [f"Ready: {state.why()}"] if state.state != "ready" else []
        try:
            pods = _of_revision(client.service_pods(namespace, name), state)
            for pod, reason, message in pod_failures(pods):
                lines.append(f"pod {pod}: {reason}" + (f" — {message}" if message else ""))
            events: list[dict[str, Any]] = []
            for pod in pods[:5]:
                events += client.events(namespace, pod["metadata"]["name"], warnings=True)
            events += client.events(namespace, name, kind="InferenceService", warnings=True)
        except ModelariumError as exc:
            lines.append(f"(could not read pods and events: {exc})")
            return lines
        events.sort(key=lambda e: str(e.get("lastTimestamp") or ""))
        lines += [f"⚠️ {event_line(e)}" for e in events[-EVENTS_SHOWN:]]
        return lines


def _of_revision(pods: list[dict[str, Any]], state: Health) -> list[dict[str, Any]]:
    """The pods of the latest created revision (all of them when pods name no revision, as in
    KServe's RawDeployment mode)."""
    if not state.latest:
        return pods
    labelled = [
        p for p in pods if "serving.knative.dev/revision" in (p["metadata"].get("labels") or {})
    ]
    if not labelled:
        return pods
    return [
        p
        for p in labelled
        if p["metadata"]["labels"]["serving.knative.dev/revision"] == state.latest
    ]


class ApplyChange(_Kind):
    name = DEPLOY
    stages = ("validate", "apply", "wait")
    stage_labels = {"validate": "validate (dry run)", "wait": "wait for Ready"}
    action = "apply"

    def describe(self, params: dict[str, Any]) -> str:
        source = params.get("source") or {}
        what = f"{source.get('repo', '?')}@{str(source.get('commit', ''))[:7]}"
        return f"Deploy {what} as {params.get('namespace')}/{params.get('name')}"

    # -- planning -------------------------------------------------------------------------
    def plan(self, params: dict[str, Any], user: str) -> Plan:
        if params.get("force") and self.kernel.rbac.role_of(user) < Role.ADMIN:
            raise PermissionDeniedError(
                "--force takes fields over from other managers: admins only"
            )
        if "manifest" not in params:  # a request: plan it as `deploy` would
            request = DeployRequest(
                model=str(params["model"]),
                **{
                    k: params[k]
                    for k in ("name", "namespace", "gpu", "gpus", "context", "replicas", "force")
                    if params.get(k) is not None
                },
                sets=tuple(params.get("sets") or ()),
            )
            plan = self.service.plan(request)
            preview = self.service.preview(plan)
            if not preview.dry_run.ok:
                raise ValidationError("; ".join(preview.dry_run.messages))
            return deploy_change_plan(plan, preview)
        return self._plan_manifest(params, summary=None)

    def _plan_manifest(self, params: dict[str, Any], summary: str | None) -> Plan:
        """A recorded spec applied again (a rollback, or undoing a delete)."""
        manifest = params["manifest"]
        meta = manifest["metadata"]
        namespace, name = str(meta["namespace"]), check_name(str(meta["name"]))
        policy = namespace_policy(self.kernel.settings, namespace)
        force = bool(params.get("force"))
        live, verdict = self.service.check_object(manifest, force=force)
        if not verdict.ok:
            raise ValidationError("; ".join(verdict.messages))
        source = dict(params.get("source") or {})
        what = f"{source.get('repo')}@{str(source.get('commit', ''))[:12]}"
        return Plan(
            target=target(namespace, name),
            summary=summary or f"Deploy {what} as {namespace}/{name}",
            params={
                "name": name,
                "namespace": namespace,
                "manifest": manifest,
                "source": source,
                "gpu": params.get("gpu"),
                "gpus": params.get("gpus"),
                "force": force,
                "action": self.action,
                **({"to": params["to"]} if "to" in params else {}),
            },
            approval=approval_for(policy),
            diff=tuple(diffs.changes(live, manifest))
            or ("(no change: the live object already matches)",),
            facts={"dry_run": verdict.to_json()},
        )

    def check(self, params: dict[str, Any]) -> None:
        """The verified snapshot must still be installed: a purge never races an approval."""
        source = params.get("source") or {}
        location = (params["manifest"]["metadata"].get("annotations") or {}).get(ANN_LOCATION)
        if not source.get("verified") or not location:
            return
        if not self.service.weights_installed(source["repo"], source["commit"], location):
            raise ConflictError(
                f"{source['repo']}@{source['commit'][:12]} is no longer installed in {location}; "
                "install it again and re-deploy"
            )

    # -- running --------------------------------------------------------------------------
    def run_stage(self, ctx: ChangeContext, stage: str) -> None:
        p = ctx.params
        namespace, name = p["namespace"], p["name"]
        client = self._client()
        try:
            if stage == "validate":
                self._validate(ctx, client)
            elif stage == "apply":
                ctx.progress(0, 1, message=f"applying {namespace}/{name}", force=True)
                obj = self._call(
                    lambda: client.apply_inference_service(
                        with_change(p["manifest"], p["change_id"]), force=bool(p.get("force"))
                    )
                )
                ctx.checkpoint(
                    resource_version=obj["metadata"].get("resourceVersion"),
                    generation=obj["metadata"].get("generation"),
                    wait_from=time.time(),
                )
            elif stage == "wait":
                self._wait(ctx, client)
        finally:
            client.close()

    @staticmethod
    def _call(fn: Any) -> Any:
        try:
            return fn()
        except UnreachableError as exc:
            raise Retryable(str(exc)) from None
        except ModelariumError as exc:
            raise Failed(str(exc)) from None

    def _validate(self, ctx: ChangeContext, client: KubeClient) -> None:
        p = ctx.params
        namespace, name = p["namespace"], p["name"]
        ctx.progress(0, 1, message="server-side dry run against what is live now", force=True)
        live, verdict = self._call(
            lambda: self.service.check_object(
                p["manifest"], force=bool(p.get("force")), client=client
            )
        )
        if not verdict.ok:
            raise Failed("; ".join(verdict.messages))
        if "event_id" in ctx.state:
            return
        row = self.store.get(namespace, name)
        serving = (
            row is not None
            and row.state not in GONE
            and row.change_id is not None
            and live is not None
            and health(live).ready
        )
        event_id = self.store.begin(
            namespace=namespace,
            name=name,
            action=p.get("action") or self.action,
            change_id=p["change_id"],
            proposed_by=p.get("_requested_by"),
            approved_by=self._approvers(p["change_id"]),
            manifest=p["manifest"],
            digest=self.kernel.changes.get(p["change_id"]).digest,
            source=p.get("source"),
            gpus=p.get("gpus"),
        )
        ctx.checkpoint(
            event_id=event_id,
            previous=row.manifest if serving and row is not None else None,
            previous_change=row.change_id if serving and row is not None else None,
        )

    def _wait(self, ctx: ChangeContext, client: KubeClient) -> None:
        p = ctx.params
        namespace, name = p["namespace"], p["name"]
        timeout = self.kernel.settings.deploy_ready_timeout
        started = float(ctx.state.get("wait_from") or time.time())
        remaining = max(1.0, started + timeout - time.time())
        generation = int(ctx.state.get("generation") or 0)
        outcome = self._settle(ctx, client, namespace, name, generation, remaining)
        event_id = int(ctx.state["event_id"])
        if outcome.ready:
            self._succeeded(ctx, event_id, outcome)
            return
        why = outcome.why()
        if outcome.state == "progressing":
            why = f"not Ready within {timeout:g}s (last: {why})"
        lines = [f"❌ {namespace}/{name} did not become Ready: {why}"]
        lines += self._explain(client, namespace, name, outcome)
        previous = ctx.state.get("previous")
        if previous is None:
            self.store.finish(event_id, "failed", detail=why, state="failed")
            ctx.record(*lines)
            raise Failed(why)
        before = ctx.state.get("previous_change")
        if self.kernel.settings.deploy_rollback == "automatic":
            lines += self._roll_back(ctx, client, previous, before)
            self.store.finish(event_id, "rolled back", detail=why)
            ctx.record(*lines, rolled_back_to=before)
            raise Failed(f"{why}; rolled back to change #{before}")
        self.store.finish(event_id, "failed", detail=why, state="failed")
        lines.append(
            f"↩️ change #{before} was serving before; roll back with "
            f"`deployment rollback {namespace}/{name}` (the button below the card)"
        )
        ctx.record(*lines)
        self._offer_rollback(p, namespace, name, before)
        raise Failed(why)

    def _settle(
        self,
        ctx: ChangeContext,
        client: KubeClient,
        namespace: str,
        name: str,
        generation: int,
        timeout: float,
    ) -> Health:
        """Watch until Ready or failed (conditions, or pods the kubelet gave up on)."""
        last_pods = [0.0]
        verdict: list[Health] = []

        def settled(obj: dict[str, Any] | None) -> bool:
            if obj is not None and int(obj["metadata"].get("generation") or 0) < generation:
                return False
            state = health(obj)
            ctx.progress(
                0, 1, message=f"{state.state}: {state.why() or 'Ready'}"[:200], force=False
            )
            if state.state in ("ready", "failed", "missing"):
                verdict.append(state)
                return True
            now = time.monotonic()
            observed = int(((obj or {}).get("status") or {}).get("observedGeneration") or 0)
            if observed >= generation and now - last_pods[0] >= POD_CHECK_INTERVAL:
                # Only the pods of the revision rolling out now: a failed earlier revision's
                # pods may linger a moment, and the serving one's are healthy.
                last_pods[0] = now
                failing = pod_failures(_of_revision(client.service_pods(namespace, name), state))
                if failing:
                    pod, reason, message = failing[0]
                    verdict.append(
                        Health("failed", reason, f"pod {pod}: {message}", state.url,
                               state.revision, state.latest, state.traffic, state.conditions)
                    )  # fmt: skip
                    return True
            return False

        try:
            client.wait_for(
                namespace,
                name,
                settled,
                timeout,
                resource_version=ctx.state.get("resource_version"),
                check=ctx.check_cancelled,
            )
        except WatchTimeoutError as exc:
            return health(exc.last) if exc.last is not None else Health("progressing")
        except KubernetesUnreachableError as exc:
            raise Retryable(str(exc)) from None
        return verdict[-1]

    def _succeeded(self, ctx: ChangeContext, event_id: int, state: Health) -> None:
        p = ctx.params
        namespace, name = p["namespace"], p["name"]
        self.store.finish(
            event_id, "succeeded", state="ready", url=state.url, revision=state.revision
        )
        lines = [f"✅ {namespace}/{name} is Ready" + (f" at {state.url}" if state.url else "")]
        if state.revision:
            lines.append(f"revision {state.revision}")
        if state.url:
            lines.append(f"Try it: `{curl_example(state.url, name)}`")
        ctx.record(*lines, url=state.url, revision=state.revision)

    def _roll_back(
        self,
        ctx: ChangeContext,
        client: KubeClient,
        previous: dict[str, Any],
        before: int | None,
    ) -> list[str]:
        p = ctx.params
        namespace, name = p["namespace"], p["name"]
        ctx.progress(0, 1, message=f"rolling back to change #{before}", force=True)
        try:
            spec = with_change(previous, before) if before is not None else previous
            obj = client.apply_inference_service(spec, force=True)
        except ModelariumError as exc:
            return [f"↩️ rolling back to change #{before} failed: {exc}"]
        generation = int(obj["metadata"].get("generation") or 0)
        timeout = self.kernel.settings.deploy_ready_timeout
        state = self._settle(ctx, client, namespace, name, generation, timeout)
        if state.ready:
            return [f"↩️ rolled back to change #{before}: Ready again"]
        return [f"↩️ rolled back to change #{before}, which is not Ready either: {state.why()}"]

    def _offer_rollback(
        self, p: dict[str, Any], namespace: str, name: str, before: int | None
    ) -> None:
        command = f"deployment rollback {namespace}/{name}"
        message = Message(fallback=f"Roll back {namespace}/{name} to change #{before}?")
        message.text(
            f"↩️ The new spec of `{namespace}/{name}` failed; change #{before} was serving "
            "before. Roll back to it? (proposed as a change, approved like any other)"
        )
        message.buttons(
            Button("Roll back", command, style="primary", confirm=f"Propose: {command}?")
        )
        change = self.kernel.changes.get(p["change_id"])
        self.kernel.notify.publish(
            f"deployment-rollback:{p['change_id']}",
            message,
            channel=change.channel or self.kernel.approvals.approvals_channel,
            kind="change",
            thread_of=f"change:{p['change_id']}",
        )

    def revert(self, change: ChangeView) -> Inverse:
        p = change.params
        namespace, name = p["namespace"], p["name"]
        view = self.store.get(namespace, name)
        if view is None:
            raise NotRevertible(f"{namespace}/{name} is not known")
        history = self.store.history(view.id)
        mine = next(
            (e for e in history if e.change_id == change.id and e.action == p.get("action")),
            None,
        )
        earlier = [
            e
            for e in history
            if e.action in ("apply", "rollback")
            and e.outcome == "succeeded"
            and (mine is None or e.id < mine.id)
        ]
        if earlier:
            return Inverse(
                ROLLBACK, {"namespace": namespace, "name": name, "to": earlier[-1].number}
            )
        return Inverse(DELETE, {"namespace": namespace, "name": name})


class RollbackChange(ApplyChange):
    """Re-apply a recorded earlier spec (``rollback --to N``, or undoing a deploy)."""

    name = ROLLBACK
    action = "rollback"

    def describe(self, params: dict[str, Any]) -> str:
        return f"Roll back {params.get('namespace')}/{params.get('name')} to #{params.get('to')}"

    def plan(self, params: dict[str, Any], user: str) -> Plan:
        if "manifest" in params:  # already resolved (a re-proposal)
            return self._plan_manifest(params, self.describe(params))
        namespace, name = self._known(params)
        view = self.store.find(name, namespace)
        history = self.store.history(view.id)
        attempts = [e for e in history if e.action in ("apply", "rollback")]
        applied = [e for e in attempts if e.outcome == "succeeded" and e.manifest]
        if params.get("to") is not None:
            wanted = int(params["to"])
            chosen = next((e for e in applied if e.number == wanted), None)
            if chosen is None:
                numbers = ", ".join(str(e.number) for e in applied) or "none"
                raise NotFoundError(
                    f"entry #{wanted} of {namespace}/{name}'s history is not a spec that served; "
                    f"ones that did: {numbers}"
                )
        else:
            # After a failed attempt, the last spec that served; else the one before it.
            failed_last = bool(attempts) and attempts[-1].outcome != "succeeded"
            earlier = applied if failed_last else applied[:-1]
            if not earlier:
                raise NotFoundError(f"{namespace}/{name} has no earlier spec to roll back to")
            chosen = earlier[-1]
        assert chosen.manifest is not None
        source = {
            "repo": chosen.repo,
            "commit": chosen.commit,
            "location": (chosen.manifest["metadata"].get("annotations") or {}).get(ANN_LOCATION),
            "verified": bool(
                (chosen.manifest["metadata"].get("annotations") or {}).get(ANN_LOCATION)
            ),
        }
        what = f"#{chosen.number}: {chosen.repo}@{(chosen.commit or '')[:12]}"
        if chosen.change_id:
            what += f" (change #{chosen.change_id})"
        return self._plan_manifest(
            {"manifest": chosen.manifest, "source": source, "to": chosen.number},
            f"Roll back {namespace}/{name} to {what}",
        )


class StopChange(_Kind):
    name = STOP
    stages = ("stop",)
    annotation: str | None = "true"
    action = "stop"
    verb = "Stop"

    def describe(self, params: dict[str, Any]) -> str:
        return f"{self.verb} {params.get('namespace')}/{params.get('name')}"

    def plan(self, params: dict[str, Any], user: str) -> Plan:
        namespace, name = self._known(params)
        view = self.store.find(name, namespace)
        if view.state in GONE:
            raise ConflictError(f"{namespace}/{name} is {view.state}; deploy it again first")
        if (view.state == "stopped") == (self.action == "stop"):
            already = "stopped" if self.action == "stop" else "running (not stopped)"
            raise ConflictError(f"{namespace}/{name} is already {already}")
        policy = namespace_policy(self.kernel.settings, namespace)
        sign = "+" if self.annotation else "-"
        return Plan(
            target=target(namespace, name),
            summary=self.describe({"namespace": namespace, "name": name}),
            params={"namespace": namespace, "name": name},
            approval=approval_for(policy),
            diff=(f'{sign} metadata.annotations.{STOP_ANNOTATION}: "true"',),
            facts={"gpus": view.gpus},
        )

    def run_stage(self, ctx: ChangeContext, stage: str) -> None:
        p = ctx.params
        namespace, name = p["namespace"], p["name"]
        client = self._client()
        try:
            if "event_id" not in ctx.state:
                event_id = self.store.begin(
                    namespace=namespace,
                    name=name,
                    action=self.action,
                    change_id=p["change_id"],
                    proposed_by=p.get("_requested_by"),
                    approved_by=self._approvers(p["change_id"]),
                )
                ctx.checkpoint(event_id=event_id)
            obj = ApplyChange._call(
                lambda: client.patch_annotations(
                    namespace, name, {STOP_ANNOTATION: self.annotation}
                )
            )
            generation = int(obj["metadata"].get("generation") or 0)
            self._wait(ctx, client, namespace, name, generation)
        finally:
            client.close()

    def _wait(
        self, ctx: ChangeContext, client: KubeClient, namespace: str, name: str, generation: int
    ) -> None:
        event_id = int(ctx.state["event_id"])
        try:
            client.wait_for(
                namespace,
                name,
                lambda obj: health(obj).state in ("stopped", "missing"),
                STOP_TIMEOUT,
                check=ctx.check_cancelled,
            )
        except WatchTimeoutError as exc:
            why = f"not stopped within {STOP_TIMEOUT:g}s: {health(exc.last).why()}"
            self.store.finish(event_id, "failed", detail=why)
            raise Failed(why) from None
        self.store.finish(event_id, "succeeded", state="stopped")
        ctx.record(f"⏸️ {namespace}/{name} is stopped: no pods, its GPUs are free")

    def revert(self, change: ChangeView) -> Inverse:
        return Inverse(START, dict(change.params))


class StartChange(StopChange):
    name = START
    annotation = None
    action = "start"
    verb = "Start"

    def _wait(
        self, ctx: ChangeContext, client: KubeClient, namespace: str, name: str, generation: int
    ) -> None:
        event_id = int(ctx.state["event_id"])
        timeout = self.kernel.settings.deploy_ready_timeout
        seen: list[Health] = []

        def done(obj: dict[str, Any] | None) -> bool:
            state = health(obj)
            seen.append(state)
            return state.state in ("ready", "failed", "missing")

        with contextlib.suppress(WatchTimeoutError):
            client.wait_for(namespace, name, done, timeout, check=ctx.check_cancelled)
        state = seen[-1] if seen else Health("progressing")
        if not state.ready:
            why = state.why() if state.state != "progressing" else f"not Ready within {timeout:g}s"
            lines = [f"❌ {namespace}/{name} did not start: {why}"]
            lines += self._explain(client, namespace, name, state)
            self.store.finish(event_id, "failed", detail=why, state="failed")
            ctx.record(*lines)
            raise Failed(why)
        self.store.finish(
            event_id, "succeeded", state="ready", url=state.url, revision=state.revision
        )
        ctx.record(
            f"▶️ {namespace}/{name} is Ready again" + (f" at {state.url}" if state.url else ""),
            url=state.url,
        )

    def revert(self, change: ChangeView) -> Inverse:
        return Inverse(STOP, dict(change.params))


class DeleteChange(_Kind):
    name = DELETE
    stages = ("delete",)

    def describe(self, params: dict[str, Any]) -> str:
        return f"Delete {params.get('namespace')}/{params.get('name')}"

    def plan(self, params: dict[str, Any], user: str) -> Plan:
        namespace, name = self._known(params)
        view = self.store.find(name, namespace)
        if view.state == "deleted":
            raise ConflictError(f"{namespace}/{name} is already deleted")
        policy = namespace_policy(self.kernel.settings, namespace)
        return Plan(
            target=target(namespace, name),
            summary=self.describe({"namespace": namespace, "name": name}),
            params={
                "namespace": namespace,
                "name": name,
                "manifest": view.manifest,
                "source": {
                    "repo": view.repo,
                    "commit": view.commit,
                    "location": view.location,
                    "verified": view.location is not None,
                },
                "gpus": view.gpus,
            },
            approval=approval_for(policy, at_least=1, why="deleting a deployment needs approval"),
            diff=(f"- inferenceservice {namespace}/{name} ({view.repo}@{view.commit[:12]})",),
            facts={"gpus": view.gpus},
        )

    def run_stage(self, ctx: ChangeContext, stage: str) -> None:
        p = ctx.params
        namespace, name = p["namespace"], p["name"]
        client = self._client()
        try:
            if "event_id" not in ctx.state:
                event_id = self.store.begin(
                    namespace=namespace,
                    name=name,
                    action="delete",
                    change_id=p["change_id"],
                    proposed_by=p.get("_requested_by"),
                    approved_by=self._approvers(p["change_id"]),
                    manifest=p.get("manifest"),
                )
                ctx.checkpoint(event_id=event_id)
            ApplyChange._call(lambda: client.delete_inference_service(namespace, name))
            try:
                client.wait_for(
                    namespace,
                    name,
                    lambda obj: obj is None,
                    STOP_TIMEOUT,
                    check=ctx.check_cancelled,
                )
            except WatchTimeoutError:
                raise Failed(f"{namespace}/{name} still exists after {STOP_TIMEOUT:g}s") from None
        finally:
            client.close()
        self.store.finish(int(ctx.state["event_id"]), "succeeded", state="deleted")
        ctx.record(f"🗑 Deleted {namespace}/{name}; its GPUs are free")

    def revert(self, change: ChangeView) -> Inverse:
        p = change.params
        if not p.get("manifest"):
            raise NotRevertible("no spec was recorded for it")
        return Inverse(
            DEPLOY,
            {"manifest": p["manifest"], "source": p.get("source") or {}, "gpus": p.get("gpus")},
        )
