"""The durable job queue: stages, progress, retries with backoff, cancel, stale-worker takeover."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from modelarium.core.app import Core
from modelarium.core.jobs import JobContext, JobFailed, JobKind, JobLost, WorkerPool


class WorkerDied(BaseException):
    """Stands in for the process dying mid-stage: nothing after it runs, nothing is recorded."""


class Kind:
    """A three-stage job kind whose stages are scripted per test."""

    def __init__(self, core: Core, name: str = "test.kind", stages=("a", "b", "c")) -> None:
        self.core = core
        self.name = name
        self.calls: list[tuple[int, str, str]] = []  # (job id, stage, worker)
        self.scripts: dict[str, object] = {}
        self.cancelled: list[tuple[int, dict]] = []
        core.jobs.register(
            JobKind(name, stages, self.run_stage, lambda p: f"test {p}", on_cancel=self.on_cancel)
        )

    def run_stage(self, context: JobContext, stage: str) -> None:
        self.calls.append((context.job_id, stage, context.worker))
        script = self.scripts.get(stage)
        if callable(script):
            script(context)
        elif isinstance(script, list) and script:
            raise script.pop(0)

    def on_cancel(self, context: JobContext) -> None:
        self.cancelled.append((context.job_id, dict(context.state)))

    def stages_run(self, job_id: int) -> list[str]:
        return [stage for job, stage, _ in self.calls if job == job_id]


def _run_next(core: Core, worker: str = "w1"):
    view = core.jobs.claim(worker)
    return None if view is None else core.jobs.run(view, worker)


def test_stages_run_in_order_with_progress_state_and_a_live_job_card(core, clock, sender):
    kind = Kind(core)
    snapshots = []

    def stage_b(context: JobContext) -> None:
        context.checkpoint(commit="abc123")
        context.progress(50, 100, unit="MB", message="downloading", force=True)
        snapshots.append(core.jobs.get(context.job_id))

    kind.scripts["b"] = stage_b
    job = core.jobs.enqueue("test.kind", {"n": 1}, created_by="U1", channel="C0JOBS")
    assert job.status == "queued"
    assert job.stages == ("a", "b", "c")

    done = _run_next(core)
    assert kind.stages_run(job.id) == ["a", "b", "c"]
    assert done.status == "succeeded"
    assert done.completed_stages == ("a", "b", "c")
    assert done.state == {"commit": "abc123"}
    assert done.attempts == 1
    [mid] = snapshots
    assert mid.status == "running"
    assert mid.stage == "b"
    assert mid.completed_stages == ("a",)
    assert mid.progress["done"] == 50
    assert mid.progress["total"] == 100
    assert mid.progress["message"] == "downloading"

    # The card is one chat message, edited in place as the job moves.
    _message, _ref, channel = core.notify.get(f"job:{job.id}")
    assert channel == "C0JOBS"
    core.notify.deliver_pending(sender)
    [card] = sender.messages("C0JOBS")
    assert card.text.startswith(f"✅ Job #{job.id} succeeded")
    assert all(b.label != "Cancel" for b in card.message.all_buttons)


def test_progress_reports_are_throttled(core, clock):
    kind = Kind(core)
    writes = []

    def chatty(context: JobContext) -> None:
        for i in range(100):
            context.progress(i, 100)
        writes.append(core.jobs.get(context.job_id).progress.get("done"))
        clock.advance(core.jobs.progress_interval)
        context.progress(100, 100)
        writes.append(core.jobs.get(context.job_id).progress.get("done"))

    kind.scripts["a"] = chatty
    core.jobs.enqueue("test.kind", {}, created_by="U1")
    _run_next(core)
    assert writes == [0, 100], "only the first report within the interval is written"


def test_a_failing_stage_is_retried_with_exponential_backoff_then_fails(core, clock):
    kind = Kind(core)
    kind.scripts["b"] = [RuntimeError("flaky network")] * 3
    job = core.jobs.enqueue("test.kind", {}, created_by="U1")

    first = _run_next(core)
    assert first.status == "queued"
    assert first.attempts == 1
    assert first.error == "RuntimeError: flaky network"
    assert first.completed_stages == ("a",)
    assert first.run_after == clock.now() + timedelta(seconds=5)
    assert core.jobs.claim("w1") is None, "not before its backoff"
    clock.advance(5)

    second = _run_next(core)
    assert second.status == "queued"
    assert second.attempts == 2
    assert second.run_after == clock.now() + timedelta(seconds=10), "backoff doubles"
    clock.advance(9)
    assert core.jobs.claim("w1") is None
    clock.advance(1)

    third = _run_next(core)
    assert third.status == "failed"
    assert third.attempts == 3
    assert third.error == "RuntimeError: flaky network"
    # Stage a completed once; every retry resumed at b.
    assert kind.stages_run(job.id) == ["a", "b", "b", "b"]
    clock.advance(3600)
    assert core.jobs.claim("w1") is None


def test_a_permanent_failure_is_not_retried(core, clock):
    kind = Kind(core)
    kind.scripts["a"] = [JobFailed("checksum mismatch", retry=False)]
    core.jobs.enqueue("test.kind", {}, created_by="U1")
    done = _run_next(core)
    assert done.status == "failed"
    assert done.attempts == 1
    assert done.error == "checksum mismatch"


def test_cancel_a_queued_job_cleans_up_and_it_never_runs(core, clock, runner):
    kind = Kind(core)
    job = core.jobs.enqueue("test.kind", {}, created_by="U1")
    denied = runner.execute(f"cancel {job.id}", user="U_VIEWER")
    assert not denied.ok
    reply = runner.execute(f"cancel {job.id}", user="U_ADMIN")
    assert reply.ok, reply.text
    assert reply.data["status"] == "cancelled"
    assert kind.cancelled == [(job.id, {})]
    assert core.jobs.claim("w1") is None
    assert kind.calls == []
    again = runner.execute(f"cancel {job.id}", user="U_ADMIN")
    assert not again.ok
    assert "already cancelled" in again.data["error"]


def test_cancel_of_a_queued_job_cannot_race_a_worker_claiming_it(core, clock):
    """Between deciding "nobody runs it" and marking it cancelled, no worker may claim it."""
    kind = Kind(core)
    claimed = []
    job = core.jobs.enqueue("test.kind", {}, created_by="U1")

    def cleanup(context: JobContext) -> None:
        # A worker polls while the canceller is still cleaning up.
        claimed.append(core.jobs.claim("w-racing"))

    core.jobs._kinds["test.kind"] = JobKind(
        "test.kind", ("a", "b", "c"), kind.run_stage, lambda p: "x", on_cancel=cleanup
    )
    result = core.jobs.cancel(job.id, "U_ADMIN")
    assert claimed == [None], "a worker claimed a job that was being cancelled"
    assert result.status == "cancelled"
    assert core.jobs.get(job.id).status == "cancelled"


def test_cancel_a_running_job_stops_it_at_the_next_check(core, clock):
    kind = Kind(core)

    def stage_a(context: JobContext) -> None:
        context.checkpoint(partial="/tmp/x")
        view = core.jobs.cancel(context.job_id, "U_ADMIN")  # someone clicks Cancel
        assert view.status == "running"
        assert view.cancel_requested
        context.check_cancelled()
        raise AssertionError("check_cancelled should have raised")

    kind.scripts["a"] = stage_a
    job = core.jobs.enqueue("test.kind", {}, created_by="U1")
    done = _run_next(core)
    assert done.status == "cancelled"
    assert kind.stages_run(job.id) == ["a"]
    assert kind.cancelled == [(job.id, {"partial": "/tmp/x"})], "cleanup sees the partial state"


def test_a_job_whose_worker_died_is_taken_over_and_resumes_after_its_last_stage(core, clock):
    kind = Kind(core)
    kind.scripts["b"] = [WorkerDied()]
    job = core.jobs.enqueue("test.kind", {}, created_by="U1")

    view = core.jobs.claim("w-dead")
    with pytest.raises(WorkerDied):
        core.jobs.run(view, "w-dead")
    orphan = core.jobs.get(job.id)
    assert orphan.status == "running"
    assert orphan.completed_stages == ("a",)

    assert core.jobs.claim("w-alive") is None, "its heartbeat is still fresh"
    clock.advance(core.jobs.stale_after - 1)
    assert core.jobs.claim("w-alive") is None
    clock.advance(2)
    taken = core.jobs.claim("w-alive")
    assert taken is not None
    assert taken.id == job.id
    assert taken.attempts == 2
    done = core.jobs.run(taken, "w-alive")
    assert done.status == "succeeded"
    assert kind.calls == [
        (job.id, "a", "w-dead"),
        (job.id, "b", "w-dead"),
        (job.id, "b", "w-alive"),
        (job.id, "c", "w-alive"),
    ]
    # The old worker, if it was only paused, can no longer touch the job.
    assert core.jobs.heartbeat(job.id, "w-dead") is False
    with pytest.raises(JobLost):
        JobContext(job.id, {}, {}, core.jobs, "w-dead").checkpoint(x=1)


def test_heartbeats_keep_a_slow_job_from_being_taken_over(core, clock):
    kind = Kind(core)
    stolen = []

    def slow(context: JobContext) -> None:
        for _ in range(5):
            clock.advance(core.jobs.stale_after / 2)
            assert core.jobs.heartbeat(context.job_id, context.worker)
            stolen.append(core.jobs.claim("w-other"))

    kind.scripts["a"] = slow
    core.jobs.enqueue("test.kind", {}, created_by="U1")
    done = _run_next(core)
    assert done.status == "succeeded"
    assert stolen == [None] * 5


def test_a_job_that_keeps_killing_its_worker_is_given_up_after_max_attempts(core, clock):
    kind = Kind(core)
    kind.scripts["a"] = [WorkerDied()] * 10
    job = core.jobs.enqueue("test.kind", {}, created_by="U1", max_attempts=3)
    for attempt in range(1, 4):
        view = core.jobs.claim(f"w{attempt}")
        assert view is not None
        assert view.attempts == attempt
        with pytest.raises(WorkerDied):
            core.jobs.run(view, f"w{attempt}")
        clock.advance(core.jobs.stale_after + 1)
    assert core.jobs.claim("w4") is None, "a poison job must not crash-loop the fleet"
    final = core.jobs.get(job.id)
    assert final.status == "failed"
    assert "3" in final.error
    assert len(kind.calls) == 3


def test_concurrent_workers_claim_every_job_exactly_once(core, clock):
    Kind(core)
    ids = {core.jobs.enqueue("test.kind", {"n": n}, created_by="U1").id for n in range(40)}
    claimed: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker(name: str) -> None:
        barrier.wait()
        while (view := core.jobs.claim(name)) is not None:
            with lock:
                claimed.append(view.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claimed) == sorted(ids), "each job claimed once, none lost"


def test_worker_pool_threads_run_queued_jobs(core, clock):
    kind = Kind(core)
    ids = [core.jobs.enqueue("test.kind", {"n": n}, created_by="U1").id for n in range(6)]
    pool = WorkerPool(core.jobs, size=3, heartbeat=0.05, poll_interval=0.01)
    pool.start()
    try:
        deadline = threading.Event()
        for _ in range(500):
            if all(core.jobs.get(i).status == "succeeded" for i in ids):
                break
            deadline.wait(0.02)
    finally:
        pool.stop()
    assert [core.jobs.get(i).status for i in ids] == ["succeeded"] * 6
    assert sorted(kind.stages_run(i) for i in ids) == [["a", "b", "c"]] * 6


def test_jobs_retry_runs_a_failed_job_again_from_where_it_stopped(core, clock):
    from modelarium.bot.dispatch import CommandRunner
    from modelarium.core.rbac import Role

    runner = CommandRunner(core)
    core.rbac.grant("U_OP", Role.OPERATOR, granted_by="U_ADMIN")
    kind = Kind(core)
    from modelarium.core.errors import ValidationError

    kind.scripts["b"] = [ValidationError("disk full")]  # not retryable: failed at once
    job = core.jobs.enqueue("test.kind", {"n": 1}, created_by="U_OP")
    assert _run_next(core).status == "failed"
    assert kind.stages_run(job.id) == ["a", "b"]

    viewer = runner.execute(f"jobs retry {job.id}", user="U_VIEWER")
    assert not viewer.ok and viewer.outcome == "denied"
    reply = runner.execute(f"jobs retry {job.id}", user="U_OP")
    assert reply.ok, reply.text
    assert "queued again" in reply.text and "after a" in reply.text
    assert core.jobs.get(job.id).status == "queued"
    done = _run_next(core)
    assert done.status == "succeeded" and done.error is None
    assert kind.stages_run(job.id) == ["a", "b", "b", "c"]  # resumed, "a" not run again

    again = runner.execute(f"jobs retry {job.id}", user="U_OP")
    assert not again.ok and again.outcome == "conflict"
    assert f"job #{job.id} cannot be retried: it succeeded; only a failed job can" in again.text
    missing = runner.execute("jobs retry 999", user="U_OP")
    assert not missing.ok and "no job #999" in missing.text
    audited = [
        e for e in core.audit.iter_all() if e.action == "command.jobs.retry" and e.actor == "U_OP"
    ]
    assert [(e.target, e.result) for e in audited] == [
        (str(job.id), "ok"),
        (str(job.id), "error"),
        ("999", "error"),
    ]
