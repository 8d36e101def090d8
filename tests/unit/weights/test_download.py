"""The downloader against the fake hub: Range resume, hashing while streaming, faults."""

from __future__ import annotations

import threading
import time
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
    UnsafeLocation,
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


def _fetch(
    task: FetchTask,
    *,
    retries: int = 3,
    backoff: float = 0.01,
    cancel: threading.Event | None = None,
) -> Transfer:
    transfer = Transfer(task.file.size)
    cancel = cancel or threading.Event()
    with httpx.Client(follow_redirects=True, headers={"Accept-Encoding": "identity"}) as client:
        Fetcher(client, transfer, cancel, retries=retries, backoff=backoff).fetch(task)
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


# -- lying servers (issue 13, item 2) -------------------------------------------------------------


@pytest.mark.parametrize("resumed", [False, True])
def test_a_short_complete_200_is_a_failure_with_backoff_and_bounded_attempts(
    hub: FakeHub, tmp_path: Path, resumed: bool
) -> None:
    add_model(hub, "org/m")
    task = _task(hub, tmp_path, SHARD)
    if resumed:  # a Range request answered with the file's first MiB as a complete 200
        task.partial.parent.mkdir(parents=True)
        task.partial.write_bytes(hub.blob("org/m", SHARD).content.read(0, 2 * MiB))
    hub.short_response("org/m", SHARD, MiB)
    cancel = threading.Event()
    watchdog = threading.Timer(20, cancel.set)  # the unfixed loop never ends by itself
    watchdog.start()
    started = time.monotonic()
    try:
        with pytest.raises(TransferFailed, match=rf"{SHARD}: _Retry: HTTP 200 of {MiB} bytes"):
            _fetch(task, retries=3, backoff=0.05, cancel=cancel)
    finally:
        watchdog.cancel()
    gets = [r for r in hub.log if r.method == "GET" and r.server == "cdn"]
    assert len(gets) == 4  # the first try and 3 retries
    assert time.monotonic() - started >= 0.05 + 0.1 + 0.2  # backed off between them
    assert not task.final.exists()
    if resumed:  # the bogus answer did not cost the prefix already on disk
        assert task.partial.stat().st_size == 2 * MiB


def test_a_transient_short_200_is_retried_then_the_file_completes(
    hub: FakeHub, tmp_path: Path
) -> None:
    add_model(hub, "org/m")
    hub.short_response("org/m", SHARD, MiB, times=2)
    task = _task(hub, tmp_path, SHARD)
    _fetch(task)
    assert sha256(task.final) == task.file.sha256


def test_a_range_answer_for_other_bytes_is_a_failure(hub: FakeHub, tmp_path: Path) -> None:
    add_model(hub, "org/m")
    task = _task(hub, tmp_path, SHARD)
    size = task.file.size
    task.partial.parent.mkdir(parents=True)
    task.partial.write_bytes(hub.blob("org/m", SHARD).content.read(0, MiB))
    # A 206 that starts right but stops early (its Content-Length agrees with it).
    hub.fail_next(
        206,
        times=None,
        server="cdn",
        headers={"Content-Range": f"bytes {MiB}-{MiB + 10}/{size}"},
        body="012345678",  # sent JSON-encoded: 11 bytes
    )
    with pytest.raises(TransferFailed, match=r"got 'bytes"):
        _fetch(task, retries=2)
    assert task.partial.stat().st_size == MiB


# -- planted files and symlinks (issue 13, item 5) ------------------------------------------------


def test_a_symlink_at_the_partial_path_is_refused_not_followed(
    hub: FakeHub, tmp_path: Path
) -> None:
    add_model(hub, "org/m")
    task = _task(hub, tmp_path / "root", SHARD)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    task.partial.parent.mkdir(parents=True)
    task.partial.symlink_to(victim)
    with pytest.raises(UnsafeLocation, match="symlink"):
        _fetch(task)
    assert victim.read_bytes() == b"precious"
    assert not task.final.exists() and served(hub) == 0


@pytest.mark.parametrize("content", ["right", "wrong"])
def test_a_symlink_in_blobs_is_refused_whatever_it_points_at(
    hub: FakeHub, tmp_path: Path, content: str
) -> None:
    add_model(hub, "org/m")
    task = _task(hub, tmp_path / "root", SHARD)
    elsewhere = tmp_path / "elsewhere"
    data = hub.blob("org/m", SHARD).content.read()
    elsewhere.write_bytes(data if content == "right" else bytes(len(data)))
    task.final.parent.mkdir(parents=True)
    task.final.symlink_to(elsewhere)
    with pytest.raises(UnsafeLocation, match="not a regular file"):
        _fetch(task)
    assert task.final.is_symlink() and served(hub) == 0


@pytest.mark.parametrize("which", ["blobs", "repo"])
def test_a_symlinked_blobs_or_repo_folder_is_refused(
    hub: FakeHub, tmp_path: Path, which: str
) -> None:
    add_model(hub, "org/m")
    task = _task(hub, tmp_path / "root", SHARD)
    outside = tmp_path / "outside"
    outside.mkdir()
    link = task.partial.parent if which == "blobs" else task.partial.parent.parent
    link.parent.mkdir(parents=True)
    link.symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeLocation, match="refusing to write through it"):
        _fetch(task)
    assert list(outside.iterdir()) == []


def test_a_planted_blob_is_hashed_and_replaced_not_trusted(hub: FakeHub, tmp_path: Path) -> None:
    add_model(hub, "org/m")
    task = _task(hub, tmp_path, SHARD)
    task.final.parent.mkdir(parents=True)
    task.final.write_bytes(b"\0" * task.file.size)  # right name, right size, wrong bytes
    _fetch(task)
    assert sha256(task.final) == task.file.sha256
    assert served(hub, "org/m", SHARD) == task.file.size


def test_a_good_existing_blob_is_hashed_and_kept(hub: FakeHub, tmp_path: Path) -> None:
    add_model(hub, "org/m")
    task = _task(hub, tmp_path, SHARD)
    task.final.parent.mkdir(parents=True)
    task.final.write_bytes(hub.blob("org/m", SHARD).content.read())
    transfer = _fetch(task)
    assert served(hub) == 0 and transfer.fetched == 0 and transfer.done == task.file.size
