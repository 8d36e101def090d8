"""The cache layout helpers and the purge policy engine: pure, no database."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from modelarium.config.settings import StorageLocation
from modelarium.core.weights.layout import (
    RepoFile,
    RepoLayout,
    check_repo_file,
    link_snapshot,
    remove_revision,
    scan_root,
    write_ref,
)
from modelarium.core.weights.policy import Candidate, plan_purge
from modelarium.core.weights.storage import Usage

SHA1 = "a" * 40
SHA256 = "b" * 64
GiB = 1 << 30
NOW = datetime(2026, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../b", "a//b", "a\\b", ""])
def test_unsafe_manifest_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        check_repo_file(RepoFile(path, 1, SHA1))


def test_bad_blob_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="blob id"):
        check_repo_file(RepoFile("x", 1, "../../etc"))
    check_repo_file(RepoFile("sub/x.bin", 1, SHA1, SHA256))


def _blobs(layout: RepoLayout, *files: RepoFile) -> None:
    layout.blobs.mkdir(parents=True, exist_ok=True)
    for file in files:
        layout.blob(file.etag).write_bytes(b"x" * file.size)


def test_snapshot_links_are_relative_and_rebuilt_idempotently(tmp_path: Path) -> None:
    layout = RepoLayout(tmp_path, "org/m")
    files = [RepoFile("config.json", 3, SHA1), RepoFile("sub/w.safetensors", 5, SHA1, SHA256)]
    _blobs(layout, *files)
    link_snapshot(layout, "c" * 40, files)
    link = layout.snapshot("c" * 40) / "sub" / "w.safetensors"
    assert os.readlink(link) == "../../../blobs/" + SHA256
    assert link.read_bytes() == b"xxxxx"
    (layout.snapshot("c" * 40) / "config.json").unlink()
    link_snapshot(layout, "c" * 40, files)  # a crash after the rename: repaired in place
    assert (layout.snapshot("c" * 40) / "config.json").read_bytes() == b"xxx"
    assert not [p for p in layout.dir.iterdir() if p.name.startswith(".staging")]


def test_removing_a_revision_keeps_blobs_others_use(tmp_path: Path) -> None:
    layout = RepoLayout(tmp_path, "org/m")
    shared, only_a, only_b = (
        RepoFile("w.bin", 4, SHA1, SHA256),
        RepoFile("a.json", 2, "1" * 40),
        RepoFile("b.json", 2, "2" * 40),
    )
    _blobs(layout, shared, only_a, only_b)
    link_snapshot(layout, "a" * 40, [shared, only_a])
    link_snapshot(layout, "b" * 40, [shared, only_b])
    write_ref(layout, "main", "a" * 40)
    freed = remove_revision(layout, "a" * 40, keep=set())
    assert freed == 2
    assert not (layout.refs / "main").exists()
    assert layout.blob(SHA256).exists() and not layout.blob("1" * 40).exists()
    [repo] = list(scan_root(tmp_path))
    assert repo.revisions == {"b" * 40: 6}
    remove_revision(layout, "b" * 40, keep=set())
    assert not layout.dir.exists()


def _location(**kw: object) -> StorageLocation:
    values = {"name": "shared", "path": Path("/x"), "high_watermark": 0.8, "low_watermark": 0.6}
    values.update(kw)
    return StorageLocation(**values)  # type: ignore[arg-type]


def _cand(
    i: int, days_idle: float, size: int = 10 * GiB, status: str = "installed", **kw: Any
) -> Candidate:
    return Candidate(
        id=i, repo_id=f"org/m{i}", revision="main", commit=f"{i:040d}", status=status,
        size=size, last_access=NOW - timedelta(days=days_idle), **kw,
    )  # fmt: skip


def test_lru_removes_least_recently_used_until_the_low_watermark() -> None:
    usage = Usage("shared", 100 * GiB, 90 * GiB, 10 * GiB)
    cands = [
        _cand(1, 1),
        _cand(2, 5),
        _cand(3, 3),
        _cand(4, 9, pinned=True),
        _cand(5, 8, deployed_by=("prod/llama",)),
    ]
    plan = plan_purge(_location(), usage, cands, NOW, "lru")
    assert [i.id for i in plan.items] == [2, 3, 1]  # 30 GiB frees 90% -> 60%
    assert plan.bytes == 30 * GiB and plan.shortfall == 0
    assert plan.kept == {"pinned": 1, "deployed by prod/llama": 1}
    assert plan.usage_after == pytest.approx(0.6)


def test_lru_does_nothing_below_the_high_watermark_and_reports_shortfalls() -> None:
    assert plan_purge(_location(), Usage("s", 100, 80, 20), [_cand(1, 9)], NOW, "lru").items == ()
    usage = Usage("shared", 100 * GiB, 95 * GiB, 5 * GiB)
    plan = plan_purge(_location(min_age=3 * 86400), usage, [_cand(1, 1), _cand(2, 4)], NOW, "lru")
    assert [i.id for i in plan.items] == [2]
    assert plan.shortfall == 25 * GiB
    assert plan.kept == {"used recently": 1}


def test_age_policy_and_failed_installs() -> None:
    usage = Usage("shared", 100 * GiB, 10 * GiB, 90 * GiB)
    cands = [_cand(1, 40), _cand(2, 2), _cand(3, 1, status="failed", size=GiB)]
    assert plan_purge(_location(), usage, cands, NOW, "age").items[0].id == 3  # no max age
    plan = plan_purge(_location(max_age=30 * 86400), usage, cands, NOW, "age")
    assert [i.id for i in plan.items] == [3, 1]
    assert "max age" in plan.items[1].reason


def test_usage_of_a_quota_and_of_a_whole_filesystem(tmp_path: Path) -> None:
    from modelarium.core.weights.storage import measure

    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "blob").write_bytes(b"x" * 1000)
    quota = measure(StorageLocation(name="q", path=tmp_path / "q", capacity=4000))
    assert (quota.total, quota.used, quota.free) == (4000, 1000, 3000)
    whole = measure(StorageLocation(name="fs", path=tmp_path / "fs"))
    assert whole.used + whole.free == whole.total and 0 < whole.fraction < 1
