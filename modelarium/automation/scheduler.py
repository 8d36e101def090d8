"""APScheduler wiring: fire each periodic task on its interval, on the leader only.

Every replica runs the same schedule; only the holder of the ``scheduler`` lease does the work,
and the task ledger refuses a second run of the same tick (see core/scheduling). Missed runs are
coalesced into one, a task never overlaps itself, and a task that raises is recorded and alerted
on by the ledger without disturbing the scheduler or the other tasks.
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from modelarium.core.app import Core
from modelarium.core.logging import get_logger
from modelarium.core.metrics import LEADER, TASK_FAILURES, TASK_RUNS
from modelarium.core.scheduling import Leadership, LeaseManager, tick_of
from modelarium.core.scheduling.tasks import RunOutcome

log = get_logger(__name__)

LEASE_NAME = "scheduler"
LEASE_EXECUTOR = "lease"


class Scheduler:
    def __init__(self, core: Core, holder: str) -> None:
        self.core = core
        settings = core.settings
        self.lease = LeaseManager(
            core.db, core.clock, name=LEASE_NAME, holder=holder, ttl=settings.leader_lease
        )
        self._leadership: Leadership | None = None
        self._lock = threading.Lock()
        self._aps = BackgroundScheduler(
            # Lease renewal has its own thread: tasks that fill the task pool must not starve it
            # (the lease would lapse while this replica still believes it leads).
            executors={
                "default": ThreadPoolExecutor(max_workers=8),
                LEASE_EXECUTOR: ThreadPoolExecutor(max_workers=1),
            },
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                # APScheduler wants a positive whole number of seconds.
                "misfire_grace_time": max(1, math.ceil(settings.misfire_grace)),
            },
            timezone=UTC,
        )
        self._aps.add_listener(self._on_error, EVENT_JOB_ERROR)
        self.started = False
        self._stopping = False
        self.lease_ok = True
        """Whether the last renewal could read and write the lease (False: the database is
        unreachable, or its tables are gone)."""

    @property
    def leadership(self) -> Leadership | None:
        with self._lock:
            return self._leadership

    @property
    def is_leader(self) -> bool:
        return self.leadership is not None

    def start(self) -> None:
        self.core.tasks.sync()
        renew_every = max(0.2, self.core.settings.leader_lease / 3)
        self.renew_lease()
        self._aps.add_job(
            self.renew_lease,
            "interval",
            seconds=renew_every,
            id="__lease__",
            executor=LEASE_EXECUTOR,
            max_instances=1,
            coalesce=True,
        )
        for task in self.core.tasks.tasks.values():
            # Start at the next interval-aligned tick so every replica fires the same ticks.
            first = tick_of(self.core.clock.now(), task.interval)
            self._aps.add_job(
                self.fire,
                "interval",
                seconds=task.interval,
                args=[task.name],
                id=task.name,
                name=task.name,
                start_date=first,
            )
        self._aps.start()
        self.started = True
        self._publish_next_runs()

    def stop(self) -> None:
        if self.started:
            # Let a running task finish and record its outcome (no ledger row left "running");
            # the lease is released only afterwards so no other replica overlaps it. While
            # stopping, finishing tasks must not call back into the scheduler (its lock is held).
            self._stopping = True
            self._aps.shutdown(wait=True)
            self.started = False
        if self.is_leader:
            try:
                self.lease.release()
            except Exception as exc:  # the database is gone: the lease simply expires
                log.warning("scheduler.release_failed", error=type(exc).__name__)
            with self._lock:
                self._leadership = None
            LEADER.set(0)

    def renew_lease(self) -> None:
        try:
            leadership = self.lease.acquire_or_renew()
            self.lease_ok = True
        except Exception:
            log.exception("scheduler.lease_error")
            leadership = None
            self.lease_ok = False
        with self._lock:
            was, self._leadership = self._leadership, leadership
        LEADER.set(1 if leadership else 0)
        if leadership and not was:
            # "fence", not "token": log redaction hides every *token* key.
            log.info("scheduler.leader", holder=leadership.holder, fence=leadership.token)
            self._publish_next_runs()
        elif was and not leadership:
            log.warning("scheduler.lost_leadership", holder=was.holder)

    def health(self) -> tuple[bool, str]:
        """(ok, detail) for /healthz: running, and able to hold or follow the lease."""
        if not self.started:
            return False, "stopped"
        if not self.lease_ok:
            return False, "lease unavailable"
        return True, "leader" if self.is_leader else "standby"

    def fire(self, name: str) -> RunOutcome | None:
        leadership = self.leadership
        if leadership is None:
            return None
        outcome = self.core.tasks.run_tick(name, self.lease, leadership)
        if outcome.ran:
            TASK_RUNS.labels(task=name, status=outcome.status or "?").inc()
            if outcome.status != "ok":
                TASK_FAILURES.labels(task=name).inc()
            log.info(
                "task.run",
                task=name,
                status=outcome.status,
                summary=outcome.summary,
                seconds=round(outcome.duration, 3),
            )
        else:
            log.info("task.skipped", task=name, reason=outcome.summary)
        self._publish_next_runs(only=name)
        return outcome

    def _publish_next_runs(self, only: str | None = None) -> None:
        if not self.started or self._stopping or not self.is_leader:
            return
        for job in self._aps.get_jobs():
            if job.id == "__lease__" or (only and job.id != only):
                continue
            when: datetime | None = job.next_run_time
            try:
                self.core.tasks.set_next_run(job.id, when.astimezone(UTC) if when else None)
            except Exception:
                log.exception("scheduler.next_run_write_failed", task=job.id)

    def _on_error(self, event: JobExecutionEvent) -> None:
        # fire() records task failures itself; reaching here means the wiring failed.
        log.error("scheduler.job_crashed", job=event.job_id, error=repr(event.exception))
