"""The durable job queue: one mechanism for every long task (installs, deployments, pulls...).

A job kind declares ordered stages. Workers claim jobs atomically (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL; SQLite serialises writers), record each completed stage durably, heartbeat while they
run, and a job whose worker died (stale heartbeat) is claimed again and resumes after its last
completed stage. Retries back off exponentially; cancel is cooperative.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelarium.core.clock import Clock
from modelarium.core.db.models.jobs import Job
from modelarium.core.db.uow import Database
from modelarium.core.errors import ConflictError, ModelariumError, NotFoundError, is_retryable
from modelarium.core.messages import Message, progress_bar
from modelarium.core.notify import NotifyService

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


class JobCancelled(Exception):
    """Raised inside a stage when cancel was requested; the runner cleans up and stops."""


class JobLost(Exception):
    """Another worker took the job over (our heartbeat was too late); stop without writing."""


class JobFailed(ModelariumError):
    """A stage failed. ``retry=False`` for failures that retrying cannot fix (bad checksum)."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message, retryable=retry)

    @property
    def retry(self) -> bool:
        return self.retryable


@dataclass(frozen=True)
class JobKind:
    """What a capability registers: its stages and how to run, describe and clean up a job."""

    name: str
    stages: tuple[str, ...]
    run_stage: Callable[[JobContext, str], None]
    describe: Callable[[dict[str, Any]], str]
    on_cancel: Callable[[JobContext], None] | None = None
    render: Callable[[JobView], Message] | None = None
    on_update: Callable[[Session, JobView], None] | None = None
    """Called in the transaction of every state change instead of posting the job card (the
    change engine mirrors the job into its change and that change's one living message)."""
    on_retry: Callable[[Session, JobView], dict[str, Any]] | None = None
    """Called (locked, before anything changes) when someone retries a failed job: may refuse
    with a ModelariumError, and returns updates to the job's state (the change engine re-runs
    its pre-flight check when no stage had run)."""


@dataclass(frozen=True)
class JobView:
    id: int
    kind: str
    summary: str
    params: dict[str, Any]
    status: str
    stage: str | None
    stages: tuple[str, ...]
    completed_stages: tuple[str, ...]
    state: dict[str, Any]
    progress: dict[str, Any]
    attempts: int
    max_attempts: int
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool
    run_after: datetime

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


@dataclass
class JobContext:
    """Handed to a stage: parameters, durable state, progress reporting and cancel checks."""

    job_id: int
    params: dict[str, Any]
    state: dict[str, Any]
    service: JobService
    worker: str
    stage: str = ""
    _last_progress: float = field(default=0.0, repr=False)

    def checkpoint(self, **updates: Any) -> None:
        """Persist state a resumed attempt needs (e.g. the resolved commit)."""
        self.state.update(updates)
        self.service._write(self.job_id, self.worker, state=dict(self.state))

    def progress(
        self,
        done: float,
        total: float | None = None,
        *,
        unit: str = "",
        message: str = "",
        force: bool = False,
        **extra: Any,
    ) -> None:
        """Report progress; throttled so a tight loop costs almost nothing."""
        now = self.service.clock.now().timestamp()
        if not force and now - self._last_progress < self.service.progress_interval:
            return
        self._last_progress = now
        self.service._write(
            self.job_id,
            self.worker,
            progress={
                "done": done,
                "total": total,
                "unit": unit,
                "message": message,
                "at": now,
                **extra,
            },
        )

    def record(self, *report: str, **facts: Any) -> None:
        """Keep facts for history (and a change's revert) and lines for the final message.

        Durable like :meth:`checkpoint`; the card shows the ``report`` lines once the job ends.
        """
        result = dict(self.state.get("result") or {})
        result.update(facts)
        if report:
            result["report"] = [*(result.get("report") or []), *report]
        self.checkpoint(result=result)

    def check_cancelled(self) -> None:
        if self.service._cancel_requested(self.job_id, self.worker):
            raise JobCancelled()


def _backoff(attempt: int) -> float:
    return float(min(300, 5 * 2 ** max(0, attempt - 1)))


