"""The downloader against the fake hub: Range resume, hashing while streaming, faults."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
from huggingface_hub import hf_hub_url

from modelarium.core.weights.download import (
    ChecksumMismatch,
    Fetcher,
    FetchTask,
    Transfer,
    TransferCancelled,
    TransferFailed,
    run_parallel,
)
from modelarium.core.weights.layout import RepoFile, RepoLayout
from tests.fakes.hf_hub import FakeHub
from tests.unit.weights.helpers import MiB, add_model, served, sha256

SHARD = "model-00001-of-00002.safetensors"


def _task(hub: FakeHub, root: Path, path: str, repo_id: str = "org/m") -> FetchTask:
    blob = hub.blob(repo_id, path)
    file = RepoFile(path, blob.size, blob.git_oid, blob.sha256 if blob.lfs else None)
    layout = RepoLayout(root, repo_id)
    commit = hub.repo(repo_id).head.sha
    return FetchTask(
        file,
        hf_hub_url(repo_id, path, revision=commit, endpoint=hub.url),
        layout.incomplete(file.etag, "00000001"),
        layout.blob(file.etag),
    )


def _fetch(task: FetchTask, *, retries: int = 3) -> Transfer:
    transfer = Transfer(task.file.size)
    with httpx.Client(follow_redirects=True, headers={"Accept-Encoding": "identity"}) as client:
        Fetcher(client, transfer, threading.Event(), retries=retries, backoff=0.01).fetch(task)
    return transfer


def test_lfs_file_is_fetched_through_the_cdn_and_verified(hub: FakeHub, tmp_path: Path) -> None:
    add_model(hub, "org/m")
    task = _task(hub, tmp_path, SHARD)
    transfer = _fetch(task)
    assert sha256(task.final) == task.file.sha256
    assert not task.partial.exists()
    assert transfer.fetched == task.file.size == served(hub, "org/m", SHARD)
    assert [r.server for r in hub.log if r.method == "GET"] == ["hub", "cdn"]


def test_regular_file_is_checked_against_its_git_blob_sha1(hub: FakeHub, tmp_path: Path) -> None:
    add_model(hub, "org/m")
    task = _task(hub, tmp_path, "config.json")
    assert task.file.sha256 is None
    _fetch(task)
    assert task.final.read_bytes() == hub.blob("org/m", "config.json").content.read()
    hub.corrupt("org/m", "config.json")
    task.final.unlink()
    with pytest.raises(ChecksumMismatch, match=r"config\.json: git blob sha1 mismatch"):
        _fetch(task)


def test_a_partial_file_is_resumed_with_range(hub: FakeHub, tmp_path: Path) -> None:
    add_model(hub, "org/m")
    task = _task(hub, tmp_path, SHARD)
    content = hub.blob("org/m", SHARD).content
    task.partial.parent.mkdir(parents=True)
    task.partial.write_bytes(content.read(0, 3 * MiB // 2))
    transfer = _fetch(task)
    assert sha256(task.final) == task.file.sha256
    assert served(hub, "org/m", SHARD) == task.file.size - 3 * MiB // 2
    assert transfer.fetched == task.file.size - 3 * MiB // 2
    ranges = [r.range for r in hub.log if r.method == "GET" and r.server == "cdn"]
    assert ranges == [f"bytes={3 * MiB // 2}-"]


def test_a_bad_kept_prefix_is_fetched_again_once_before_failing(
    hub: FakeHub, tmp_path: Path
) -> None:
    add_model(hub, "org/m")
    task = _task(hub, tmp_path, SHARD)
    task.partial.parent.mkdir(parents=True)
    task.partial.write_bytes(b"\0" * MiB)  # e.g. pages a host crash never wrote
    _fetch(task)
    assert sha256(task.final) == task.file.sha256
    assert served(hub, "org/m", SHARD) == task.file.size * 2 - MiB


def test_a_dropped_connection_resumes_where_it_stopped(hub: FakeHub, tmp_path: Path) -> None:
    add_model(hub, "org/m")
    hub.drop_after("org/m", SHARD, MiB, times=2)
    task = _task(hub, tmp_path, SHARD)
    _fetch(task)
    assert sha256(task.final) == task.file.sha256
    assert served(hub, "org/m", SHARD) == task.file.size  # nothing fetched twice
    ranges = [r.range for r in hub.log if r.method == "GET" and r.server == "cdn"]
    assert ranges == [None, f"bytes={MiB}-", f"bytes={2 * MiB}-"]


def test_corruption_is_named_and_nothing_is_kept(hub: FakeHub, tmp_path: Path) -> None:
    add_model(hub, "org/m")
    hub.corrupt("org/m", SHARD)
    task = _task(hub, tmp_path, SHARD)
    with pytest.raises(ChecksumMismatch, match=rf"{SHARD}: sha256 mismatch"):
        _fetch(task)
    assert not task.partial.exists() and not task.final.exists()


def test_server_errors_are_retried_then_reported(hub: FakeHub, tmp_path: Path) -> None:
    add_model(hub, "org/m")
    hub.fail_next(503, times=2, path="*/resolve/*")
    task = _task(hub, tmp_path, SHARD)
    _fetch(task)
    assert task.final.exists()
    hub.fail_next(503, times=None, path="*/resolve/*")
    task.final.unlink()
    with pytest.raises(TransferFailed, match="HTTP 503"):
        _fetch(task, retries=2)


def test_cancel_stops_every_thread_before_returning(hub: FakeHub, tmp_path: Path) -> None:
    add_model(hub, "org/m", size=8 * MiB)
    hub.throttle(2 * MiB)
    tasks = [_task(hub, tmp_path, SHARD), _task(hub, tmp_path, SHARD.replace("1-of", "2-of"))]
    transfer = Transfer(sum(t.file.size for t in tasks))
    cancel = threading.Event()
    ticks = 0

    def tick() -> None:
        nonlocal ticks
        ticks += 1
        if transfer.done > MiB:
            raise RuntimeError("stop")

    with httpx.Client(follow_redirects=True) as client:
        fetcher = Fetcher(client, transfer, cancel, backoff=0.01)
        with pytest.raises(RuntimeError):
            run_parallel(
                fetcher.fetch, tasks, concurrency=2, cancel=cancel, tick=tick, interval=0.05
            )
    assert cancel.is_set() and ticks >= 1
    sizes = [t.partial.stat().st_size for t in tasks]
    assert all(0 < s < t.file.size for s, t in zip(sizes, tasks, strict=True))
    hub.throttle(None)
    with pytest.raises(TransferCancelled):  # a set cancel event stops a fetch at once
        Fetcher(httpx.Client(), transfer, cancel).fetch(tasks[0])
