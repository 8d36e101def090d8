"""Deployment fixtures: a fake cluster with GPU nodes (KServe running), a fake Hub, storage
locations (one on a PVC), namespace policies, and a helper that installs weights."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from modelarium.config import Settings
from modelarium.core.app import Core
from modelarium.core.db.models.weights import WeightRecord
from modelarium.core.jobs import JobView, WorkerPool
from tests.conftest import make_settings
from tests.fakes.hf_hub import FakeHub
from tests.fakes.kubernetes import FakeKubernetes
from tests.unit.discovery.hubdata import LLAMA_8B, LLAMA_70B, config

A100 = "NVIDIA-A100-SXM4-80GB"
L4 = "NVIDIA-L4"


@pytest.fixture
def hub(fake_hub: FakeHub) -> FakeHub:
    fake_hub.add_model(
        LLAMA_8B, config=config("llama-3.1-8b-instruct"), safetensors={"BF16": 8_030_261_248}
    )
    fake_hub.add_model(
        LLAMA_70B, config=config("llama-3.1-70b-instruct"), safetensors={"BF16": 70_553_706_496}
    )
    return fake_hub


@pytest.fixture
def cluster(fake_kserve: FakeKubernetes) -> FakeKubernetes:
    fake_kserve.add_gpu_node("a100-1", product=A100, count=8)
    fake_kserve.add_gpu_node("a100-2", product=A100, count=8)
    fake_kserve.add_gpu_node("l4-1", product=L4, count=4)
    return fake_kserve


def namespaces() -> list[dict[str, Any]]:
    return [
        {"name": "dev", "approvals": 0},
        {
            "name": "prod",
            "approvals": 2,
            "runtime": "kserve-vllm",
            "service_account": "vllm",
            "labels": {"team": "ml"},
        },
    ]


@pytest.fixture
def settings(tmp_path: Path, database_url: str, hub: FakeHub, cluster: FakeKubernetes) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        hf_endpoint=hub.url,
        hub_timeout=3.0,
        kubeconfig=cluster.write_kubeconfig(tmp_path / "kubeconfig"),
        storage_locations=[
            {
                "name": "venus",
                "path": str(tmp_path / "venus"),
                "pvc": "models-venus",
                "pvc_path": "hub",
                "min_age": 0,
            },
            {"name": "scratch", "path": str(tmp_path / "scratch"), "min_age": 0},
        ],
        deploy_namespaces=namespaces(),
        admins=["U_ADMIN", "U_ADMIN2", "U_ADMIN3"],
        deploy_ready_timeout=5.0,
    )


def run_jobs(core: Core, limit: int = 10) -> list[JobView]:
    """Run queued jobs in this thread (the daemon's workers would)."""
    pool = WorkerPool(core.jobs, size=1, heartbeat=0.2)
    views = []
    for _ in range(limit):
        view = pool.run_one()
        if view is None:
            break
        views.append(view)
    return views


def install(
    core: Core,
    repo: str,
    *,
    location: str = "venus",
    commit: str = "c0ffee" + "0" * 34,
    revision: str = "main",
    model_config: dict[str, Any] | None = None,
) -> WeightRecord:
    """Record installed weights and put their snapshot (config.json) where the layout says."""
    root = core.weights.location(location).path
    snapshot = root / ("models--" + repo.replace("/", "--")) / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    cfg = model_config if model_config is not None else config("llama-3.1-8b-instruct")
    (snapshot / "config.json").write_text(json.dumps(cfg))
    now = datetime.now(UTC)
    with core.db.transaction() as session:
        record = WeightRecord(
            repo_id=repo,
            revision=revision,
            commit=commit,
            location=location,
            status="installed",
            size_bytes=16 * 2**30,
            file_count=1,
            files=[{"path": "config.json", "size": 10, "blob_id": "0" * 40}],
            created_by="U_ADMIN",
            installed_at=now,
        )
        session.add(record)
        session.flush()
        session.expunge(record)
    return record