class JobService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        notify: NotifyService,
        *,
        max_attempts: int = 3,
        stale_after: float = 30.0,
        progress_interval: float = 1.0,
    ) -> None:
        self._db = db
        self.clock = clock
        self._notify = notify
        self.max_attempts = max_attempts
        self.stale_after = stale_after
        self.progress_interval = progress_interval
        self._kinds: dict[str, JobKind] = {}

    def register(self, kind: JobKind) -> None:
        if kind.name in self._kinds:
            raise ValueError(f"job kind {kind.name!r} registered twice")
        self._kinds[kind.name] = kind

    def kind(self, name: str) -> JobKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise NotFoundError(f"no job kind {name!r} is registered in this process") from None

    @property
    def kinds(self) -> dict[str, JobKind]:
        return dict(self._kinds)

    # -- queueing -----------------------------------------------------------------------------

    def enqueue(
        self,
        kind: str,
        params: dict[str, Any],
        *,
        created_by: str,
        channel: str | None = None,
        session: Session | None = None,
        max_attempts: int | None = None,
    ) -> JobView:
        spec = self.kind(kind)
        now = self.clock.now()

        def write(s: Session) -> JobView:
            job = Job(
                kind=kind,
                params=params,
                summary=spec.describe(params)[:255],
                status="queued",
                completed_stages=[],
                state={},
                progress={},
                attempts=0,
                max_attempts=max_attempts or self.max_attempts,
                run_after=now,
                created_by=created_by,
                channel=channel,
                created_at=now,
            )
            s.add(job)
            s.flush()
            view = _view(job, spec)
            self._announce(s, view, channel)
            return view

        if session is not None:
            return write(session)
        with self._db.transaction() as own:
            return write(own)

    def cancel(self, job_id: int, user: str) -> JobView:
        with self._db.transaction() as session:
            job = self._get_locked(session, job_id)
            if job.status in TERMINAL:
                raise ConflictError(f"job #{job_id} already {job.status}")
            job.cancel_requested = True
            if job.status == "queued":
                # Nobody runs it: finish it in this same locked transaction, so no worker can
                # claim it between this decision and the cleanup below.
                job.status = "cancelled"
                job.error = f"cancelled by {user}"
                job.finished_at = self.clock.now()
            view = _view(job, self._kinds.get(job.kind))
            if view.status == "cancelled":
                self._announce(session, view)
        if view.status == "cancelled":
            # Clean up partial data from earlier attempts here.
            context = JobContext(job_id, view.params, dict(view.state), self, worker="cancel")
            spec = self._kinds.get(view.kind)
            if spec is not None and spec.on_cancel is not None:
                spec.on_cancel(context)
        return view

    def retry(self, job_id: int, user: str) -> JobView:
        """A failed job queued again for a new attempt by the same runner that retries it after
        transient errors: it resumes after its last completed stage, with a fresh attempt
        budget. Only a failed job: anything else is refused with what it is instead."""
        with self._db.transaction() as session:
            job = self._get_locked(session, job_id)
            if job.status != "failed":
                why = {
                    "queued": "it is queued and will run",
                    "running": "it is running",
                    "succeeded": "it succeeded",
                    "cancelled": "it was cancelled (start it again instead)",
                }.get(job.status, f"it is {job.status}")
                raise ConflictError(
                    f"job #{job_id} cannot be retried: {why}; only a failed job can"
                )
            spec = self.kind(job.kind)
            updates = spec.on_retry(session, _view(job, spec)) if spec.on_retry is not None else {}
            job.state = {**(job.state or {}), **updates}
            job.status = "queued"
            job.error = None
            job.worker = None
            job.finished_at = None
            job.cancel_requested = False
            job.max_attempts = job.attempts + self.max_attempts
            job.run_after = self.clock.now()
            job.progress = {}
            session.flush()
            view = _view(job, spec)
            self._announce(session, view)
        from modelarium.core.logging import get_logger

        get_logger(__name__).info("job.retry", job_id=job_id, user=user, kind=view.kind)
        return view

    # -- reading ------------------------------------------------------------------------------

    def get(self, job_id: int) -> JobView:
        with self._db.transaction() as session:
            job = session.get(Job, job_id)
            if job is None:
                raise NotFoundError(f"no job #{job_id}")
            return _view(job, self._kinds.get(job.kind))

    def finished(self, job_ids: list[int]) -> set[int]:
        """Which of ``job_ids`` have ended or do not exist: one query however many wait."""
        if not job_ids:
            return set()
        with self._db.transaction() as session:
            running = session.scalars(
                sa.select(Job.id).where(Job.id.in_(job_ids), Job.status.not_in(TERMINAL))
            ).all()
        return set(job_ids) - set(running)

    def update_params(self, session: Session, job_id: int, extra: dict[str, Any]) -> JobView:
        """Add params to a job just enqueued in this transaction (ids of what it will run on)."""
        job = self._get_locked(session, job_id)
        job.params = {**job.params, **extra}
        return _view(job, self._kinds.get(job.kind))

    def view_in(self, session: Session, job_id: int) -> JobView | None:
        """A job as seen inside the caller's transaction (no lock)."""
        job = session.get(Job, job_id)
        return _view(job, self._kinds.get(job.kind)) if job is not None else None

    def list(
        self, *, active_only: bool = False, kind: str | None = None, limit: int = 20
    ) -> list[JobView]:
        stmt = sa.select(Job).order_by(Job.id.desc()).limit(limit)
        if active_only:
            stmt = stmt.where(Job.status.in_(("queued", "running")))
        if kind:
            stmt = stmt.where(Job.kind == kind)
        with self._db.transaction() as session:
            return [_view(j, self._kinds.get(j.kind)) for j in session.scalars(stmt)]

    def queue_depth(self) -> dict[str, int]:
        with self._db.transaction() as session:
            rows = session.execute(
                sa.select(Job.kind, sa.func.count())
                .where(Job.status == "queued")
                .group_by(Job.kind)
            ).all()
        return {kind: int(count) for kind, count in rows}

    # -- claiming and running (used by the worker pool) ---------------------------------------

    def claim(self, worker: str, *, job_id: int | None = None) -> JobView | None:
        """Atomically take the next runnable job: queued and due, or running with a dead worker.

        ``job_id`` claims that job only (a proposer running its own instant change at once).
        """
        now = self.clock.now()
        stale = now - timedelta(seconds=self.stale_after)
        kinds = list(self._kinds)
        if not kinds:
            return None
        with self._db.transaction() as session:
            stmt = (
                sa.select(Job)
                .where(
                    Job.kind.in_(kinds),
                    sa.or_(
                        sa.and_(Job.status == "queued", Job.run_after <= now),
                        sa.and_(Job.status == "running", Job.heartbeat_at < stale),
                    ),
                )
                .order_by(Job.run_after, Job.id)
                .limit(1)
            )
            if job_id is not None:
                stmt = stmt.where(Job.id == job_id)
            if self._db.dialect == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            job = session.scalar(stmt)
            if job is None:
                return None
            if job.status == "running" and job.attempts >= job.max_attempts:
                # Its worker died on every attempt (OOM, crash): stop handing it out, or it
                # would take down one replica after another.
                job.status = "failed"
                job.error = f"its worker died on all {job.attempts} attempts; giving up"
                job.finished_at = now
                job.worker = None
                view = _view(job, self._kinds[job.kind])
                self._announce(session, view)
                return None
            job.status = "running"
            job.worker = worker
            job.heartbeat_at = now
            job.attempts += 1
            job.started_at = job.started_at or now
            job.error = None
            view = _view(job, self._kinds[job.kind])
            self._announce(session, view)
            return view

    def heartbeat(self, job_id: int, worker: str) -> bool:
        """Extend our claim; False means another worker owns the job now."""
        with self._db.transaction() as session:
            result = session.execute(
                sa.update(Job)
                .where(Job.id == job_id, Job.worker == worker, Job.status == "running")
                .values(heartbeat_at=self.clock.now())
            )
            return bool(result.rowcount)

    def run(self, view: JobView, worker: str) -> JobView:
        """Run the remaining stages of a claimed job and record the outcome."""
        spec = self._kinds[view.kind]
        context = JobContext(view.id, view.params, dict(view.state), self, worker)
        completed = list(view.completed_stages)
        try:
            for stage in spec.stages:
                if stage in completed:
                    continue
                context.stage = stage
                context.check_cancelled()
                self._write(view.id, worker, stage=stage)
                spec.run_stage(context, stage)
                completed.append(stage)
                self._write(
                    view.id, worker, completed_stages=list(completed), state=dict(context.state)
                )
        except JobLost:
            return self.get(view.id)
        except JobCancelled:
            if spec.on_cancel is not None:
                spec.on_cancel(context)
            return self._finish(view.id, worker, "cancelled", "cancelled; partial data removed")
        except ModelariumError as exc:
            return self._fail(view.id, worker, str(exc), retry=is_retryable(exc))
        except Exception as exc:
            from modelarium.core.logging import get_logger

            get_logger(__name__).exception("job.stage_crashed", job_id=view.id, stage=context.stage)
            return self._fail(
                view.id, worker, f"{type(exc).__name__}: {exc}", retry=is_retryable(exc)
            )
        return self._finish(view.id, worker, "succeeded", None)

    # -- internals ----------------------------------------------------------------------------

    def _fail(self, job_id: int, worker: str, error: str, *, retry: bool) -> JobView:
        with self._db.transaction() as session:
            job = self._get_locked(session, job_id)
            if job.worker != worker:
                return _view(job, self._kinds.get(job.kind))
            if retry and job.attempts < job.max_attempts:
                job.status = "queued"
                job.error = error[:2000]
                job.worker = None
                job.run_after = self.clock.now() + timedelta(seconds=_backoff(job.attempts))
                view = _view(job, self._kinds.get(job.kind))
                self._announce(session, view)
                return view
        return self._finish(job_id, worker, "failed", error)

    def _finish(self, job_id: int, worker: str | None, status: str, error: str | None) -> JobView:
        with self._db.transaction() as session:
            job = self._get_locked(session, job_id)
            if worker is not None and job.worker != worker:
                return _view(job, self._kinds.get(job.kind))
            job.status = status
            job.error = error[:2000] if error else None
            job.finished_at = self.clock.now()
            job.worker = None
            view = _view(job, self._kinds.get(job.kind))
            self._announce(session, view)
            return view

    def _write(self, job_id: int, worker: str, **values: Any) -> None:
        with self._db.transaction() as session:
            job = session.get(Job, job_id)
            if job is None or job.worker != worker or job.status != "running":
                if worker != "cancel":
                    raise JobLost()
                return
            for key, value in values.items():
                setattr(job, key, value)
            job.heartbeat_at = self.clock.now()
            session.flush()
            if "progress" in values or "stage" in values:
                view = _view(job, self._kinds.get(job.kind))
                self._announce(session, view)

    def _cancel_requested(self, job_id: int, worker: str) -> bool:
        with self._db.transaction() as session:
            job = session.get(Job, job_id)
            if job is None or (worker != "cancel" and job.worker != worker):
                raise JobLost()
            return bool(job.cancel_requested)

    @staticmethod
    def _get_locked(session: Session, job_id: int) -> Job:
        job = session.scalar(sa.select(Job).where(Job.id == job_id).with_for_update())
        if job is None:
            raise NotFoundError(f"no job #{job_id}")
        return job

    def _announce(self, session: Session, view: JobView, channel: str | None = None) -> None:
        spec = self._kinds.get(view.kind)
        if spec is not None and spec.on_update is not None:
            spec.on_update(session, view)
            return
        self._notify.publish(
            f"job:{view.id}", self.render(view), channel=channel, kind="job", session=session
        )
        if view.done:
            # The result goes back to whoever started it, in the thread of the job's card.
            icon = {"succeeded": "✅", "failed": "❌", "cancelled": "🚫"}.get(view.status, "")
            text = f"{icon} <@{view.created_by}> job #{view.id} {view.status}: {view.summary}"
            if view.error and view.status != "succeeded":
                text += f" ({view.error[:300]})"
            self._notify.publish(
                f"job:{view.id}:outcome",
                Message(fallback=text).text(text),
                kind="job",
                thread_of=f"job:{view.id}",
                session=session,
            )

    def render(self, view: JobView) -> Message:
        spec = self._kinds.get(view.kind)
        if spec is not None and spec.render is not None:
            return spec.render(view)
        from modelarium.core.jobs.card import render_job

        return render_job(view)


def _view(job: Job, spec: JobKind | None) -> JobView:
    return JobView(
        id=job.id,
        kind=job.kind,
        summary=job.summary,
        params=dict(job.params or {}),
        status=job.status,
        stage=job.stage,
        stages=spec.stages if spec else (),
        completed_stages=tuple(job.completed_stages or ()),
        state=dict(job.state or {}),
        progress=dict(job.progress or {}),
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        error=job.error,
        created_by=job.created_by,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        cancel_requested=bool(job.cancel_requested),
        run_after=job.run_after,
    )


__all__ = [
    "JobCancelled",
    "JobContext",
    "JobFailed",
    "JobKind",
    "JobLost",
    "JobService",
    "JobView",
    "progress_bar",
]
