"""The job queue on PostgreSQL with several real daemon processes claiming from it.

Every stage of the probe job kind writes ``start``/``done`` rows with the pid that ran it
(``daemon_entry.py``), so the tests see exactly which process executed what.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelarium.core.app import Core
from modelarium.core.jobs import JobContext, JobKind
from tests.conftest import make_settings
from tests.integration.daemon.conftest import wait_until
from tests.integration.daemon.daemon_entry import PROBE_JOB, PROBE_STAGES

# Several daemon processes on a wall-clock schedule: these tests share one xdist worker, so
# two sets of daemons never compete for the CPUs at once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("daemons")]

HEARTBEAT = 0.3
STALE_AFTER = 2.0


def _env(workers: int) -> dict[str, str]:
    return {
        "MODELARIUM_JOB_WORKERS": str(workers),
        "MODELARIUM_JOB_HEARTBEAT": f"{HEARTBEAT}s",
        "MODELARIUM_JOB_STALE_AFTER": f"{STALE_AFTER}s",
        "MODELARIUM_LEADER_LEASE": "3s",
        "PROBE_INTERVAL": "3600",
    }


def _enqueuer(tmp_path: Path, url: str) -> Core:
    """The bot's side: a Core that only enqueues (its kind is registered, nobody runs it here)."""
    core = Core(make_settings(tmp_path / "bot", url))
    core.jobs.register(JobKind(PROBE_JOB, PROBE_STAGES, _never, lambda p: f"probe {p}"))
    return core


def _never(_context: JobContext, _stage: str) -> None:
    raise AssertionError("the test process must not run probe jobs")


def _stages(engine: sa.Engine, job_id: int | None = None) -> list[tuple[int, str, str, int]]:
    query = "SELECT job_id, stage, event, pid FROM probe_stages"
    params = {}
    if job_id is not None:
        query += " WHERE job_id = :job"
        params["job"] = job_id
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(query + " ORDER BY id"), params)]


def test_several_processes_share_the_queue_and_run_every_job_exactly_once(
    probe_db, spawn_daemon, postgres_url, tmp_path
):
    daemons = [spawn_daemon(**_env(workers=3)) for _ in range(3)]
    pids = {d.pid for d in daemons}
    core = _enqueuer(tmp_path, postgres_url)
    try:
        for d in daemons:
            wait_until(d.health, 30, "daemon up")
        ids = [
            core.jobs.enqueue(PROBE_JOB, {"n": n, "stage_seconds": 0.02}, created_by="U1").id
            for n in range(60)
        ]
        wait_until(
            lambda: all(v.status == "succeeded" for v in core.jobs.list(limit=100)),
            60,
            "all jobs to succeed",
            interval=0.2,
        )
        views = {v.id: v for v in core.jobs.list(limit=100)}
    finally:
        core.close()

    assert sorted(views) == sorted(ids)
    rows = _stages(probe_db)
    # Every stage of every job started and finished exactly once: no job was claimed twice.
    counts = Counter((job, stage, event) for job, stage, event, _pid in rows)
    expected = {
        (job, stage, event) for job in ids for stage in PROBE_STAGES for event in ("start", "done")
    }
    assert set(counts) == expected
    assert all(n == 1 for n in counts.values()), {k: n for k, n in counts.items() if n > 1}
    # A job runs all its stages in one process, in order.
    for job in ids:
        mine = [(stage, event, pid) for j, stage, event, pid in rows if j == job]
        assert [s for s, e, _ in mine if e == "done"] == list(PROBE_STAGES)
        assert len({pid for _, _, pid in mine}) == 1
    assert all(v.attempts == 1 and v.completed_stages == PROBE_STAGES for v in views.values())
    # The work really was shared between the processes.
    jobs_per_pid = Counter(
        pid for _j, stage, event, pid in rows if stage == "one" and event == "done"
    )
    assert set(jobs_per_pid) <= pids
    assert len(jobs_per_pid) >= 2, jobs_per_pid


def test_a_job_whose_worker_is_sigkilled_resumes_elsewhere_from_its_last_completed_stage(
    probe_db, spawn_daemon, postgres_url, tmp_path
):
    daemons = [spawn_daemon(**_env(workers=1)) for _ in range(3)]
    by_pid = {d.pid: d for d in daemons}
    core = _enqueuer(tmp_path, postgres_url)
    try:
        for d in daemons:
            wait_until(d.health, 30, "daemon up")
        job = core.jobs.enqueue(PROBE_JOB, {"hold": 60}, created_by="U1")
        start = wait_until(
            lambda: [r for r in _stages(probe_db, job.id) if r[1:3] == ("two", "start")],
            20,
            "stage two to start",
        )[0]
        victim = by_pid[start[3]]
        wait_until(lambda: core.jobs.get(job.id).state.get("held"), 5, "the checkpoint")
        running = core.jobs.get(job.id)
        assert running.status == "running"
        assert running.completed_stages == ("one",)

        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(5)
        killed_at = time.monotonic()
        done = wait_until(
            lambda: (v := core.jobs.get(job.id)).done and v, 30, "the job to finish", 0.1
        )
        recovered = time.monotonic() - killed_at
    finally:
        core.close()

    print(f"\njob resumed and finished {recovered:.2f}s after SIGKILL (stale after {STALE_AFTER}s)")
    assert done.status == "succeeded", done.error
    assert done.attempts == 2
    assert done.completed_stages == PROBE_STAGES
    assert done.state["held_by"] == victim.pid, "state checkpointed by the dead worker survived"
    rows = _stages(probe_db, job.id)
    # Stage one completed before the kill and was not run again; stage two started in the
    # victim, never finished there, and was run again (then three) by another process.
    assert [(s, e) for _j, s, e, pid in rows if pid == victim.pid] == [
        ("one", "start"),
        ("one", "done"),
        ("two", "start"),
    ]
    rest = [(s, e, pid) for _j, s, e, pid in rows if pid != victim.pid]
    assert [(s, e) for s, e, _ in rest] == [
        ("two", "start"),
        ("two", "done"),
        ("three", "start"),
        ("three", "done"),
    ]
    assert len({pid for _, _, pid in rest}) == 1
    assert {pid for _, _, pid in rest} <= set(by_pid) - {victim.pid}
    # Reclaimed only once the heartbeat went stale, not before.
    assert recovered >= STALE_AFTER - HEARTBEAT
    assert recovered <= STALE_AFTER + 5
