"""The ``deployment_canary`` port: what a model group of strategy ``canary`` needs from
deployments, so that a challenger is a new revision of the same InferenceService.

Plans are deployment plans (the namespace's policy, a server-side dry run, the diff against
the live object) of a spec made by the same renderer: a new model, commit or engine arguments
for a challenger, or the last applied spec with another ``canaryTrafficPercent`` for traffic,
promotion (none: the new revision takes everything) and rollback (0). The stages are the
``deployment.apply`` kind's own (validate, apply, wait for Ready), run inside the group's
change, so history, readiness and failure explanations are the same as for ``deploy``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelarium.core.changes import ChangeContext, Plan
from modelarium.core.deployments.manifest import with_canary, without_logger
from modelarium.core.deployments.service import DeployRequest
from modelarium.core.deployments.status import health
from modelarium.core.errors import ValidationError

if TYPE_CHECKING:
    from modelarium.core.deployments.service import DeploymentService
    from modelarium.core.kernel import Kernel

DEPLOY = "deployment.apply"
STAGES = ("validate", "apply", "wait")


class _Scoped:
    """A stage context whose params are the deployment's (a group change carries them)."""

    def __init__(self, ctx: ChangeContext, params: dict[str, Any]) -> None:
        self._ctx = ctx
        self.params = {
            **params,
            "change_id": ctx.params["change_id"],
            "_requested_by": ctx.params.get("_requested_by"),
        }

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


class DeploymentCanary:
    stages = STAGES

    def __init__(self, kernel: Kernel, service: DeploymentService) -> None:
        self.kernel = kernel
        self.service = service

    def find(self, key: str) -> dict[str, Any]:
        """A managed deployment (``name`` or ``namespace/name``) as a group needs it."""
        view = self.service.store.find(key)
        return {
            "key": view.key,
            "namespace": view.namespace,
            "name": view.name,
            "repo": view.repo,
            "commit": view.commit,
            "state": view.state,
            "manifest": view.manifest,
        }

    def live(self, key: str) -> dict[str, Any]:
        """How KServe splits the deployment's traffic now (``status.components.predictor``)."""
        view = self.service.store.find(key)
        client = self.service.client()
        try:
            obj = client.get_inference_service(view.namespace, view.name)
        finally:
            client.close()
        state = health(obj)
        predictor = ((obj or {}).get("status") or {}).get("components", {}).get("predictor", {})
        return {
            "name": view.name,
            "state": state.state,
            "url": predictor.get("url") or ((obj or {}).get("status") or {}).get("url"),
            "revision": state.revision,
            "latest": state.latest,
            "traffic": [
                {k: t.get(k) for k in ("revisionName", "percent", "tag", "latestRevision", "url")}
                for t in state.traffic
            ],
        }

    def render(self, key: str, model: str, options: dict[str, Any]) -> tuple[dict, dict]:
        """(manifest, source) of ``model`` deployed over the same InferenceService."""
        view = self.service.store.find(key)
        request = DeployRequest(
            model=model,
            name=view.name,
            namespace=view.namespace,
            gpu=options.get("gpu"),
            gpus=options.get("gpus"),
            context=options.get("context"),
            replicas=options.get("replicas"),
            sets=tuple(options.get("sets") or ()),
        )
        plan = self.service.plan(request)
        return plan.manifest, {**plan.source.to_json(), "gpus": plan.gpus, "gpu": plan.gpu}

    def current(self, key: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(manifest, source) last applied to the deployment."""
        view = self.service.store.find(key)
        source = {"repo": view.repo, "commit": view.commit, "location": view.location,
                  "verified": view.location is not None}  # fmt: skip
        return view.manifest, source

    @staticmethod
    def with_canary(manifest: dict[str, Any], percent: int | None, logger_url: str | None) -> dict:
        return with_canary(manifest, percent, logger_url)

    @staticmethod
    def without_logger(manifest: dict[str, Any]) -> dict:
        return without_logger(manifest)

    @staticmethod
    def percent(manifest: dict[str, Any]) -> int | None:
        value = ((manifest.get("spec") or {}).get("predictor") or {}).get("canaryTrafficPercent")
        return None if value is None else int(value)

    def plan(self, manifest: dict[str, Any], source: dict[str, Any], summary: str) -> Plan:
        """The deployment plan of applying ``manifest`` (dry run, diff, the namespace's policy)."""
        kind: Any = self.kernel.changes.kind(DEPLOY)
        params = {
            "manifest": manifest,
            "source": {k: source.get(k) for k in ("repo", "commit", "location", "verified")},
            "gpus": source.get("gpus"),
            "gpu": source.get("gpu"),
        }
        try:
            return kind._plan_manifest(params, summary)  # type: ignore[no-any-return]
        except ValidationError:
            raise

    def check(self, params: dict[str, Any]) -> None:
        self.kernel.changes.kind(DEPLOY).check(params)

    def run_stage(self, ctx: ChangeContext, stage: str, params: dict[str, Any]) -> None:
        self.kernel.changes.kind(DEPLOY).run_stage(_Scoped(ctx, params), stage)  # type: ignore[arg-type]
