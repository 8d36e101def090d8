"""Periodic tasks: their ledger in the database and the run of one tick.

Scheduler-agnostic: ``automation/`` decides *when* (APScheduler); this module decides *whether*
(leader, fencing token, first run of this tick) and records *what happened*. A tick is the
interval-aligned slot a run belongs to, identical on every replica, and ``(task, tick)`` is unique
in ``task_runs``, so no tick runs twice however many daemons fire it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from modelarium.core.alerts import AlertRule, AlertService, Observation
from modelarium.core.clock import Clock
from modelarium.core.db.models.jobs import Job
from modelarium.core.db.models.scheduler import Lease, ScheduledTask, TaskRun
from modelarium.core.db.uow import Database
from modelarium.core.errors import NotFoundError
from modelarium.core.logging import get_logger
from modelarium.core.messages import Message
from modelarium.core.notify import NotifyService
from modelarium.core.scheduling.lease import Leadership, LeaseManager

log = get_logger(__name__)

TASK_FAILURE_RULE = "task_failing"


@dataclass
class TaskResult:
    """What a task reports: a one-line summary, alert observations, an optional message."""

    summary: str
    observations: dict[str, list[Observation]] = field(default_factory=dict)
    message: Message | None = None
    kind: str = "task"


@dataclass(frozen=True)
class PeriodicTask:
    name: str
    interval: float
    run: Callable[[], TaskResult]
    description: str = ""


@dataclass(frozen=True)
class TaskStatus:
    name: str
    description: str
    interval: float
    last_run_at: datetime | None
    last_status: str | None
    last_summary: str | None
    next_run_at: datetime | None
    consecutive_failures: int
    runs: int
    failures: int


@dataclass(frozen=True)
class RunOutcome:
    task: str
    ran: bool
    status: str | None = None
    summary: str | None = None
    duration: float = 0.0


def job_holder(job_id: int, worker: str) -> str:
    """The ledger's holder for a run inside job ``job_id`` on ``worker``."""
    return f"job:{job_id}:{worker}"[:128]


