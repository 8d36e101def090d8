"""Planning a deployment: from ``org/name[@rev]`` and flags to the InferenceService to apply.

:meth:`DeploymentService.plan` resolves everything a deploy will touch and refuses bad input
with one line, before anything reaches the cluster: the name (a DNS-1035 label), the namespace
(allowed by policy), the weights (an installed, verified snapshot on a PVC, else the Hub at a
pinned commit, with a warning), the GPUs (the inventory's types; never more than one node
has) and the fit (the estimator's tensor parallel size, context and memory fraction, or "fits
nowhere"). :meth:`DeploymentService.preview` then reads the live object and asks the API server
for a dry run, so admission errors and field-ownership conflicts show before anyone approves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from modelarium.core.clients.kubernetes import (
    ApplyConflictError,
    FieldConflict,
    KubeClient,
    KubernetesAuthError,
    KubernetesNotConfiguredError,
    KubernetesUnreachableError,
    kube_client,
    kube_configured,
)
from modelarium.core.deployments import diff as diffs
from modelarium.core.deployments import spec_secrets
from modelarium.core.deployments.manifest import (
    FIT_KEYS,
    MANAGED_SELECTOR,
    ModelSource,
    Replicas,
    engine_args,
    hf_cache_folder,
    hub_uri,
    is_managed,
    parse_replicas,
    parse_sets,
    pvc_uri,
    render,
)
from modelarium.core.deployments.names import check_name, default_name, parse_model_ref
from modelarium.core.deployments.policy import (
    NamespacePolicy,
    allowed_namespaces,
    namespace_policy,
)
from modelarium.core.deployments.reconcile import ReconcileReport, reconcile
from modelarium.core.deployments.store import GONE, DeploymentStore, DeploymentView, EventView
from modelarium.core.errors import (
    ConflictError,
    ModelariumError,
    NotFoundError,
    UsageError,
    ValidationError,
)
from modelarium.core.fit import FitResult, estimate, parse_context
from modelarium.core.fit.plan import VLLM_DEFAULT_GPU_MEMORY_UTILIZATION
from modelarium.core.fit.sizing import SizedGpu, recommend
from modelarium.core.kernel import Kernel
from modelarium.core.ports import InstalledSnapshot, Ports

if TYPE_CHECKING:
    from modelarium.core.gpus import GpuChoice

DeprecationCheck = Callable[[str, str], str | None]
"""(repo, commit) -> why the model is deprecated, or None. The catalog provides it."""


@dataclass(frozen=True)
class DeployRequest:
    """What a person asked for (the command's arguments, unvalidated)."""

    model: str
    name: str | None = None
    namespace: str | None = None
    gpu: str | None = None
    gpus: int | None = None
    context: str | None = None
    replicas: str | None = None
    sets: tuple[str, ...] = ()
    force: bool = False


@dataclass(frozen=True)
class DeployPlan:
    """A validated deployment: the object to apply and why it looks the way it does."""

    name: str
    namespace: str
    source: ModelSource
    manifest: dict[str, Any]
    gpu: str
    product: str | None
    gpus: int
    replicas: Replicas
    fit: FitResult
    policy: NamespacePolicy
    force: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        return f"deployment:{self.namespace}/{self.name}"

    def summary(self) -> str:
        return (
            f"Deploy {self.source.repo}@{self.source.commit[:12]} as {self.namespace}/{self.name} "
            f"on {self.gpus}× {self.gpu}"
        )

    def params(self) -> dict[str, Any]:
        """What a change runs and its digest covers: the whole object, the exact commit."""
        return {
            "name": self.name,
            "namespace": self.namespace,
            "manifest": self.manifest,
            "source": self.source.to_json(),
            "gpu": self.gpu,
            "gpus": self.gpus,
            "force": self.force,
        }

    def facts(self) -> dict[str, Any]:
        return {
            "gpu": self.gpu,
            "gpus": self.gpus,
            "max_model_len": self.fit.recommended_max_model_len,
            "replicas": str(self.replicas),
            "storage_uri": self.source.storage_uri,
            "verified": self.source.verified,
        }


@dataclass(frozen=True)
class DryRun:
    """The API server's verdict on applying the object now (``dryRun=All``)."""

    ok: bool
    messages: tuple[str, ...]
    conflicts: tuple[FieldConflict, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "messages": list(self.messages),
            "conflicts": [{"manager": c.manager, "field": c.field} for c in self.conflicts],
        }


@dataclass(frozen=True)
class Preview:
    plan: DeployPlan
    live: dict[str, Any] | None
    diff: str
    changes: list[str] = field(default_factory=list)
    dry_run: DryRun = DryRun(True, ())


@dataclass(frozen=True)
class Overview:
    rows: list[DeploymentView]
    live: dict[str, dict[str, Any]]
    note: str | None = None  # why the cluster could not be read (rows shown from the record)


@dataclass(frozen=True)
class Description:
    view: DeploymentView
    live: dict[str, Any] | None
    events: list[dict[str, Any]]


@dataclass(frozen=True)
class ServedAt:
    view: DeploymentView
    entry: EventView | None  # the last entry in effect
    spec: EventView | None  # the apply or rollback whose spec served
    nothing: str  # why nothing served, when nothing did


def _int_value(key: str, value: str | None) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise UsageError(f"--set {key} needs a whole number, not {value!r}") from None
    if number < 1:
        raise UsageError(f"--set {key} must be at least 1")
    return number


class DeploymentService:
    """Plans and previews deployments; the change kinds run them."""

    def __init__(self, kernel: Kernel, ports: Ports) -> None:
        self._kernel = kernel
        self._ports = ports
        self.settings = kernel.settings
        self.store = DeploymentStore(kernel.db, kernel.clock)
        self.deprecation: DeprecationCheck = ports.model_deprecation
        """Why the catalog deprecates a model (the ``model_deprecation`` port), or None."""
        self.canary: Any = None
        """The ``deployment_canary`` port (:mod:`.canary`), set by the wiring."""

    def weights_in_use(self, repo_id: str, commit: str, location: str) -> list[str]:
        """The ``weights_in_use`` port: deployments serving (or stopped on) these weights."""
        return self.store.deployed_by(repo_id, commit, location)

    def weights_installed(self, repo_id: str, commit: str, location: str) -> bool:
        return any(
            s.location == location and s.commit == commit
            for s in self._ports.installed_weights(repo_id, commit)
        )

    def client(self) -> KubeClient:
        """The cluster's API, keeping a logger's token out of every spec it returns (see
        :mod:`.spec_secrets`)."""
        client = kube_client(self.settings, timeout=self.settings.hub_timeout)
        client.reveal = spec_secrets.revealer(self._ports.reveal_logger_url)
        client.conceal = spec_secrets.conceal
        return client

    def reconcile(self) -> ReconcileReport:
        """The daemon's pass over every managed InferenceService (see :mod:`.reconcile`)."""
        if not kube_configured(self.settings) and not self.store.all():
            report = ReconcileReport()
            report.errors.append("Kubernetes is not configured")
            return report
        client = self.client()
        try:
            return reconcile(self._kernel, self.store, client)
        finally:
            client.close()

    # -- planning ---------------------------------------------------------------------------
    def plan(self, request: DeployRequest) -> DeployPlan:
        repo, revision = parse_model_ref(request.model)
        policy = namespace_policy(self.settings, request.namespace)
        name = check_name(request.name or default_name(repo))
        replicas = parse_replicas(request.replicas)
        sets = parse_sets(request.sets)
        gpus = request.gpus
        if "tensor-parallel-size" in sets:
            tp = _int_value("tensor-parallel-size", sets["tensor-parallel-size"])
            if gpus is not None and gpus != tp:
                raise UsageError(f"--gpus {gpus} and --set tensor-parallel-size={tp} disagree")
            gpus = tp
        if gpus is not None and gpus < 1:
            raise UsageError("--gpus must be at least 1")
        context = request.context
        if "max-model-len" in sets:
            wanted = sets["max-model-len"]
            if context is not None and parse_context(context) != parse_context(str(wanted)):
                raise UsageError(f"--context {context} and --set max-model-len={wanted} disagree")
            context = str(wanted)
        if context is not None:
            parse_context(context)
        gmu = VLLM_DEFAULT_GPU_MEMORY_UTILIZATION
        if sets.get("gpu-memory-utilization") is not None:
            try:
                gmu = float(str(sets["gpu-memory-utilization"]))
            except ValueError:
                raise UsageError("--set gpu-memory-utilization needs a number in (0, 1]") from None
        quant = sets.get("quantization")
        kv_dtype = sets.get("kv-cache-dtype") or "auto"

        warnings: list[str] = []
        choices = self._choices(request.gpu, gpus, warnings)
        source, config, safetensors = self._source(repo, revision, warnings)
        why = self.deprecation(source.repo, source.commit)
        if why:
            raise ValidationError(f"{source.repo}@{source.commit[:12]} is deprecated: {why}")

        sized: list[SizedGpu] = []
        for choice in choices:
            try:
                result = estimate(
                    config,
                    choice.profile,
                    gpus=gpus,
                    context=context,
                    quant=quant,
                    kv_cache_dtype=kv_dtype,
                    gpu_memory_utilization=gmu,
                    safetensors=safetensors,
                    tensor_parallel=gpus,
                )
                sized.append(SizedGpu(choice, result))
            except UsageError:
                raise
            except ModelariumError as exc:
                sized.append(SizedGpu(choice, error=str(exc)))
        best = recommend(sized)
        if best is None or best.result is None:
            raise ValidationError(self._fits_nowhere(source.repo, sized, context))
        result = best.result
        choice = best.choice
        tp = result.gpus_used or 1  # TP × PP stages, all on one node here
        if best.fits_now is False:
            warnings.append(
                f"no {choice.profile.name} node has {tp} free GPU(s) right now "
                f"({choice.availability()}): the pods will wait until one has"
            )
        if result.recommended_max_model_len < result.model_max_len and context is None:
            warnings.append(
                f"serving {result.recommended_max_model_len:,} of the model's "
                f"{result.model_max_len:,} tokens of context: that is what fits on {tp}× "
                f"{choice.profile.name}"
            )
        arch = None
        if result.architecture:
            arch = self._ports.vllm_architecture(result.architecture)
        args = engine_args(result.flags, arch.engine_args if arch else None, sets)
        product = self._product(choice, warnings)
        manifest = render(
            name=name,
            namespace=policy.name,
            source=source,
            args=args,
            gpus=tp,
            product=product,
            replicas=replicas,
            policy=policy,
        )
        return DeployPlan(
            name=name,
            namespace=policy.name,
            source=source,
            manifest=manifest,
            gpu=choice.profile.name,
            product=product,
            gpus=tp,
            replicas=replicas,
            fit=result,
            policy=policy,
            force=request.force,
            warnings=tuple(warnings),
        )

    def _choices(self, gpu: str | None, gpus: int | None, warnings: list[str]) -> list[GpuChoice]:
        inventory = self._ports.gpu_inventory
        snapshot = inventory.snapshot()
        known = snapshot.choices()
        choices = inventory.choices(gpu, snapshot)
        if known and choices[0].source in ("named", "catalog"):
            types = ", ".join(sorted({c.profile.name for c in known}))
            raise ValidationError(f"no node in the cluster has {gpu} GPUs; GPU types here: {types}")
        if not known:
            warnings.append(
                f"the cluster's GPUs are unknown (Kubernetes: {snapshot.kubernetes}); sized "
                f"against {', '.join(c.profile.name for c in choices)}"
            )
        if gpus is not None:
            wide = [c for c in choices if c.profile.count >= gpus]
            if not wide:
                widest = max(choices, key=lambda c: c.profile.count)
                raise ValidationError(
                    f"--gpus {gpus} is more than any node has: the widest "
                    f"{widest.profile.name} node has {widest.profile.count}"
                )
            choices = wide
        return choices

    @staticmethod
    def _product(choice: GpuChoice, warnings: list[str]) -> str | None:
        """The node selector's value: the GPU feature discovery product label of that type."""
        if choice.source == "kubernetes":
            return choice.profile.product
        if choice.source == "settings":
            warnings.append(
                f"{choice.profile.name} comes from MODELARIUM_GPU_PROFILES (no GPU feature "
                "discovery labels): no node selector, any node with free GPUs may run it"
            )
            return None
        warnings.append(f"no {choice.profile.name} node is known in the cluster")
        return choice.profile.product

    def _installed(self, repo: str, revision: str | None) -> InstalledSnapshot | None:
        """The installed snapshot to serve: on a PVC if any is (mounted, nothing to copy), then
        in a bucket (the storage initializer copies it), else the newest."""
        locations = {loc.name: loc for loc in self.settings.locations}
        best: tuple[tuple[int, int], InstalledSnapshot] | None = None
        for snapshot in self._ports.installed_weights(repo, revision):
            location = locations.get(snapshot.location)
            if location is None:
                continue
            if snapshot.storage_uri is not None:
                if snapshot.config is None:
                    continue
                rank = (1, snapshot.record_id)
            elif not (snapshot.path / "config.json").is_file():
                continue
            else:
                rank = (2 if location.pvc is not None else 0, snapshot.record_id)
            if best is None or rank > best[0]:
                best = (rank, snapshot)
        return best[1] if best else None

    def _source(
        self, repo: str, revision: str | None, warnings: list[str]
    ) -> tuple[ModelSource, dict[str, Any], dict[str, Any] | None]:
        record = self._installed(repo, revision)
        if record is not None and record.storage_uri is not None and record.config is not None:
            # Verified in the bucket (manifest written after every file matched the Hub);
            # KServe's storage initializer reads it with the location's service account.
            source = ModelSource(
                repo, record.revision, record.commit, record.storage_uri, True, record.location,
                None, record.service_account,
            )  # fmt: skip
            if record.service_account is None:
                warnings.append(
                    f"{record.location} names no service_account: the pod reads "
                    f"{record.storage_uri} with the namespace's, which needs the bucket's "
                    "credentials"
                )
            return source, record.config, None
        if record is not None:
            location = next(loc for loc in self.settings.locations if loc.name == record.location)
            config = json.loads((record.path / "config.json").read_text(encoding="utf-8"))
            if location.pvc:
                uri = pvc_uri(location.pvc, location.pvc_path, hf_cache_folder(repo), record.commit)
                source = ModelSource(
                    repo, record.revision, record.commit, uri, True, location.name, str(record.path)
                )
                return source, config, None
            warnings.append(
                f"{repo} is installed in {location.name}, which names no PersistentVolumeClaim "
                '(add "pvc" to it in MODELARIUM_STORAGE_LOCATIONS): the pod downloads it from '
                "the Hub instead, and Modelarium has not verified those bytes"
            )
            uri = hub_uri(repo, record.commit)
            return ModelSource(repo, record.revision, record.commit, uri, False), config, None
        model = self._ports.model_configs(repo, revision)
        if model.config is None:
            raise NotFoundError(f"cannot size {repo}: no config.json in this repo")
        uri = hub_uri(model.repo, model.commit)
        warnings.append(
            f"{repo} is not installed: the pod downloads {uri} itself and Modelarium has not "
            f"verified those bytes (`install {repo}` first to serve verified weights)"
        )
        source = ModelSource(model.repo, model.revision, model.commit, uri, False, None, None)
        return source, model.config, model.safetensors

    @staticmethod
    def _fits_nowhere(repo: str, sized: list[SizedGpu], context: str | None) -> str:
        types = ", ".join(
            f"{s.result.gpus_available}× {s.choice.profile.name}" for s in sized if s.result
        )
        closest = max(
            (s for s in sized if s.result is not None),
            key=lambda s: s.result.max_model_len if s.result else 0,
            default=None,
        )
        want = f" at {parse_context(context):,} tokens" if context else ""
        hint = ""
        if closest is not None and closest.result is not None and closest.result.advice:
            hint = f"; {closest.result.advice[0]}"
        if not types:
            errors = "; ".join(sorted({s.error or "" for s in sized}))
            return f"{repo} cannot be sized for any GPU type here: {errors}"
        return f"{repo} fits none of the GPU types here{want} ({types}){hint}"

    # -- reading the fleet ------------------------------------------------------------------
    def overview(self, namespace: str | None = None) -> Overview:
        """Known deployments with their live state: one list call per namespace."""
        if namespace is not None:
            namespace_policy(self.settings, namespace)  # refuses unknown namespaces
        rows = [r for r in self.store.all() if namespace is None or r.namespace == namespace]
        spaces = (
            [namespace]
            if namespace
            else sorted(
                {
                    *allowed_namespaces(self.settings),
                    *(r.namespace for r in rows if r.state not in GONE),
                }
            )
        )
        live: dict[str, dict[str, Any]] = {}
        note = None
        try:
            client = self.client()
        except ModelariumError as exc:
            return Overview(rows, {}, str(exc))
        try:
            for space in spaces:
                for obj in client.list_inference_services(space, label_selector=MANAGED_SELECTOR):
                    live[f"{space}/{obj['metadata']['name']}"] = obj
        except ModelariumError as exc:
            note = str(exc)
        finally:
            client.close()
        return Overview(rows, live, note)

    def describe(self, name: str, namespace: str | None = None) -> Description:
        """One deployment: the record, the live object, its pods' and its own Warning events."""
        view = self.store.find(name, namespace)
        client = self.client()
        try:
            live = client.get_inference_service(view.namespace, view.name)
            events: list[dict[str, Any]] = []
            if live is not None:
                for pod in client.service_pods(view.namespace, view.name)[:5]:
                    events += client.events(view.namespace, pod["metadata"]["name"], warnings=True)
                events += client.events(
                    view.namespace, view.name, kind="InferenceService", warnings=True
                )
        finally:
            client.close()
        events.sort(key=lambda e: str(e.get("lastTimestamp") or ""))
        return Description(view, live, events[-5:])

    def served_at(self, name: str, namespace: str | None, when: datetime) -> ServedAt:
        """What served at ``when``: the last entry that had taken effect by then."""
        view = self.store.find(name, namespace)
        history = self.store.history(view.id)
        effective = [
            e
            for e in history
            if e.outcome == "succeeded" and e.effective_at is not None and e.effective_at <= when
        ]
        if not effective:
            return ServedAt(view, None, None, "nothing: it was not deployed yet")
        last = effective[-1]
        if last.action in ("stop", "delete", "removed"):
            what = {"stop": "stopped", "delete": "deleted", "removed": "deleted outside Modelarium"}
            return ServedAt(view, last, None, f"nothing: {what[last.action]} since #{last.number}")
        spec = next(
            (e for e in reversed(effective) if e.action in ("apply", "rollback") and e.manifest),
            None,
        )
        return ServedAt(view, last, spec, "")

    # -- preview ----------------------------------------------------------------------------
    def preview(self, plan: DeployPlan, client: KubeClient | None = None) -> Preview:
        """The live object, the diff against it, and the API server's dry-run verdict.

        A cluster that cannot be reached or refuses our credentials raises (nothing can be
        said); a refusal of the object itself (webhook, RBAC, validation, a field another
        manager owns) is the verdict.
        """
        live, verdict = self.check_object(plan.manifest, force=plan.force, client=client)
        return Preview(
            plan,
            live,
            diffs.unified(live, plan.manifest),
            diffs.changes(live, plan.manifest),
            verdict,
        )

    def check_object(
        self, manifest: dict[str, Any], *, force: bool = False, client: KubeClient | None = None
    ) -> tuple[dict[str, Any] | None, DryRun]:
        """(the live object, the dry-run verdict on applying ``manifest`` over it)."""
        meta = manifest["metadata"]
        own = client is None
        kube = client or self.client()
        try:
            live = kube.get_inference_service(meta["namespace"], meta["name"])
            return live, self._dry_run(kube, manifest, live, force)
        finally:
            if own:
                kube.close()

    @staticmethod
    def _dry_run(
        kube: KubeClient, manifest: dict[str, Any], live: dict[str, Any] | None, force: bool
    ) -> DryRun:
        meta = manifest["metadata"]
        if live is not None and not is_managed(live) and not force:
            return DryRun(
                False,
                (
                    f"{meta['namespace']}/{meta['name']} exists and is not managed by "
                    "Modelarium; choose another --name, or --force to take it over",
                ),
            )
        try:
            kube.apply_inference_service(manifest, dry_run=True, force=force)
        except ApplyConflictError as exc:
            return DryRun(False, (str(exc),), tuple(exc.conflicts))
        except (KubernetesUnreachableError, KubernetesNotConfiguredError, KubernetesAuthError):
            raise
        except (ValidationError, ConflictError, ModelariumError) as exc:
            return DryRun(False, (str(exc),))
        return DryRun(True, ("the API server accepts it (server-side dry run)",))


__all__ = [
    "FIT_KEYS",
    "DeployPlan",
    "DeployRequest",
    "DeploymentService",
    "DryRun",
    "Preview",
]
