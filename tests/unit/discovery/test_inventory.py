"""GPU inventory from GPU-feature-discovery node labels through the real kubernetes client,
plus static profiles from settings; cached in the database."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelarium.config.settings import GpuProfileSetting
from modelarium.core.app import Core
from modelarium.core.clock import FakeClock
from modelarium.core.errors import NotFoundError
from modelarium.core.gpus import nodes_from_cluster
from tests.conftest import make_settings
from tests.fakes.kubernetes import FakeKubernetes

GiB = 1024**3


def test_free_gpus_are_allocatable_minus_requests_of_live_pods() -> None:
    nodes = [
        {
            "metadata": {
                "name": "n1",
                "labels": {
                    "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
                    "nvidia.com/gpu.memory": "81559",
                    "nvidia.com/gpu.count": "8",
                },
            },
            "status": {
                "capacity": {"nvidia.com/gpu": "8"},
                "allocatable": {"nvidia.com/gpu": "7"},  # one marked unhealthy
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        },
        {"metadata": {"name": "cpu"}, "status": {"capacity": {"cpu": "8"}}},
        {
            "metadata": {"name": "bare"},
            "spec": {"unschedulable": True},
            "status": {"capacity": {"nvidia.com/gpu": "2"}, "conditions": []},
        },
    ]

    def pod(node: str, phase: str, gpus: int, init: int = 0) -> dict:
        res = {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {}
        spec = {"nodeName": node, "containers": [{"name": "c", "resources": res}]}
        if init:
            spec["initContainers"] = [
                {"name": "i", "resources": {"requests": {"nvidia.com/gpu": str(init)}}}
            ]
        return {"spec": spec, "status": {"phase": phase}}

    pods = [
        pod("n1", "Running", 2),
        pod("n1", "Pending", 1, init=3),  # init container asks for more: 3 count
        pod("n1", "Failed", 4),
        pod("n1", "Succeeded", 4),
    ]
    found, warnings = nodes_from_cluster(nodes, pods)
    assert [n.name for n in found] == ["bare", "n1"]
    h100 = found[1]
    assert (h100.gpu, h100.memory_mib, h100.count) == ("H100-80GB", 81559, 8)
    assert (h100.allocatable, h100.requested, h100.free) == (7, 5, 2)
    assert h100.compute_capability == (9, 0)
    bare = found[0]
    assert bare.memory_mib is None and bare.status == "not ready"
    assert any("no GPU feature discovery labels" in w for w in warnings)


def test_inventory_from_the_cluster(kube_core: Core, cluster: FakeKubernetes) -> None:
    snap = kube_core.gpus.snapshot()
    assert snap.kubernetes == "ok"
    by_name = {n.name: n for n in snap.cluster_nodes}
    assert set(by_name) == {"gpu-a100-1", "gpu-a100-2", "gpu-l4-1"}
    assert (by_name["gpu-a100-1"].requested, by_name["gpu-a100-1"].free) == (4, 4)
    assert by_name["gpu-a100-2"].free == 8
    assert by_name["gpu-l4-1"].free == 3
    types = {c.name: c for c in snap.choices()}
    assert types["A100-80GB"].profile.count == 8
    assert types["A100-80GB"].profile.memory_bytes == 81920 * 1024 * 1024
    assert (types["A100-80GB"].total, types["A100-80GB"].free) == (16, 12)
    assert types["A100-80GB"].free_on_one_node == 8
    assert (types["L4"].total, types["L4"].free) == (4, 3)


def test_inventory_is_cached_then_refreshed(
    kube_core: Core, cluster: FakeKubernetes, clock: FakeClock
) -> None:
    kube_core.gpus.snapshot()
    calls = len(cluster.requests)
    cluster.add_pod("more", "serving", node="gpu-a100-2", gpus=8)
    cached = kube_core.gpus.snapshot()
    assert len(cluster.requests) == calls
    assert {n.name: n.free for n in cached.cluster_nodes}["gpu-a100-2"] == 8
    fresh = kube_core.gpus.snapshot(refresh=True)
    assert {n.name: n.free for n in fresh.cluster_nodes}["gpu-a100-2"] == 0
    # Past the TTL the cached answer is served at once, marked stale, and refreshed behind.
    clock.advance(kube_core.settings.gpu_inventory_ttl + 1)
    stale = kube_core.gpus.snapshot()
    assert stale.stale and stale.kubernetes == "stale"
    assert kube_core.gpus.wait_idle(10)
    assert not kube_core.gpus.snapshot().stale


def test_cluster_outage_serves_the_last_inventory(
    kube_core: Core, cluster: FakeKubernetes, clock: FakeClock
) -> None:
    kube_core.gpus.snapshot()
    clock.advance(kube_core.settings.gpu_inventory_ttl + 1)
    cluster.fail_next(503, count=20)
    kube_core.gpus.snapshot()
    assert kube_core.gpus.wait_idle(10)
    snap = kube_core.gpus.snapshot()
    assert snap.stale and len(snap.cluster_nodes) == 3
    assert snap.note is not None and "Kubernetes" in snap.note
    failed = kube_core.gpus.snapshot(refresh=True)
    assert failed.kubernetes.startswith("Kubernetes is unreachable")


def test_no_cluster_and_static_profiles(
    tmp_path: Path, database_url: str, clock: FakeClock, make_core
) -> None:
    settings = make_settings(
        tmp_path,
        database_url,
        gpu_profiles=[
            GpuProfileSetting(name="A10G", memory=23028 * 1024 * 1024, count=4, nodes=3),
            GpuProfileSetting(name="lab-48g", memory=48 * GiB, count=2),
        ],
    )
    core = make_core(settings, clock=clock, migrate=False)
    snap = core.gpus.snapshot()
    assert snap.kubernetes == "not configured"
    types = {c.name: c for c in snap.choices()}
    assert types["A10G"].profile.count == 4 and types["A10G"].total == 12
    assert types["A10G"].free is None and types["A10G"].source == "settings"
    assert types["A10G"].profile.compute_capability == (8, 6)  # known to the catalog
    assert types["lab-48g"].profile.memory_bytes == 48 * GiB
    # --gpu picks a configured type by name, else the fit catalog, else fails clearly.
    assert core.gpus.choices("lab-48g")[0].source == "settings"
    assert core.gpus.choices("a10g")[0].source == "settings"
    assert core.gpus.choices("H100")[0].source == "named"
    with pytest.raises(NotFoundError, match="unknown GPU"):
        core.gpus.choices("Voodoo5")


def test_without_any_gpu_the_catalog_is_used(core: Core) -> None:
    choices = core.gpus.choices()
    assert [c.name for c in choices] == ["L4", "L40S", "A100-80GB", "H100-80GB"]
    assert all(c.source == "catalog" and c.profile.count == 8 for c in choices)


def test_bad_kubeconfig_is_one_line(
    tmp_path: Path, database_url: str, clock: FakeClock, make_core
) -> None:
    settings = make_settings(tmp_path, database_url, kubeconfig=tmp_path / "missing")
    core = make_core(settings, clock=clock)
    snap = core.gpus.snapshot()
    assert snap.nodes == () and "does not exist" in snap.kubernetes