def tick_of(when: datetime, interval: float) -> datetime:
    seconds = when.timestamp()
    slot = int(seconds // interval) * interval if interval > 0 else seconds
    return datetime.fromtimestamp(slot, UTC)


class TaskLedger:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        alerts: AlertService,
        notify: NotifyService,
        *,
        failure_threshold: int = 3,
        job_stale_after: float = 30.0,
    ) -> None:
        self._db = db
        self._job_stale_after = job_stale_after
        self._clock = clock
        self._alerts = alerts
        self._notify = notify
        self._tasks: dict[str, PeriodicTask] = {}
        alerts.register(
            AlertRule(
                name=TASK_FAILURE_RULE,
                summary="Daemon task {task} failed {value:.0f} times in a row",
                op=">=",
                threshold=float(failure_threshold),
                severity="warning",
                kind="task",
                label_values=lambda session: {"task": self._known_names(session)},
            )
        )

    @property
    def tasks(self) -> dict[str, PeriodicTask]:
        return dict(self._tasks)

    def register(self, task: PeriodicTask) -> None:
        self._tasks[task.name] = task

    def _known_names(self, session: Session) -> list[str]:
        """Tasks registered here or by any daemon (the bot process registers none itself)."""
        stored = set(session.scalars(sa.select(ScheduledTask.name)))
        return sorted(stored | set(self._tasks))

    def sync(self) -> None:
        """Write the registered tasks to the database so every front can list them.

        Replicas start together, so this is one atomic upsert per task: a read-then-insert would
        let two of them insert the same row and the slower one crash at startup.
        """
        with self._db.transaction() as session:
            dialect = session.get_bind().dialect.name
            insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(
                ScheduledTask
            )
            for task in self._tasks.values():
                session.execute(
                    insert.values(
                        name=task.name, interval=task.interval, description=task.description
                    ).on_conflict_do_update(
                        index_elements=["name"],
                        set_={"interval": task.interval, "description": task.description},
                    )
                )

    def set_next_run(self, name: str, when: datetime | None) -> None:
        with self._db.transaction() as session:
            row = session.get(ScheduledTask, name)
            if row is not None:
                row.next_run_at = when

    def run_tick(
        self,
        name: str,
        lease: LeaseManager | None,
        leadership: Leadership | None,
        *,
        manual: bool = False,
        holder: str | None = None,
    ) -> RunOutcome:
        """Run ``name`` for the current tick if we lead, nobody ran this tick yet and no run of
        it is still going anywhere (a `/model run` job and the scheduler never overlap).

        ``holder`` names a manual run's owner (:func:`job_holder`), so a run whose worker died
        stops counting as going once its job's heartbeat is stale or another worker resumed it.
        """
        task = self._tasks.get(name)
        if task is None:
            raise NotFoundError(f"no task named {name!r}")
        now = self._clock.now()
        tick = now if manual else tick_of(now, task.interval)
        holder = leadership.holder if leadership else (holder or "manual")
        token = leadership.token if leadership else 0
        try:
            with self._db.transaction() as session:
                if (
                    lease is not None
                    and leadership is not None
                    and not lease.still_valid(session, leadership.token)
                ):
                    return RunOutcome(name, ran=False, summary="not the leader")
                # Serialise starts of this task: PostgreSQL row lock; SQLite's BEGIN IMMEDIATE.
                session.execute(
                    sa.select(ScheduledTask.name)
                    .where(ScheduledTask.name == name)
                    .with_for_update()
                )
                going = self._run_in_progress(session, name, now)
                if going is not None:
                    since = going.started_at.strftime("%H:%M:%S")
                    return RunOutcome(
                        name, ran=False, summary=f"already running (since {since} UTC)"
                    )
                run = TaskRun(
                    task=name,
                    tick=tick,
                    holder=holder,
                    fencing_token=token,
                    status="running",
                    started_at=now,
                )
                session.add(run)
                session.flush()
                run_id = run.id
        except IntegrityError:
            return RunOutcome(name, ran=False, summary="tick already ran")

        started = time.monotonic()
        try:
            result = task.run()
            status, error = "ok", None
        except Exception as exc:
            log.exception("task.failed", task=name)
            result = TaskResult(summary=f"failed: {type(exc).__name__}: {exc}"[:500])
            status, error = "error", f"{type(exc).__name__}: {exc}"[:2000]
        duration = time.monotonic() - started
        failures = self._record(run_id, name, status, result.summary, error)
        self._alerts.evaluate(
            TASK_FAILURE_RULE,
            [Observation(TASK_FAILURE_RULE, failures, {"task": name})],
            complete=False,
        )
        for rule, observations in result.observations.items():
            try:
                self._alerts.evaluate(rule, observations)
            except Exception:
                log.exception("task.alert_evaluation_failed", task=name, rule=rule)
        if result.message is not None:
            self._notify.notify(
                result.kind, result.message, key=f"task:{name}:{int(tick.timestamp())}"
            )
        return RunOutcome(name, ran=True, status=status, summary=result.summary, duration=duration)

    def _run_in_progress(self, session: Session, name: str, now: datetime) -> TaskRun | None:
        """A run of ``name`` whose owner is alive: the scheduler lease it ran under is still held
        by it, or the job it runs in still heartbeats. Runs of dead owners stay ``running`` in
        the ledger but no longer block."""
        runs = session.scalars(
            sa.select(TaskRun).where(TaskRun.task == name, TaskRun.status == "running")
        ).all()
        for run in runs:
            if run.holder.startswith("job:"):
                job_id = run.holder.split(":", 2)[1]
                job = session.get(Job, int(job_id)) if job_id.isdigit() else None
                fresh = now - timedelta(seconds=self._job_stale_after)
                alive = (
                    job is not None
                    and job.status == "running"
                    and job_holder(job.id, job.worker or "") == run.holder  # not a resumed job
                    and (job.heartbeat_at is None or job.heartbeat_at >= fresh)
                )
            else:
                alive = (
                    session.scalar(
                        sa.select(Lease.name).where(
                            Lease.holder == run.holder,
                            Lease.token == run.fencing_token,
                            Lease.expires_at > now,
                        )
                    )
                    is not None
                )
            if alive:
                return run
        return None

    def _record(self, run_id: int, name: str, status: str, summary: str, error: str | None) -> int:
        now = self._clock.now()
        with self._db.transaction() as session:
            run = session.get(TaskRun, run_id)
            if run is not None:
                run.status = status
                run.summary = summary
                run.error = error
                run.finished_at = now
            row = session.get(ScheduledTask, name)
            if row is None:
                row = ScheduledTask(
                    name=name,
                    interval=self._tasks[name].interval,
                    description=self._tasks[name].description,
                )
                session.add(row)
            row.last_run_at = now
            row.last_status = status
            row.last_summary = summary
            row.runs = (row.runs or 0) + 1
            if status == "ok":
                row.consecutive_failures = 0
            else:
                row.failures = (row.failures or 0) + 1
                row.consecutive_failures = (row.consecutive_failures or 0) + 1
            return row.consecutive_failures

    def status(self) -> list[TaskStatus]:
        with self._db.transaction() as session:
            rows = session.scalars(sa.select(ScheduledTask).order_by(ScheduledTask.name)).all()
            return [
                TaskStatus(
                    r.name,
                    r.description,
                    r.interval,
                    r.last_run_at,
                    r.last_status,
                    r.last_summary,
                    r.next_run_at,
                    r.consecutive_failures,
                    r.runs,
                    r.failures,
                )
                for r in rows
            ]

    def lease_status(self, name: str) -> tuple[str, int, bool] | None:
        """(holder, fencing token, live) of a lease, for status pages."""
        with self._db.transaction() as session:
            lease = session.get(Lease, name)
            if lease is None or not lease.holder:
                return None
            return lease.holder, lease.token, lease.expires_at > self._clock.now()

    def prune_runs(self, keep_days: float = 14.0) -> int:
        cutoff = self._clock.now() - timedelta(days=keep_days)
        with self._db.transaction() as session:
            result = session.execute(sa.delete(TaskRun).where(TaskRun.started_at < cutoff))
            return int(result.rowcount or 0)
