"""Installs through the commands and the job runner, against the fake hub, on both databases."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from huggingface_hub import scan_cache_dir, snapshot_download
from prometheus_client import generate_latest

from modelarium.core.app import Core
from modelarium.core.messages import render_plain
from modelarium.core.weights import metrics
from tests.fakes.hf_hub import FakeHub
from tests.unit.weights.helpers import (
    MiB,
    add_model,
    assert_installed_like_the_hub,
    repo_dir,
    run_jobs,
    served,
)

SHARD1 = "model-00001-of-00002.safetensors"


def _metric(name: str, **labels: str) -> float:
    value = metrics.BYTES_DOWNLOADED.labels(**labels)._value.get() if name == "downloaded" else 0
    if name == "verify":
        value = metrics.VERIFY_FAILURES.labels(**labels)._value.get()
    return float(value)


def test_install_verifies_and_activates_in_the_hf_cache_layout(
    core: Core, runner, hub: FakeHub, weights_root: Path
) -> None:
    add_model(hub, "org/m")
    downloaded = _metric("downloaded", location="default")
    reply = runner.execute("install org/m", user="U_ADMIN", channel="C1")
    assert reply.ok, reply.text
    commit = hub.repo("org/m").head.sha
    assert reply.data["commit"] == commit and reply.data["files"] == 6
    assert reply.data["approval"] is None and reply.data["job"] and reply.data["change"]
    [view] = run_jobs(core)
    assert view.status == "succeeded", view.error
    assert view.completed_stages == ("resolve", "reserve", "download", "activate")

    assert_installed_like_the_hub(hub, weights_root, "org/m", "main")
    repo = repo_dir(weights_root, "org/m")
    assert (repo / "refs" / "main").read_text() == commit
    tree = json.loads((repo / "trees" / f"{commit}.json").read_text())
    assert tree["format_version"] == 1 and SHARD1 in tree["files"]
    assert not list(repo.glob("blobs/*.incomplete"))
    # huggingface_hub reads the location as its own cache, offline.
    info = scan_cache_dir(weights_root)
    assert info.warnings == [] and [r.repo_id for r in info.repos] == ["org/m"]
    hub.clear_log()
    path = snapshot_download("org/m", cache_dir=weights_root, local_files_only=True)
    assert path == str(repo / "snapshots" / commit) and hub.log == []

    [entry] = core.weights.inventory()
    assert (entry.status, entry.pinned, entry.deployed_by) == ("installed", False, ())
    total = sum(b.size for b in hub.repo("org/m").head.files.values())
    assert entry.size == total
    assert _metric("downloaded", location="default") - downloaded == total
    card = render_plain(core.notify.get(f"change:{reply.data['change']}")[0])
    assert f"Installed org/m@{commit[:7]} in `default`" in card
    assert core.changes.get(reply.data["change"]).status == "succeeded"
    assert "modelarium_weights_bytes_used" in generate_latest().decode()
    record = core.weights.record(entry.id)
    assert record.reserved_bytes == 0


def test_progress_card_shows_bytes_speed_and_eta(core: Core, runner, hub: FakeHub) -> None:
    add_model(hub, "org/m", size=4 * MiB)
    hub.throttle(4 * MiB)
    core.jobs.progress_interval = 0.0
    change = runner.execute("install org/m", user="U_ADMIN").data["change"]
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            job = core.jobs.list(kind="weights.install")[0]
            if job.progress.get("done"):
                # the change's one living message, as the outbox will deliver it
                seen.append(render_plain(core.notify.get(f"change:{change}")[0]))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        [view] = run_jobs(core)
    finally:
        stop.set()
        watcher.join()
    assert view.status == "succeeded"
    running = [card for card in seen if "ETA" in card]
    assert running, seen
    downloading = [card for card in running if "*download + verify* …" in card]
    assert downloading, running
    assert "MiB /" in downloading[-1] and "/s" in downloading[-1] and "files" in downloading[-1]


def test_a_corrupted_file_fails_the_job_naming_it_and_activates_nothing(
    core: Core, runner, hub: FakeHub, weights_root: Path
) -> None:
    add_model(hub, "org/m")
    hub.corrupt("org/m", SHARD1)
    core.settings.download_concurrency = 1  # files in order: shard 2 after the corrupt shard 1
    failures = _metric("verify", location="default", stage="install")
    runner.execute("install org/m", user="U_ADMIN")
    [view] = run_jobs(core)
    assert view.status == "failed" and view.attempts == 1, view.error
    assert SHARD1 in view.error and "checksum mismatch" in view.error
    repo = repo_dir(weights_root, "org/m")
    assert not (repo / "snapshots").exists() or not any((repo / "snapshots").iterdir())
    assert not (repo / "refs").exists() or not any((repo / "refs").iterdir())
    assert not (repo / "blobs" / hub.blob("org/m", SHARD1).sha256).exists()
    [entry] = core.weights.inventory()
    assert entry.status == "failed" and SHARD1 in (entry.error or "")
    assert _metric("verify", location="default", stage="install") == failures + 1
    # Fixed on the hub: installing again reuses what was verified and fetches the rest.
    # Fixed on the hub: installing again keeps what was verified and fetches the rest; over
    # both attempts only the corrupted file crossed the wire twice.
    hub.corrupt("org/m", SHARD1, enabled=False)
    assert runner.execute("install org/m", user="U_ADMIN").ok
    [view] = run_jobs(core)
    assert view.status == "succeeded"
    shard2 = SHARD1.replace("1-of", "2-of")
    assert served(hub, "org/m", SHARD1) == 2 * hub.blob("org/m", SHARD1).size
    assert served(hub, "org/m", shard2) == hub.blob("org/m", shard2).size


def test_dropped_connections_resume_without_fetching_twice(
    core: Core, runner, hub: FakeHub, weights_root: Path
) -> None:
    add_model(hub, "org/m")
    hub.drop_after("org/m", SHARD1, 512 * 1024, times=3)
    runner.execute("install org/m", user="U_ADMIN")
    [view] = run_jobs(core)
    assert view.status == "succeeded", view.error
    assert_installed_like_the_hub(hub, weights_root, "org/m", "main")
    assert served(hub, "org/m", SHARD1) == hub.blob("org/m", SHARD1).size


def test_reinstall_needs_force_and_an_approval(core: Core, runner, hub: FakeHub) -> None:
    add_model(hub, "org/m")
    runner.execute("install org/m", user="U_ADMIN")
    run_jobs(core)
    again = runner.execute("install org/m", user="U_ADMIN")
    # Idempotent for scripts: asking for what is there is a success that says so.
    assert again.ok and again.data["already_installed"] and "already installed at" in again.text
    assert "--force" in again.text
    forced = runner.execute("install org/m --force", user="U_ADMIN")
    assert forced.ok and forced.data["approval"]
    assert core.jobs.list(active_only=True) == []
    hub.clear_log()
    approved = runner.execute(f"approve {forced.data['approval']}", user="U_ADMIN2")
    assert approved.ok, approved.text
    [view] = run_jobs(core)
    assert view.status == "succeeded"
    assert served(hub, "org/m", SHARD1) == hub.blob("org/m", SHARD1).size  # fetched again
    [entry] = core.weights.inventory()
    assert entry.status == "installed"


def test_big_installs_need_an_approval(core: Core, runner, hub: FakeHub) -> None:
    add_model(hub, "org/big", size=300 * MiB, shards=3)
    reply = runner.execute("install org/big", user="U_ADMIN")
    assert reply.ok and reply.data["approval"] and "approval threshold" in reply.text
    assert core.weights.inventory() == []
    rejected = runner.execute(f"reject {reply.data['approval']}", user="U_ADMIN2")
    assert rejected.ok
    assert core.jobs.list() == [] and core.weights.inventory() == []
    assert core.changes.get(reply.data["change"]).status == "rejected"


def test_cancel_removes_partial_data(core: Core, runner, hub: FakeHub, weights_root: Path) -> None:
    add_model(hub, "org/m", size=8 * MiB)
    hub.throttle(MiB)
    job_id = runner.execute("install org/m", user="U_ADMIN").data["job"]
    worker = threading.Thread(target=run_jobs, args=(core,))
    worker.start()
    blobs = repo_dir(weights_root, "org/m") / "blobs"
    deadline = time.monotonic() + 20
    while not _partial_bytes(blobs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.execute(f"cancel {job_id}", user="U_ADMIN").ok
    worker.join(30)
    assert core.jobs.get(job_id).status == "cancelled"
    assert not repo_dir(weights_root, "org/m").exists()
    assert core.weights.inventory() == []
    # A queued install cancelled before any worker took it leaves nothing either.
    job_id = runner.execute("install org/m", user="U_ADMIN").data["job"]
    assert runner.execute(f"cancel {job_id}", user="U_ADMIN").ok
    assert core.weights.inventory() == []


def _partial_bytes(blobs: Path) -> int:
    total = 0
    for path in blobs.glob("*.incomplete"):
        try:
            total += path.stat().st_size
        except OSError:
            continue
    return total


def test_two_installs_cannot_count_the_same_free_bytes(
    core: Core, runner, hub: FakeHub, weights_root: Path, settings
) -> None:
    location = settings.storage_locations[0]
    core.settings.storage_locations[0] = location.model_copy(update={"capacity": 20 * MiB})
    add_model(hub, "org/a", size=12 * MiB, seed=1)
    add_model(hub, "org/b", size=12 * MiB, seed=2)
    hub.throttle(2 * MiB)
    first = runner.execute("install org/a", user="U_ADMIN")
    second = runner.execute("install org/b", user="U_ADMIN")  # both fit, taken one at a time
    assert first.ok and second.ok
    worker = threading.Thread(target=lambda: core.jobs.run(core.jobs.claim("w1"), "w1"))
    worker.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        record = core.weights.matching("org/a")[0]
        if record.reserved_bytes:
            break
        time.sleep(0.05)
    assert record.reserved_bytes >= 12 * MiB - MiB
    [view] = run_jobs(core)  # org/b: the free bytes are promised to org/a
    assert view.status == "failed"
    assert "not enough space" in view.error and "reserved by other installs" in view.error
    hub.throttle(None)
    worker.join(30)
    assert core.jobs.get(first.data["job"]).status == "succeeded"
    third = runner.execute("install org/b", user="U_ADMIN")
    assert not third.ok and "not enough space" in third.text


def test_revisions_share_blobs(core: Core, runner, hub: FakeHub, weights_root: Path) -> None:
    add_model(hub, "org/m")
    old = hub.repo("org/m").head.sha
    new = hub.commit("org/m", {"config.json": b'{"model_type": "llama", "v": 2}'})
    runner.execute(f"install org/m@{old}", user="U_ADMIN")
    run_jobs(core)
    hub.clear_log()
    runner.execute("install org/m", user="U_ADMIN")
    [view] = run_jobs(core)
    assert view.status == "succeeded"
    assert served(hub) == hub.blob("org/m", "config.json").size  # only what changed
    assert (repo_dir(weights_root, "org/m") / "refs" / "main").read_text() == new
    revisions = {v.commit: v for v in core.weights.inventory()}
    assert set(revisions) == {old, new}
    proposal = core.changes.propose(
        "weights.purge", {"location": "default", "select": [f"org/m@{old}"]}, "U_ADMIN"
    )
    assert proposal.approval is None
    [job] = run_jobs(core)
    assert job.status == "succeeded", job.error
    result = core.changes.get(proposal.change.id).result
    assert result["removed"] == [f"org/m@{old}"]
    assert result["freed"] == hub.blob("org/m", "config.json", old).size
    assert_installed_like_the_hub(hub, weights_root, "org/m", new)


def test_inventory_lists_orphans_both_ways(
    core: Core, runner, hub: FakeHub, weights_root: Path
) -> None:
    add_model(hub, "org/m")
    add_model(hub, "org/gone", seed=3)
    for name in ("org/m", "org/gone"):
        runner.execute(f"install {name}", user="U_ADMIN")
    run_jobs(core)
    gone = repo_dir(weights_root, "org/gone")
    for blob in (gone / "blobs").iterdir():
        blob.unlink()
    stray = weights_root / "models--someone--else" / "snapshots" / ("e" * 40)
    stray.mkdir(parents=True)
    (weights_root / "models--someone--else" / "blobs").mkdir()
    (
        weights_root / "models--someone--else" / "blobs" / ("f" * 64 + ".deadbeef.incomplete")
    ).write_bytes(b"x" * 100)
    reply = runner.execute("weights --status orphaned", user="U_VIEWER")
    assert reply.ok
    rows = {(w["repo"], w["note"]) for w in reply.data["weights"]}
    assert ("org/gone", "6 of 6 file(s) missing on disk") in rows
    assert ("someone/else", "snapshot on disk that no record owns") in rows
    assert any(repo == "someone/else" and "abandoned partial" in note for repo, note in rows)
    assert "org/m" not in {w["repo"] for w in reply.data["weights"]}
    listing = runner.execute("weights", user="U_VIEWER")
    assert "deployed by" in listing.text and "—" in listing.text


def test_pins_protect_from_purges(core: Core, runner, hub: FakeHub, clock) -> None:
    add_model(hub, "org/m")
    runner.execute("install org/m", user="U_ADMIN")
    run_jobs(core)
    core.settings.storage_locations[0] = core.settings.storage_locations[0].model_copy(
        update={"max_age": 3600}
    )
    clock.advance(7200)
    assert runner.execute("pin org/m", user="U_ADMIN").ok
    assert runner.execute("weights --pinned", user="U_ADMIN").data["total"] == 1
    plan = runner.execute("purge --dry-run", user="U_ADMIN")
    assert plan.data["plans"][0]["items"] == [] and "1 pinned" in plan.text
    again = runner.execute("pin org/m", user="U_ADMIN")
    assert again.ok and again.data["changed"] == 0
    assert again.text.startswith("Nothing to do: org/m@") and "is already pinned" in again.text
    unpinned = runner.execute("unpin org/m", user="U_ADMIN")
    assert unpinned.ok and unpinned.data["changed"] == 1 and "Unpinned" in unpinned.text
    twice = runner.execute("unpin org/m", user="U_ADMIN")
    assert twice.ok and twice.data["changed"] == 0
    assert twice.text.startswith("Nothing to do:") and "is not pinned" in twice.text
    plan = runner.execute("purge --dry-run --policy age", user="U_ADMIN")
    assert [i["repo"] for i in plan.data["plans"][0]["items"]] == ["org/m"]
    assert "max age" in plan.text
    missing = runner.execute("pin org/nothing", user="U_ADMIN")
    assert not missing.ok and "not installed" in missing.text


def test_verify_finds_a_damaged_blob_and_install_repairs_it(
    core: Core, runner, hub: FakeHub, weights_root: Path
) -> None:
    add_model(hub, "org/m")
    runner.execute("install org/m", user="U_ADMIN")
    run_jobs(core)
    blob = repo_dir(weights_root, "org/m") / "blobs" / hub.blob("org/m", SHARD1).sha256
    atime = blob.stat().st_atime_ns
    reply = runner.execute("verify org/m", user="U_ADMIN")
    assert reply.ok
    [view] = run_jobs(core)
    assert view.status == "succeeded"
    assert "match the hub's hashes" in render_plain(core.jobs.render(view))
    assert blob.stat().st_atime_ns == atime  # a verification read is not a use (LRU)
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))
    runner.execute("verify org/m", user="U_ADMIN")
    [view] = run_jobs(core)
    assert view.status == "failed" and SHARD1 in view.error
    [entry] = core.weights.inventory()
    assert entry.status == "failed"
    hub.clear_log()
    assert runner.execute("install org/m", user="U_ADMIN").ok  # no --force: it is broken
    [view] = run_jobs(core)
    assert view.status == "succeeded"
    assert served(hub) == hub.blob("org/m", SHARD1).size
    assert_installed_like_the_hub(hub, weights_root, "org/m", "main")


def test_reads_by_a_server_count_as_access_for_lru(
    core: Core, runner, hub: FakeHub, weights_root: Path
) -> None:
    add_model(hub, "org/m")
    runner.execute("install org/m", user="U_ADMIN")
    run_jobs(core)
    assert core.weights.refresh_access() == 0  # written, never read since
    blob = repo_dir(weights_root, "org/m") / "blobs" / hub.blob("org/m", SHARD1).sha256
    stat = blob.stat()
    later = stat.st_mtime + 3 * 86400  # e.g. vLLM loaded it three days later
    os.utime(blob, (later, stat.st_mtime))
    assert core.weights.refresh_access() == 1
    [after] = core.weights.inventory()
    assert after.last_access is not None and after.last_access.timestamp() == pytest.approx(later)


def test_purge_lru_down_to_the_low_watermark_with_approval_above_threshold(
    core: Core, runner, hub: FakeHub, clock, settings
) -> None:
    location = settings.storage_locations[0].model_copy(
        update={"capacity": 100 * MiB, "high_watermark": 0.5, "low_watermark": 0.3}
    )
    core.settings.storage_locations[0] = location
    for i in range(3):
        add_model(hub, f"org/m{i}", size=20 * MiB, seed=i)
        runner.execute(f"install org/m{i}", user="U_ADMIN")
        run_jobs(core)
        clock.advance(600)
    dry = runner.execute("purge --dry-run", user="U_ADMIN")
    [plan] = dry.data["plans"]
    assert [i["repo"] for i in plan["items"]] == ["org/m0", "org/m1"]
    assert plan["bytes"] == sum(i["size"] for i in plan["items"]) > 30 * MiB
    assert "least recently used" in dry.text and len(core.weights.inventory()) == 3

    core.settings.purge_approval_threshold = 10 * MiB
    reply = runner.execute("purge", user="U_ADMIN")
    approval = reply.data["plans"][0]["approval"]
    assert len(core.weights.inventory()) == 3
    decided = runner.execute(f"approve {approval}", user="U_ADMIN2")
    assert decided.ok and decided.data["status"] == "approved"
    assert len(core.weights.inventory()) == 3  # the removal is the daemon's job
    [job] = run_jobs(core)
    assert job.status == "succeeded", job.error
    card = render_plain(core.notify.get(f"change:{reply.data['plans'][0]['change']}")[0])
    assert "Removed 2 revision(s)" in card and "install org/m0@" in card
    assert [v.repo_id for v in core.weights.inventory()] == ["org/m2"]
    assert core.weights.usage().fraction < 0.3


def test_small_purges_run_at_once_and_are_audited(core: Core, runner, hub: FakeHub, clock) -> None:
    core.settings.storage_locations[0] = core.settings.storage_locations[0].model_copy(
        update={"max_age": 60}
    )
    add_model(hub, "org/m")
    runner.execute("install org/m", user="U_ADMIN")
    run_jobs(core)
    clock.advance(120)
    reply = runner.execute("purge --policy age", user="U_ADMIN")
    assert reply.ok and reply.data["plans"][0]["approval"] is None
    [job] = run_jobs(core)
    assert job.status == "succeeded" and job.kind == "weights.purge"
    assert core.weights.inventory() == []
    [entry] = core.audit.query(action="weights.remove")
    assert entry.actor == "U_ADMIN" and entry.target.startswith("org/m@")
    assert entry.params["freed"] > 0


def test_daemon_alerts_and_proposes_a_purge_above_the_watermark(
    core: Core, runner, hub: FakeHub, clock
) -> None:
    from modelarium.automation.tasks import weights as weights_tasks

    core.settings.storage_locations[0] = core.settings.storage_locations[0].model_copy(
        update={"capacity": 36 * MiB, "high_watermark": 0.7, "low_watermark": 0.2}
    )
    core.settings.purge_approval_threshold = MiB
    weights_tasks.register(core)
    for i in range(2):
        add_model(hub, f"org/m{i}", size=16 * MiB, seed=i)
        runner.execute(f"install org/m{i}", user="U_ADMIN")
        run_jobs(core)
    outcome = core.tasks.run_tick("disk_usage", None, None, manual=True)
    assert outcome.status == "ok", outcome.summary
    [alert] = core.alerts.active()
    assert alert.fingerprint == "disk_usage{location=default}" and alert.state == "firing"
    [proposal] = core.approvals.pending()
    assert proposal.action == "weights.purge" and proposal.params["location"] == "default"
    clock.advance(400)
    core.tasks.run_tick("disk_usage", None, None, manual=True)
    assert len(core.approvals.pending()) == 1, "a pending proposal is not repeated"
    assert runner.execute(f"approve {proposal.id}", user="U_ADMIN2").ok
    [job] = run_jobs(core)
    assert job.status == "succeeded", job.error
    clock.advance(400)
    core.tasks.run_tick("disk_usage", None, None, manual=True)
    assert core.alerts.active() == []


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("install", "missing <model>"),
        ("install org/m@", "empty revision"),
        ("install org//m", "not a model id"),
        ("install org/m --location nowhere", "no storage location 'nowhere'"),
        ("purge --policy newest", "--policy must be one of lru, age"),
        ("verify org/m", "not installed"),
    ],
)
def test_bad_input_is_one_line(runner, text: str, error: str) -> None:
    reply = runner.execute(text, user="U_ADMIN")
    assert not reply.ok and error in reply.text
    assert "Traceback" not in reply.text


def test_a_blob_planted_under_its_expected_name_is_not_trusted(
    core: Core, runner, hub: FakeHub, weights_root: Path
) -> None:
    add_model(hub, "org/m")
    blob = hub.blob("org/m", SHARD1)
    planted = repo_dir(weights_root, "org/m") / "blobs" / blob.sha256
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"\0" * blob.size)  # the right name and size, someone else's bytes
    runner.execute("install org/m", user="U_ADMIN")
    [view] = run_jobs(core)
    assert view.status == "succeeded", view.error
    assert_installed_like_the_hub(hub, weights_root, "org/m", "main")


def test_a_symlink_planted_at_a_partial_path_fails_the_install_and_writes_nothing_outside(
    core: Core, runner, hub: FakeHub, weights_root: Path, tmp_path: Path
) -> None:
    add_model(hub, "org/m")
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    blob = hub.blob("org/m", SHARD1)
    runner.execute("install org/m", user="U_ADMIN")
    [record] = core.weights.inventory()
    blobs = repo_dir(weights_root, "org/m") / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{blob.sha256}.{record.id:08x}.incomplete").symlink_to(victim)
    [view] = run_jobs(core)
    assert view.status == "failed" and view.attempts == 1
    assert "is a symlink; refusing to follow it" in view.error
    assert "nothing was activated" in view.error
    assert victim.read_bytes() == b"precious"
    assert not (repo_dir(weights_root, "org/m") / "snapshots").exists()


def _force(runner, hub: FakeHub) -> None:
    forced = runner.execute("install org/m --force", user="U_ADMIN")
    assert forced.ok and forced.data["approval"], forced.text
    assert runner.execute(f"approve {forced.data['approval']}", user="U_ADMIN2").ok


def test_a_reinstall_retried_after_a_checksum_failure_keeps_the_shards_it_verified(
    core: Core, runner, hub: FakeHub, weights_root: Path
) -> None:
    add_model(hub, "org/m")
    shard2 = SHARD1.replace("1-of", "2-of")
    runner.execute("install org/m", user="U_ADMIN")
    run_jobs(core)
    # A reinstall meets a corrupt shard 1 (slow, so shard 2 is verified and replaced first).
    hub.corrupt("org/m", SHARD1)
    hub.throttle(2 * MiB, repo_id="org/m", filename=SHARD1)
    hub.clear_log()
    _force(runner, hub)
    [view] = run_jobs(core)
    assert view.status == "failed" and "checksum mismatch" in view.error
    assert served(hub, "org/m", shard2) == hub.blob("org/m", shard2).size
    # Fixed on the hub, the retry fetches shard 1 and only checks the shard 2 it verified.
    hub.reset_faults()
    hub.clear_log()
    _force(runner, hub)
    [view] = run_jobs(core)
    assert view.status == "succeeded", view.error
    assert served(hub, "org/m", SHARD1) == hub.blob("org/m", SHARD1).size
    assert served(hub, "org/m", shard2) == 0
    assert_installed_like_the_hub(hub, weights_root, "org/m", "main")
    # Once the reinstall is complete, the next --force fetches everything again.
    hub.clear_log()
    _force(runner, hub)
    [view] = run_jobs(core)
    assert view.status == "succeeded"
    assert served(hub, "org/m", shard2) == hub.blob("org/m", shard2).size
