"""A worker killed with SIGKILL at any point of an install: another process finishes it from
the bytes on disk, with correct hashes, fetching (almost) nothing twice. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelarium.core.app import Core
from tests.conftest import make_settings
from tests.fakes.hf_hub import FakeHub
from tests.unit.weights.helpers import (
    MiB,
    add_model,
    assert_installed_like_the_hub,
    location_settings,
    repo_dir,
    served,
)

pytestmark = pytest.mark.slow  # worker processes, SIGKILLed

REPO = Path(__file__).resolve().parents[3]
SIZE = 16 * MiB  # two 8 MiB LFS shards and four small git files


@pytest.fixture
def setup(tmp_path: Path, database_url: str, fake_hub: FakeHub) -> Iterator[tuple[Core, dict]]:
    root = tmp_path / "weights"
    values = {
        "hf_endpoint": fake_hub.url,
        "storage_locations": location_settings(root),
        "job_stale_after": 1.0,
        "job_heartbeat": 0.2,
        "job_max_attempts": 10,
        "download_concurrency": 2,
    }
    settings = make_settings(tmp_path, database_url, **values)
    core = Core(settings)
    core.migrate()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "MODELARIUM_DATA_DIR": str(settings.data_dir),
        "MODELARIUM_DATABASE_URL": database_url,
        "MODELARIUM_LOG_LEVEL": "warning",
        "HF_ENDPOINT": fake_hub.url,
        "MODELARIUM_STORAGE_LOCATIONS": json.dumps(values["storage_locations"]),
        "MODELARIUM_JOB_STALE_AFTER": "1",
        "MODELARIUM_JOB_HEARTBEAT": "0.2",
        "MODELARIUM_JOB_MAX_ATTEMPTS": "10",
        "MODELARIUM_DOWNLOAD_CONCURRENCY": "2",
    }
    yield core, env
    core.close()


def _worker(env: dict, job: int, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.weights.worker", str(job), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _finish(env: dict, job: int) -> str:
    proc = _worker(env, job)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out.decode()
    return out.decode()


def _killed(proc: subprocess.Popen[bytes]) -> None:
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stdout.read().decode() if proc.stdout else ""


def _enqueue(core: Core) -> int:
    plan = core.weights.plan_install("org/m", None)
    request = core.weights.request_install(plan, "U_ADMIN")
    assert request.job is not None
    return request.job.id


def _partial_bytes(root: Path) -> int:
    total = 0
    for path in (repo_dir(root, "org/m") / "blobs").glob("*.incomplete"):
        try:
            total += path.stat().st_size
        except OSError:
            continue
    return total


def _wait(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _on_disk(root: Path) -> int:
    """Bytes of model data kept on disk: verified blobs and partial downloads."""
    total = 0
    for path in (repo_dir(root, "org/m") / "blobs").glob("*"):
        try:
            total += path.stat().st_size
        except OSError:
            continue
    return total


def _check_installed(core: Core, hub: FakeHub, job: int) -> None:
    view = core.jobs.get(job)
    assert view.status == "succeeded", view.error
    root = core.settings.locations[0].path
    assert_installed_like_the_hub(hub, root, "org/m", "main")
    [entry] = core.weights.inventory()
    assert entry.status == "installed"
    assert not list((repo_dir(root, "org/m") / "blobs").glob("*.incomplete"))


def test_killed_during_a_file(setup: tuple[Core, dict], fake_hub: FakeHub) -> None:
    core, env = setup
    add_model(fake_hub, "org/m", size=SIZE)
    total = sum(b.size for b in fake_hub.repo("org/m").head.files.values())
    fake_hub.throttle(4 * MiB)
    job = _enqueue(core)
    proc = _worker(env, job)
    root = core.settings.locations[0].path
    _wait(lambda: _partial_bytes(root) >= 3 * MiB)
    proc.send_signal(signal.SIGKILL)
    _killed(proc)
    kept = _on_disk(root)
    assert _partial_bytes(root) >= 3 * MiB
    fake_hub.throttle(None)
    served(fake_hub)  # let the fake finish with the dead worker's connections
    fake_hub.clear_log()
    out = _finish(env, job)
    assert "2 attempt(s)" in out
    _check_installed(core, fake_hub, job)
    resumed = [r.range for r in fake_hub.log if r.method == "GET" and r.range]
    assert resumed and all(int(r.split("=")[1].rstrip("-")) > 0 for r in resumed)
    refetched = served(fake_hub) - (total - kept)
    print(
        f"\nSIGKILL mid-file: {kept} of {total} bytes kept on disk; the restarted worker "
        f"fetched {total - kept + refetched} bytes, {refetched} of them already on disk"
    )
    assert refetched == 0  # exactly the missing bytes, nothing on disk fetched again


@pytest.mark.parametrize("point", ["after-files:3", "before-activate", "after-snapshot"])
def test_killed_between_steps_refetches_nothing(
    setup: tuple[Core, dict], fake_hub: FakeHub, point: str
) -> None:
    core, env = setup
    env = {**env, "MODELARIUM_DOWNLOAD_CONCURRENCY": "1"}  # files one after the other
    add_model(fake_hub, "org/m", size=SIZE)
    total = sum(b.size for b in fake_hub.repo("org/m").head.files.values())
    job = _enqueue(core)
    _killed(_worker(env, job, "--die", point))
    root = core.settings.locations[0].path
    blobs = repo_dir(root, "org/m") / "blobs"
    [entry] = core.weights.inventory()
    assert entry.status == "installing"  # never shown installed before the record says so
    if point == "after-files:3":
        assert len([p for p in blobs.iterdir() if not p.name.endswith(".incomplete")]) == 3
    snapshots = repo_dir(root, "org/m") / "snapshots"
    assert (point == "after-snapshot") == (snapshots.exists() and any(snapshots.iterdir()))
    kept = _on_disk(root)
    served(fake_hub)
    fake_hub.clear_log()
    _finish(env, job)
    _check_installed(core, fake_hub, job)
    assert served(fake_hub) == total - kept  # only what was missing
    if point != "after-files:3":
        assert kept == total and not [r for r in fake_hub.log if r.method == "GET"]


def test_a_killed_reinstall_resumes_without_redoing_verified_files(
    setup: tuple[Core, dict], fake_hub: FakeHub
) -> None:
    core, env = setup
    env = {**env, "MODELARIUM_DOWNLOAD_CONCURRENCY": "1"}
    add_model(fake_hub, "org/m", size=SIZE)
    files = fake_hub.repo("org/m").head.files
    total = sum(b.size for b in files.values())
    _finish(env, _enqueue(core))
    plan = core.weights.plan_install("org/m", None, force=True)
    request = core.weights.request_install(plan, "U_ADMIN")  # a reinstall needs an approval
    assert request.approval is not None
    core.approvals.decide(request.approval.id, "U_ADMIN2", "approve")
    job = core.changes.get(request.change.change.id).job_id
    served(fake_hub)
    fake_hub.clear_log()
    _killed(_worker(env, job, "--die", "after-files:3"))
    [entry] = core.weights.inventory()
    assert entry.status == "installing"
    first = served(fake_hub)
    fake_hub.clear_log()
    _finish(env, job)
    _check_installed(core, fake_hub, job)
    assert first + served(fake_hub) == total  # each file fetched once by the reinstall
