"""Discovery fixtures: a populated fake Hub, a fake Kubernetes with GPU nodes, settings for both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelarium.config import Settings
from modelarium.core.app import Core
from tests.conftest import make_settings
from tests.fakes.hf_hub import FakeHub
from tests.fakes.kubernetes import FakeKubernetes
from tests.unit.discovery.hubdata import populate


@pytest.fixture
def hub(fake_hub: FakeHub) -> FakeHub:
    populate(fake_hub)
    return fake_hub


@pytest.fixture
def settings(tmp_path: Path, database_url: str, hub: FakeHub) -> Settings:
    """Settings pointing at the fake Hub; a short deadline so outage tests stay quick."""
    return make_settings(tmp_path, database_url, hf_endpoint=hub.url, hub_timeout=2.0)


@pytest.fixture
def core(settings: Settings, clock, make_core) -> Iterator[Core]:  # type: ignore[no-untyped-def]
    instance = make_core(settings, clock=clock)
    yield instance
    instance.hub.wait_idle(10)
    instance.gpus.wait_idle(10)


@pytest.fixture
def cluster(fake_k8s: FakeKubernetes) -> FakeKubernetes:
    """Two GPU types: two 8×A100-80GB nodes (one half busy) and one 4×L4 node."""
    fake_k8s.add_gpu_node("gpu-a100-1", product="NVIDIA-A100-SXM4-80GB", count=8)
    fake_k8s.add_gpu_node("gpu-a100-2", product="NVIDIA-A100-SXM4-80GB", count=8)
    fake_k8s.add_gpu_node("gpu-l4-1", product="NVIDIA-L4", count=4)
    fake_k8s.add_node("cpu-1")
    fake_k8s.add_pod("vllm-llama", "serving", node="gpu-a100-1", gpus=4)
    fake_k8s.add_pod("vllm-done", "serving", node="gpu-a100-1", gpus=4, phase="Succeeded")
    fake_k8s.add_pod("vllm-qwen", "serving", node="gpu-l4-1", gpus=1)
    fake_k8s.add_pod("pending", "serving", gpus=8)
    return fake_k8s


@pytest.fixture
def kube_core(
    tmp_path: Path, database_url: str, hub: FakeHub, cluster: FakeKubernetes, clock, make_core
) -> Iterator[Core]:  # type: ignore[no-untyped-def]
    """A core whose GPU inventory comes from the fake cluster."""
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    settings = make_settings(
        tmp_path, database_url, hf_endpoint=hub.url, hub_timeout=2.0, kubeconfig=kubeconfig
    )
    instance = make_core(settings, clock=clock)
    yield instance
    instance.hub.wait_idle(10)
    instance.gpus.wait_idle(10)
