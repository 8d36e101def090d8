"""The scheduler and its task ledger.

With the hand-moved clock: which replica runs, once per tick, fencing, failures and the
``task_failing`` alert, ``/model status`` and ``/model run``. APScheduler itself runs on wall-clock
time, so its own guarantees (no overlap, coalescing, lease renewal beside busy tasks) are tested
with a real clock and sub-second intervals.
"""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from modelarium.automation.scheduler import Scheduler
from modelarium.core.app import Core
from modelarium.core.db.models.scheduler import Lease, TaskRun
from modelarium.core.jobs import WorkerPool
from modelarium.core.scheduling import TASK_FAILURE_RULE, PeriodicTask, TaskResult, tick_of
from tests.conftest import make_settings
from tests.waiting import eventually

START = datetime(2026, 1, 1, tzinfo=UTC)  # FakeClock's default start


class Probe:
    """A task body that counts its runs and can be told to fail."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.runs: list[datetime | None] = []
        self.failing = False
        self.clock = None

    def __call__(self) -> TaskResult:
        self.runs.append(self.clock.now() if self.clock else None)
        if self.failing:
            raise RuntimeError(f"{self.name} exploded")
        return TaskResult(summary=f"{self.name} ok #{len(self.runs)}")


def _register(core: Core, name: str, interval: float = 60.0) -> Probe:
    probe = Probe(name)
    probe.clock = core.clock
    core.tasks.register(PeriodicTask(name, interval, probe, f"{name} task"))
    return probe


def _advance(clock, seconds: float, *leaders: Scheduler) -> None:
    """Move time as a running daemon sees it: leaders renew every 5 s (lease/3)."""
    while seconds > 0:
        step = min(5.0, seconds)
        clock.advance(step)
        seconds -= step
        for scheduler in leaders:
            scheduler.renew_lease()


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _ledger(core: Core, task: str) -> list[TaskRun]:
    with core.db.transaction() as session:
        return list(
            session.scalars(sa.select(TaskRun).where(TaskRun.task == task).order_by(TaskRun.id))
        )


# -- the ledger and the leader ---------------------------------------------------------------


def test_only_the_leader_runs_a_task_and_only_once_per_tick(core, clock):
    probe = _register(core, "probe_once")
    core.tasks.sync()
    a, b = Scheduler(core, "replica-a"), Scheduler(core, "replica-b")
    a.renew_lease()
    b.renew_lease()
    assert a.is_leader
    assert not b.is_leader

    assert b.fire("probe_once") is None, "a standby does nothing"
    first = a.fire("probe_once")
    assert first.ran
    assert first.status == "ok"
    # The same tick again (a duplicate APScheduler wake-up, a second leader's late fire...)
    _advance(clock, 30, a, b)
    again = a.fire("probe_once")
    assert not again.ran
    assert again.summary == "tick already ran"
    assert len(probe.runs) == 1

    _advance(clock, 30, a, b)  # next interval-aligned tick
    assert a.fire("probe_once").ran
    ticks = [r.tick for r in _ledger(core, "probe_once")]
    assert ticks == [tick_of(START, 60), tick_of(START, 60) + timedelta(seconds=60)]
    assert all(r.holder == "replica-a" for r in _ledger(core, "probe_once"))


def test_tick_of_aligns_every_replica_on_the_same_slots():
    assert tick_of(datetime(2026, 1, 1, 0, 0, 59, 999000, tzinfo=UTC), 60) == datetime(
        2026, 1, 1, 0, 0, tzinfo=UTC
    )
    assert tick_of(datetime(2026, 1, 1, 0, 1, 0, tzinfo=UTC), 60) == datetime(
        2026, 1, 1, 0, 1, tzinfo=UTC
    )
    assert tick_of(datetime(2026, 1, 1, 0, 7, 31, tzinfo=UTC), 300) == datetime(
        2026, 1, 1, 0, 5, tzinfo=UTC
    )


def test_a_leader_that_lost_its_lease_is_fenced_off(core, clock):
    """A paused leader wakes up still believing it leads: its fire must not run the task."""
    probe = _register(core, "probe_fenced")
    ttl = core.settings.leader_lease
    a, b = Scheduler(core, "replica-a"), Scheduler(core, "replica-b")
    a.renew_lease()
    assert a.fire("probe_fenced").ran

    clock.advance(ttl + 1)  # a is paused: no renewals, its lease expires
    b.renew_lease()
    assert b.is_leader
    _advance(clock, 60, b)
    assert a.is_leader, "a has not noticed yet (it was paused)"
    stale = a.fire("probe_fenced")
    assert not stale.ran
    assert stale.summary == "not the leader"
    assert len(probe.runs) == 1

    fresh = b.fire("probe_fenced")
    assert fresh.ran
    runs = _ledger(core, "probe_fenced")
    assert [(r.holder, r.fencing_token) for r in runs] == [("replica-a", 1), ("replica-b", 2)]

    a.renew_lease()  # its next renewal tells it
    assert not a.is_leader


def test_a_failing_task_is_recorded_counted_and_does_not_stop_the_others(core, clock):
    bad = _register(core, "probe_bad")
    good = _register(core, "probe_good")
    bad.failing = True
    scheduler = Scheduler(core, "replica-a")
    scheduler.renew_lease()
    before_failures = _sample("modelarium_task_failures_total", task="probe_bad")
    before_errors = _sample("modelarium_task_runs_total", task="probe_bad", status="error")

    with capture_logs() as logs:
        for _ in range(2):
            bad_outcome = scheduler.fire("probe_bad")
            good_outcome = scheduler.fire("probe_good")
            _advance(clock, 60, scheduler)
    assert bad_outcome.ran
    assert bad_outcome.status == "error"
    assert "RuntimeError: probe_bad exploded" in bad_outcome.summary
    assert good_outcome.status == "ok"
    assert len(good.runs) == 2

    failed = [e for e in logs if e["event"] == "task.failed"]
    assert [e["task"] for e in failed] == ["probe_bad", "probe_bad"]
    assert all(e.get("exc_info") for e in failed), "the traceback is logged"
    assert _sample("modelarium_task_failures_total", task="probe_bad") == before_failures + 2
    assert (
        _sample("modelarium_task_runs_total", task="probe_bad", status="error") == before_errors + 2
    )

    status = {t.name: t for t in core.tasks.status()}
    assert status["probe_bad"].last_status == "error"
    assert status["probe_bad"].consecutive_failures == 2
    assert status["probe_bad"].failures == 2
    assert status["probe_good"].last_status == "ok"
    assert status["probe_good"].consecutive_failures == 0
    errors = [r.error for r in _ledger(core, "probe_bad")]
    assert errors == ["RuntimeError: probe_bad exploded"] * 2

    bad.failing = False
    assert scheduler.fire("probe_bad").status == "ok"
    assert len(bad.runs) == 3
    assert {t.name: t for t in core.tasks.status()}["probe_bad"].consecutive_failures == 0


def test_task_failing_alert_fires_after_n_failures_in_a_row_and_resolves(
    tmp_path, database_url, clock, sender, make_core
):
    settings = make_settings(
        tmp_path, database_url, task_failure_threshold=3, notify_default_channel="C0OPS"
    )
    core = make_core(settings, clock=clock)
    bad = _register(core, "flaky")
    bad.failing = True
    scheduler = Scheduler(core, "replica-a")
    scheduler.renew_lease()
    for _ in range(2):
        scheduler.fire("flaky")
        _advance(clock, 60, scheduler)
    core.notify.deliver_pending(sender)
    assert sender.messages() == [], "two failures are below the threshold"
    assert core.alerts.active() == []

    scheduler.fire("flaky")  # third failure in a row
    core.notify.deliver_pending(sender)
    [posted] = sender.messages("C0OPS")
    assert "Daemon task flaky failed 3 times in a row" in posted.text
    [alert] = core.alerts.active()
    assert alert.rule == TASK_FAILURE_RULE
    assert alert.state == "firing"
    assert alert.labels == {"task": "flaky"}

    _advance(clock, 60, scheduler)
    scheduler.fire("flaky")  # a fourth failure: still one message
    core.notify.deliver_pending(sender)
    assert len(sender.messages()) == 1

    bad.failing = False
    _advance(clock, 60, scheduler)
    scheduler.fire("flaky")
    core.notify.deliver_pending(sender)
    [posted] = sender.messages("C0OPS")
    assert posted.text.startswith("✅ Resolved: task_failing"), posted.text
    assert posted.history, "resolved by editing the message that fired"
    assert core.alerts.active() == []


def test_replicas_starting_together_register_their_tasks_without_crashing(core, database_url):
    """Another replica's startup has inserted the task row but not committed yet; ours must wait
    and update it, not fail on the duplicate (which crashed the slower daemon at startup)."""
    _register(core, "probe_sync", interval=60)
    other = sa.create_engine(database_url)
    errors: list[BaseException] = []

    def sync() -> None:
        try:
            core.tasks.sync()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    try:
        with other.connect() as conn:
            transaction = conn.begin()
            conn.execute(
                sa.text(
                    "INSERT INTO scheduled_tasks (name, interval, description,"
                    " consecutive_failures, runs, failures)"
                    " VALUES ('probe_sync', 30, 'theirs', 0, 0, 0)"
                )
            )
            ours = threading.Thread(target=sync)
            ours.start()
            time.sleep(0.5)  # ours is now waiting for that row
            transaction.commit()
            ours.join(30)
    finally:
        other.dispose()
    assert errors == []
    [task] = [t for t in core.tasks.status() if t.name == "probe_sync"]
    assert (task.interval, task.description) == (60, "probe_sync task")


# -- /model status and /model run ------------------------------------------------------------


def test_model_status_shows_last_run_result_next_run_and_leader(core, clock, runner):
    _register(core, "probe_status", interval=300).failing = False
    bad = _register(core, "probe_broken", interval=60)
    bad.failing = True
    core.tasks.sync()
    scheduler = Scheduler(core, "daemon@host:1:abc")
    scheduler.renew_lease()
    scheduler.fire("probe_status")
    scheduler.fire("probe_broken")
    core.tasks.set_next_run("probe_status", START + timedelta(seconds=300))
    _advance(clock, 90, scheduler)

    reply = runner.execute("status", user="U_ALICE")
    assert reply.ok, reply.text
    data = reply.data
    assert data["database"]["ok"] is True
    assert data["leader"] == {"holder": "daemon@host:1:abc", "token": 1, "live": True}
    tasks = {t["name"]: t for t in data["tasks"]}
    assert tasks["probe_status"]["last_status"] == "ok"
    assert tasks["probe_status"]["last_run_at"] == START.isoformat()
    assert tasks["probe_status"]["next_run_at"] == (START + timedelta(seconds=300)).isoformat()
    assert tasks["probe_broken"]["last_status"] == "error"
    assert tasks["probe_broken"]["consecutive_failures"] == 1
    text = reply.text
    assert "daemon@host:1:abc (token 1)" in text
    assert "probe_status" in text
    assert "1m 30s ago" in text or "1m30s ago" in text, text
    assert "3m 30s from now" in text or "3m30s from now" in text, text
    assert "error (failed: RuntimeError: probe_broken" in text

    clock.advance(core.settings.leader_lease)
    assert runner.execute("status", user="U_ALICE").data["leader"]["live"] is False
    assert (
        "no live daemon holds the scheduler lease" in runner.execute("status", user="U_ALICE").text
    )


def test_model_run_is_admin_only_and_runs_the_task_through_a_job(core, clock, runner):
    probe = _register(core, "probe_manual")
    core.tasks.sync()

    denied = runner.execute("run probe_manual", user="U_ALICE")
    assert not denied.ok
    assert "needs the admin role" in denied.data["error"]
    assert core.jobs.list() == []

    unknown = runner.execute("run nope", user="U_ADMIN")
    assert not unknown.ok
    assert "probe_manual" in unknown.data["error"]

    reply = runner.execute("run probe_manual", user="U_ADMIN", channel="C0OPS")
    assert reply.ok, reply.text
    job = core.jobs.get(reply.data["job_id"])
    assert job.kind == "task.run"
    assert job.status == "queued"
    assert probe.runs == [], "the command only queues; a daemon worker runs it"

    done = WorkerPool(core.jobs, size=0).run_one("w-test")
    assert done.id == job.id
    assert done.status == "succeeded", done.error
    assert done.state["status"] == "ok"
    assert len(probe.runs) == 1
    [run] = _ledger(core, "probe_manual")
    assert run.holder == f"job:{job.id}:w-test"
    assert run.status == "ok"

    probe.failing = True
    clock.advance(1)
    failed_job = runner.execute("run probe_manual", user="U_ADMIN").data["job_id"]
    failed = WorkerPool(core.jobs, size=0).run_one("w-test")
    assert failed.id == failed_job
    assert failed.status == "failed"
    assert failed.attempts == 1, "a task failure is reported, not retried"
    assert "probe_manual exploded" in failed.error


class Gate:
    """A task body that holds its run open until the test lets it finish."""

    def __init__(self, *, only_first: bool = False) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.runs = 0
        self.only_first = only_first  # later runs return at once

    def __call__(self) -> TaskResult:
        self.runs += 1
        first = self.runs == 1
        self.started.set()
        if first or not self.only_first:
            assert self.release.wait(10), "the test never released the task"
        return TaskResult(summary=f"gate ok #{self.runs}")


def _in_thread(target, *args):
    result: list = []
    thread = threading.Thread(target=lambda: result.append(target(*args)), daemon=True)
    thread.start()
    return thread, result


def test_model_run_does_not_start_a_task_the_leader_is_running(core, clock, runner):
    gate = Gate()
    core.tasks.register(PeriodicTask("gated", 60.0, gate, "slow task"))
    core.tasks.sync()
    leader = Scheduler(core, "replica-a")
    leader.renew_lease()
    thread, outcome = _in_thread(leader.fire, "gated")
    assert gate.started.wait(5)

    job_id = runner.execute("run gated", user="U_ADMIN").data["job_id"]
    refused = WorkerPool(core.jobs, size=0).run_one("w-test")
    assert refused.id == job_id
    assert refused.status == "failed"
    assert "gated not started: already running (since 00:00:00 UTC)" in refused.error
    assert gate.runs == 1

    gate.release.set()
    thread.join(5)
    assert outcome[0].ran and outcome[0].status == "ok"
    clock.advance(1)
    runner.execute("run gated", user="U_ADMIN")
    assert WorkerPool(core.jobs, size=0).run_one("w-test").status == "succeeded"
    assert gate.runs == 2


def test_the_scheduler_skips_a_task_a_live_job_runs_but_not_one_whose_job_died(core, clock, runner):
    gate = Gate()
    core.tasks.register(PeriodicTask("gated", 20.0, gate, "slow task"))
    core.tasks.sync()
    leader = Scheduler(core, "replica-a")
    leader.renew_lease()
    runner.execute("run gated", user="U_ADMIN")
    thread, job = _in_thread(WorkerPool(core.jobs, size=0).run_one, "w-test")
    assert gate.started.wait(5)

    _advance(clock, 20, leader)  # the next tick comes while the job still runs (and heartbeats)
    skipped = leader.fire("gated")
    assert not skipped.ran
    assert skipped.summary.startswith("already running")
    assert gate.runs == 1

    # The job's worker stops heartbeating (it died): its run no longer holds the task.
    _advance(clock, core.settings.job_stale_after + 1, leader)
    gate.release.set()  # (here only so the test's thread can end)
    resumed = leader.fire("gated")
    assert resumed.ran and resumed.status == "ok"
    thread.join(5)
    assert job[0].status == "succeeded"


def test_a_resumed_model_run_job_is_not_blocked_by_its_dead_attempt(core, clock, runner):
    gate = Gate(only_first=True)
    core.tasks.register(PeriodicTask("gated", 3600.0, gate, "slow task"))
    core.tasks.sync()
    job_id = runner.execute("run gated", user="U_ADMIN").data["job_id"]
    thread, _ = _in_thread(WorkerPool(core.jobs, size=0).run_one, "w-dies")
    assert gate.started.wait(5)

    # w-dies stops heartbeating; another worker claims the job again and resumes it
    clock.advance(core.settings.job_stale_after + 1)
    resumed = WorkerPool(core.jobs, size=0).run_one("w-resumes")
    assert resumed.id == job_id
    assert resumed.status == "succeeded", resumed.error
    assert gate.runs == 2
    gate.release.set()
    thread.join(5)


# -- APScheduler on wall-clock time ----------------------------------------------------------


@pytest.fixture
def live_core(tmp_path: Path, make_core):
    """SQLite, real clock: APScheduler has no injectable clock."""
    return make_core(
        make_settings(
            tmp_path, f"sqlite:///{tmp_path / 'live.db'}", leader_lease=1.5, misfire_grace="0.5s"
        )
    )


def _sleep_past_boundary(interval: float, offset: float = 0.05) -> None:
    now = time.time()
    time.sleep((now // interval + 1) * interval - now + offset)


def test_live_scheduler_fires_on_aligned_ticks_survives_failures_and_publishes_next_run(
    live_core,
):
    good = _register(live_core, "live_good", interval=0.25)
    bad = _register(live_core, "live_bad", interval=0.25)
    bad.failing = True
    scheduler = Scheduler(live_core, "live")
    scheduler.start()
    try:
        assert scheduler.is_leader
        jobs = {job.id: job for job in scheduler._aps.get_jobs()}
        assert jobs["live_good"].coalesce is True
        assert jobs["live_good"].max_instances == 1
        assert jobs["live_good"].misfire_grace_time == 1, "0.5s rounds up, not down to 0"
        eventually(lambda: len(good.runs) >= 5 and len(bad.runs) >= 5)

        def next_run_published():
            task = {t.name: t for t in live_core.tasks.status()}["live_good"]
            return (
                task.last_run_at is not None
                and task.next_run_at is not None
                and timedelta(0) < task.next_run_at - task.last_run_at <= timedelta(seconds=0.25)
                and task
            )

        published = eventually(next_run_published)
        assert published.next_run_at.timestamp() % 0.25 == 0
    finally:
        scheduler.stop()

    ticks = [r.tick.timestamp() for r in _ledger(live_core, "live_good")]
    assert all(t % 0.25 == 0 for t in ticks), ticks
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert all(gap > 0 and gap % 0.25 == 0 for gap in gaps), f"a tick ran twice: {ticks}"
    # A run that is late on a loaded machine makes the scheduler skip (coalesce) a tick, as
    # documented; a scheduler that lost its ticks would skip most of them.
    assert gaps.count(0.25) >= len(gaps) * 3 // 4, f"ticks were skipped: {ticks}"
    # (stop() does not wait for a run in flight: that one may still say "running")
    bad_runs = [r.status for r in _ledger(live_core, "live_bad")]
    assert bad_runs.count("error") >= 5
    assert set(bad_runs) <= {"error", "running"}
    status = {t.name: t for t in live_core.tasks.status()}
    assert status["live_bad"].failures >= 5
    with live_core.db.transaction() as session:
        lease = session.get(Lease, "scheduler")
        assert lease.expires_at <= datetime.now(UTC), "stop() releases the lease"


def test_live_scheduler_never_overlaps_a_slow_task(live_core):
    running = 0
    peak = 0
    runs = 0
    lock = threading.Lock()

    def slow() -> TaskResult:
        nonlocal running, peak, runs
        with lock:
            running += 1
            runs += 1
            peak = max(peak, running)
        time.sleep(0.55)
        with lock:
            running -= 1
        return TaskResult("slow")

    live_core.tasks.register(PeriodicTask("live_slow", 0.1, slow))
    scheduler = Scheduler(live_core, "live")
    scheduler.start()
    try:
        time.sleep(1.8)
    finally:
        scheduler.stop()
    assert peak == 1
    assert 1 <= runs <= 4, runs  # ~1.8 s / 0.55 s (fewer when the machine is loaded), not 18


def test_live_scheduler_coalesces_missed_runs_into_one(live_core):
    probe = _register(live_core, "live_missed", interval=0.5)
    scheduler = Scheduler(live_core, "live")
    scheduler.start()
    try:
        eventually(lambda: probe.runs)
        scheduler._aps.pause()  # the process is stalled: four ticks go by
        _sleep_past_boundary(0.5)
        paused_runs = len(probe.runs)
        time.sleep(2.0)
        assert len(probe.runs) == paused_runs
        resumed_at = time.time()
        scheduler._aps.resume()
        eventually(lambda: len(probe.runs) > paused_runs)
        time.sleep(0.2)  # uncoalesced catch-up runs would all be due by now
        ran = len(probe.runs) - paused_runs
        # A loaded machine may also reach the next regular tick: each one adds at
        # most one run. Replaying the four missed ticks would add four at once.
        ticks_since = int(time.time() // 0.5) - int(resumed_at // 0.5)
        assert ran <= 1 + ticks_since, "four missed runs became one"
    finally:
        scheduler.stop()


def test_lease_renewal_is_not_starved_by_busy_tasks(live_core):
    """Eight tasks fill the task thread pool; the leader must still renew its lease."""
    release = threading.Event()
    started = threading.Semaphore(0)

    def busy() -> TaskResult:
        started.release()
        release.wait(10)
        return TaskResult("busy")

    for i in range(8):
        live_core.tasks.register(PeriodicTask(f"busy{i}", 0.2, busy))
    scheduler = Scheduler(live_core, "live")
    scheduler.start()
    try:
        for _ in range(8):
            assert started.acquire(timeout=5)
        time.sleep(2 * live_core.settings.leader_lease)  # the lease would have lapsed
        holder, _token, live = live_core.tasks.lease_status("scheduler")
        assert holder == "live"
        assert live, "lease expired while the pool was busy: renewals were starved"
        assert scheduler.is_leader
    finally:
        release.set()
        scheduler.stop()


def test_a_run_that_could_not_start_within_the_misfire_grace_is_dropped(live_core):
    """Eight busy tasks fill the pool; the ninth's due run waits in the queue longer than the
    grace (1 s) and is dropped as missed instead of running late. The task carries on at its
    next tick."""
    from apscheduler.events import EVENT_JOB_MISSED

    release = threading.Event()
    started = threading.Semaphore(0)

    def busy() -> TaskResult:
        started.release()
        release.wait(10)
        return TaskResult("busy")

    for i in range(8):
        live_core.tasks.register(PeriodicTask(f"hog{i}", 0.5, busy))
    late = _register(live_core, "late", interval=0.5)
    scheduler = Scheduler(live_core, "live")
    missed: dict[str, datetime] = {}
    scheduler._aps.add_listener(
        lambda event: missed.setdefault(event.job_id, datetime.now(UTC)), EVENT_JOB_MISSED
    )
    scheduler.start()
    try:
        for _ in range(8):
            assert started.acquire(timeout=5)
        time.sleep(2.0)  # "late" is due, queued behind the hogs, for longer than the grace
        assert late.runs == []
        release.set()
        eventually(lambda: "late" in missed)
        eventually(lambda: late.runs)
        assert all(at >= missed["late"] for at in late.runs), "the overdue run never ran late"
    finally:
        release.set()
        scheduler.stop()
