"""The GPUs Modelarium can place models on: Kubernetes nodes labelled by NVIDIA GPU feature
discovery, plus static profiles from settings for clusters without those labels.

Memory comes from the ``nvidia.com/gpu.memory`` label (MiB as NVML reports it), never from the
marketing size; free GPUs are a node's allocatable ``nvidia.com/gpu`` minus what its
non-terminated pods request, the same arithmetic as ``kubectl describe node``. The Kubernetes
part is cached in the database (``gpu_inventory_ttl``) and kept fresh by the daemon.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from modelarium.config.settings import Settings
from modelarium.core.cache import Cache
from modelarium.core.clients.kubernetes import (
    KubeClient,
    KubernetesUnreachableError,
    kube_client,
    kube_configured,
)
from modelarium.core.clock import Clock
from modelarium.core.errors import ModelariumError, UsageError
from modelarium.core.fit import GPU_CATALOG, GpuProfile, find_gpu, get_gpu, gpu_from_gfd_labels
from modelarium.core.refresh import Fetched, Revalidator

NAMESPACE = "gpus"
KEY = "inventory"
GPU_RESOURCE = "nvidia.com/gpu"
PRODUCT_LABEL = "nvidia.com/gpu.product"
MEMORY_LABEL = "nvidia.com/gpu.memory"
COUNT_LABEL = "nvidia.com/gpu.count"
ACTIVE_PODS = "status.phase!=Succeeded,status.phase!=Failed"
DEFAULT_CATALOG = ("L4", "L40S", "A100-80GB", "H100-80GB")
"""Sized against when the cluster and settings name no GPU: common cloud cards, small to big."""
CATALOG_NODE_GPUS = 8
"""GPUs per node assumed for those catalog cards: the usual 8-GPU cloud machine."""
_MIB = 1024 * 1024
_EXPLICIT_COUNT = re.compile(r"\d\s*[x×*]|[x×*]\s*\d", re.IGNORECASE)


@dataclass(frozen=True)
class GpuNode:
    """One node's GPUs (or one static profile from settings, with ``source="settings"``)."""

    name: str
    gpu: str  # catalog name when known ("A100-80GB"), else the product label
    product: str | None
    memory_mib: int | None
    count: int
    allocatable: int | None = None
    requested: int | None = None
    ready: bool = True
    schedulable: bool = True
    compute_capability: tuple[int, int] | None = None
    source: str = "kubernetes"
    nodes: int = 1  # static profiles stand for this many identical nodes

    @property
    def free(self) -> int | None:
        if self.allocatable is None or self.requested is None:
            return None
        return max(0, self.allocatable - self.requested)

    @property
    def status(self) -> str:
        if not self.ready:
            return "not ready"
        if not self.schedulable:
            return "cordoned"
        return "ready"

    def profile(self) -> GpuProfile | None:
        if not self.memory_mib:
            return None
        return GpuProfile(
            self.gpu,
            self.memory_mib * _MIB,
            max(1, self.count),
            self.product,
            self.compute_capability,
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["free"] = self.free
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GpuNode:
        names = cls.__dataclass_fields__
        values = {k: v for k, v in data.items() if k in names}
        cc = values.get("compute_capability")
        values["compute_capability"] = tuple(cc) if cc else None
        return cls(**values)


@dataclass(frozen=True)
class GpuChoice:
    """A GPU type to size against: its profile (count = GPUs on one node) and availability."""

    profile: GpuProfile
    source: str  # "kubernetes", "settings", "catalog" or "named"
    nodes: int = 0
    total: int | None = None
    free: int | None = None
    free_on_one_node: int | None = None

    @property
    def name(self) -> str:
        return self.profile.name

    def availability(self) -> str:
        if self.source in ("catalog", "named"):
            return f"not in the cluster (sized as {self.profile.count} per node)"
        if self.free is None:
            return f"{self.total or self.profile.count} GPU(s) (free unknown)"
        return f"{self.free} of {self.total} free"


@dataclass(frozen=True)
class GpuInventorySnapshot:
    nodes: tuple[GpuNode, ...]
    kubernetes: str  # "ok", "not configured", or why it failed
    fetched_at: datetime | None = None
    stale: bool = False
    note: str | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def cluster_nodes(self) -> list[GpuNode]:
        return [n for n in self.nodes if n.source == "kubernetes"]

    def choices(self) -> list[GpuChoice]:
        """One choice per GPU type, cluster first, then static profiles."""
        groups: dict[tuple[str, str, int | None], list[GpuNode]] = {}
        for node in self.nodes:
            if node.memory_mib:
                groups.setdefault((node.source, node.gpu, node.memory_mib), []).append(node)
        out: list[GpuChoice] = []
        for (source, _, _), nodes in groups.items():
            widest = max(nodes, key=lambda n: n.count)
            profile = widest.profile()
            assert profile is not None
            free: int | None = None
            free_one: int | None = None
            if source == "kubernetes":
                usable = [n.free for n in nodes if n.ready and n.schedulable]
                if all(f is not None for f in usable):  # unknown is unknown, never 0
                    known = [f for f in usable if f is not None]
                    free, free_one = sum(known), max(known, default=0)
            out.append(
                GpuChoice(
                    profile,
                    source,
                    sum(n.nodes for n in nodes),
                    sum(n.count * n.nodes for n in nodes),
                    free,
                    free_one,
                )
            )
        return out

    def free_summary(self) -> str:
        """ "15/20 GPUs free", saying which counts are unknown instead of counting them as 0
        (static profiles and nodes that report no allocation say nothing about what is free)."""
        types = self.choices()
        known = [c for c in types if c.free is not None]
        unknown = sum(c.total or 0 for c in types if c.free is None)
        parts = []
        if known:
            free = sum(c.free or 0 for c in known)
            parts.append(f"{free}/{sum(c.total or 0 for c in known)} GPUs free")
        if unknown or not known:
            parts.append(
                f"{unknown} GPU(s) free unknown" if known else f"{unknown} GPU(s), free unknown"
            )
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "kubernetes": self.kubernetes,
            "fetched_at": self.fetched_at.isoformat() if self.fetched_at else None,
            "stale": self.stale,
            "note": self.note,
            "warnings": list(self.warnings),
            "nodes": [n.to_json() for n in self.nodes],
        }


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _pod_gpus(pod: Mapping[str, Any]) -> int:
    """GPUs a pod requests: max(sum over containers, largest init container), like the
    scheduler. Extended resources need requests == limits, so a limit alone counts too."""

    def one(container: Mapping[str, Any]) -> int:
        resources = container.get("resources") or {}
        for part in ("requests", "limits"):
            value = _int((resources.get(part) or {}).get(GPU_RESOURCE))
            if value is not None:
                return value
        return 0

    spec = pod.get("spec") or {}
    running = sum(one(c) for c in spec.get("containers") or [])
    init = max((one(c) for c in spec.get("initContainers") or []), default=0)
    return max(running, init)


