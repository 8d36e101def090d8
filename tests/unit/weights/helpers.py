"""Helpers shared by the weights tests (unit and multi-process)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from modelarium.core.app import Core
from modelarium.core.jobs import JobView, WorkerPool
from tests.fakes.hf_hub import FakeHub, HubRepo

MiB = 1 << 20


def add_model(
    hub: FakeHub, repo_id: str, size: int = 6 * MiB, shards: int = 2, seed: int = 0, **extra: Any
) -> HubRepo:
    """A transformers-style repo: ``shards`` LFS safetensors files plus small git files."""
    return hub.add_generated_model(repo_id, total_bytes=size, shards=shards, seed=seed, **extra)


def location_settings(root: Path, **overrides: Any) -> list[dict[str, Any]]:
    location = {"name": "default", "path": str(root), "capacity": 512 * MiB, "min_age": 0}
    location.update(overrides)
    return [location]


def run_jobs(core: Core, limit: int = 20) -> list[JobView]:
    """Run queued jobs in this thread until none is claimable."""
    pool = WorkerPool(core.jobs, size=1, heartbeat=0.2)
    views = []
    for _ in range(limit):
        view = pool.run_one()
        if view is None:
            break
        views.append(view)
    return views


def repo_dir(root: Path, repo_id: str) -> Path:
    return root / ("models--" + repo_id.replace("/", "--"))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def assert_installed_like_the_hub(hub: FakeHub, root: Path, repo_id: str, revision: str) -> None:
    """Every file of the revision is in the snapshot, linked to a blob with the hub's hashes."""
    commit = hub.repo(repo_id).resolve(revision)
    assert commit is not None
    snapshot = repo_dir(root, repo_id) / "snapshots" / commit.sha
    for path, blob in commit.files.items():
        link = snapshot / path
        assert link.is_symlink(), path
        target = link.resolve()
        assert target.parent.name == "blobs"
        assert target.name == blob.etag
        assert target.stat().st_size == blob.size
        if blob.lfs:
            assert sha256(target) == blob.sha256, path
        else:
            data = target.read_bytes()
            git = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
            assert git == blob.git_oid, path


def served(hub: FakeHub, repo_id: str | None = None, filename: str | None = None) -> int:
    """Bytes the fake hub sent, once its handler threads have recorded them."""
    hub.settle()
    return hub.bytes_served(repo_id, filename)