def nodes_from_cluster(
    nodes: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]
) -> tuple[list[GpuNode], list[str]]:
    """GPU nodes (GFD labels or an ``nvidia.com/gpu`` capacity) with their requested GPUs."""
    requested: dict[str, int] = {}
    for pod in pods:
        node_name = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if node_name and phase not in ("Succeeded", "Failed"):
            requested[node_name] = requested.get(node_name, 0) + _pod_gpus(pod)
    out: list[GpuNode] = []
    warnings: list[str] = []
    for node in nodes:
        meta = node.get("metadata") or {}
        labels: dict[str, str] = meta.get("labels") or {}
        status = node.get("status") or {}
        capacity = _int((status.get("capacity") or {}).get(GPU_RESOURCE))
        allocatable = _int((status.get("allocatable") or {}).get(GPU_RESOURCE))
        has_labels = PRODUCT_LABEL in labels or MEMORY_LABEL in labels
        if not has_labels and not capacity:
            continue  # not a GPU node
        name = str(meta.get("name") or "?")
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        schedulable = not (node.get("spec") or {}).get("unschedulable", False)
        count = _int(labels.get(COUNT_LABEL)) or capacity or 0
        product = labels.get(PRODUCT_LABEL)
        gpu, memory, cc = product or "unknown GPU", None, None
        if has_labels:
            try:
                profile = gpu_from_gfd_labels(labels)
                gpu, memory, cc = (
                    profile.name,
                    round(profile.memory_mib),
                    profile.compute_capability,
                )
            except ModelariumError as exc:
                warnings.append(f"node {name}: {exc}")
        else:
            warnings.append(
                f"node {name} has {capacity} GPU(s) but no GPU feature discovery labels; "
                "describe its GPUs in MODELARIUM_GPU_PROFILES"
            )
        out.append(
            GpuNode(
                name=name,
                gpu=gpu,
                product=product,
                memory_mib=memory,
                count=count,
                allocatable=allocatable if allocatable is not None else count,
                requested=requested.get(name, 0),
                ready=ready,
                schedulable=schedulable,
                compute_capability=cc,
                source="kubernetes",
            )
        )
    out.sort(key=lambda n: n.name)
    return out, warnings


class GpuInventory:
    def __init__(self, settings: Settings, cache: Cache, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._revalidate = Revalidator(
            cache,
            clock,
            label="Kubernetes",
            stale_ttl=settings.hub_stale_ttl,
            deadline=settings.hub_timeout + 5.0,
            unreachable=KubernetesUnreachableError,
        )

    # -- reading --------------------------------------------------------------------------
    def static_nodes(self) -> list[GpuNode]:
        out = []
        for p in self._settings.gpu_profiles:
            known = find_gpu(p.name)
            out.append(
                GpuNode(
                    name=f"{p.name} (settings)",
                    gpu=p.name,
                    product=known.product if known else None,
                    memory_mib=round(p.memory / _MIB),
                    count=p.count,
                    compute_capability=known.compute_capability if known else None,
                    source="settings",
                    nodes=p.nodes,
                )
            )
        return out

    def _fetch(self) -> dict[str, Any]:
        client: KubeClient = kube_client(self._settings, timeout=self._settings.hub_timeout)
        try:
            nodes = client.list_nodes()
            pods = client.list_pods(ACTIVE_PODS)
        finally:
            client.close()
        found, warnings = nodes_from_cluster(nodes, pods)
        return {"nodes": [n.to_json() for n in found], "warnings": warnings}

    def snapshot(self, *, refresh: bool = False) -> GpuInventorySnapshot:
        """Cluster nodes (cached; ``refresh`` reads the API now) plus the static profiles."""
        static = self.static_nodes()
        if not kube_configured(self._settings):
            return GpuInventorySnapshot(tuple(static), "not configured")
        ttl = self._settings.gpu_inventory_ttl
        try:
            if refresh:
                value = self._revalidate.refresh(NAMESPACE, KEY, self._fetch, ttl)
                fetched = Fetched(value, self._clock.now(), cached=False)
            else:
                fetched = self._revalidate.get(NAMESPACE, KEY, self._fetch, ttl)
        except ModelariumError as exc:
            return GpuInventorySnapshot(tuple(static), str(exc))
        nodes = [GpuNode.from_json(n) for n in fetched.value.get("nodes", [])]
        return GpuInventorySnapshot(
            (*nodes, *static),
            "ok" if not fetched.stale else "stale",
            fetched.fetched_at,
            fetched.stale,
            fetched.note,
            tuple(fetched.value.get("warnings", [])),
        )

    def refresh(self) -> GpuInventorySnapshot:
        return self.snapshot(refresh=True)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        return self._revalidate.wait_idle(timeout)

    # -- choosing GPUs to size against ----------------------------------------------------
    def choices(
        self, gpu: str | None = None, snapshot: GpuInventorySnapshot | None = None
    ) -> list[GpuChoice]:
        """The GPU types to size against.

        With ``gpu``: the cluster's or settings' type of that name, else the fit catalog's (or a
        raw size such as ``48GiB``), as a node of 8 unless a count is given (``2xH100``).
        Without: every known type; when the cluster and settings name none, a few common
        catalog cards.
        """
        snap = snapshot or self.snapshot()
        known = snap.choices()
        if gpu is None:
            if known:
                return known
            return [
                GpuChoice(p.with_count(CATALOG_NODE_GPUS), "catalog")
                for p in GPU_CATALOG
                if p.name in DEFAULT_CATALOG
            ]
        wanted = gpu.strip()
        if not wanted:
            raise UsageError("--gpu needs a GPU name, e.g. L4, A100-80GB or 48GiB")
        catalog_match = find_gpu(wanted)
        for choice in known:
            names = {choice.profile.name.lower(), (choice.profile.product or "").lower()}
            same_type = catalog_match is not None and catalog_match.name == choice.profile.name
            if wanted.lower() in names or same_type:
                return [choice]
        profile = get_gpu(wanted)
        if not _EXPLICIT_COUNT.search(wanted):
            profile = profile.with_count(CATALOG_NODE_GPUS)  # "H100" means a node of them
        return [GpuChoice(profile, "named")]
