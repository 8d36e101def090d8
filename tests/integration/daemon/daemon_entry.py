"""A real ``modelarium daemon`` process plus a probe task and a probe job kind.

Run as ``python -m tests.integration.daemon.daemon_entry`` with the usual ``MODELARIUM_*``
environment. It builds the Core exactly as ``modelarium daemon`` does (``build_core``), registers
two test-only things, then hands over to the production wiring (``run_daemon``: Daemon,
leader-elected Scheduler, WorkerPool, outbox loop, /healthz, SIGTERM handling). Nothing of the
scheduler, lease or job code is replaced.

- periodic task ``probe`` (interval ``PROBE_INTERVAL`` seconds): inserts one row into
  ``probe_runs`` per execution, so a test sees every real execution (not only the ledger's view);
- job kind ``probe.stages`` with stages one/two/three: each stage writes a ``start`` and a
  ``done`` row to ``probe_stages``; with ``params["hold"]`` stage ``two`` checkpoints
  ``held=True`` and then sleeps for that many seconds on its first attempt only, so a test can
  SIGKILL the worker mid-stage and watch another process resume the job.

The test creates both tables before starting the processes.
"""

from __future__ import annotations

import os
import sys
import time

import sqlalchemy as sa

from modelarium.config import load_settings
from modelarium.core.app import Core
from modelarium.core.jobs import JobContext, JobKind
from modelarium.core.logging import configure_logging
from modelarium.core.scheduling import PeriodicTask, TaskResult
from modelarium.entrypoints.cli import build_core
from modelarium.entrypoints.processes import run_daemon

PROBE_TASK = "probe"
PROBE_JOB = "probe.stages"
PROBE_STAGES = ("one", "two", "three")

PROBE_TABLES = (
    "CREATE TABLE probe_runs (id SERIAL PRIMARY KEY, pid INTEGER NOT NULL,"
    " ran_at TIMESTAMPTZ NOT NULL)",
    "CREATE TABLE probe_stages (id SERIAL PRIMARY KEY, job_id INTEGER NOT NULL,"
    " stage VARCHAR(16) NOT NULL, event VARCHAR(8) NOT NULL, pid INTEGER NOT NULL,"
    " at TIMESTAMPTZ NOT NULL)",
)


def register_probes(core: Core) -> None:
    pid = os.getpid()

    def probe() -> TaskResult:
        with core.db.transaction() as session:
            session.execute(
                sa.text("INSERT INTO probe_runs (pid, ran_at) VALUES (:pid, :at)"),
                {"pid": pid, "at": core.clock.now()},
            )
        return TaskResult(summary=f"probe ran in {pid}")

    core.tasks.register(
        PeriodicTask(PROBE_TASK, float(os.environ.get("PROBE_INTERVAL", "1")), probe, "test")
    )

    def record(context: JobContext, stage: str, event: str) -> None:
        with core.db.transaction() as session:
            session.execute(
                sa.text(
                    "INSERT INTO probe_stages (job_id, stage, event, pid, at)"
                    " VALUES (:job, :stage, :event, :pid, :at)"
                ),
                {
                    "job": context.job_id,
                    "stage": stage,
                    "event": event,
                    "pid": pid,
                    "at": core.clock.now(),
                },
            )

    def run_stage(context: JobContext, stage: str) -> None:
        record(context, stage, "start")
        time.sleep(float(context.params.get("stage_seconds", 0)))
        hold = float(context.params.get("hold", 0))
        if stage == "two" and hold and not context.state.get("held"):
            context.checkpoint(held=True, held_by=pid)
            deadline = time.monotonic() + hold
            while time.monotonic() < deadline:
                context.check_cancelled()
                time.sleep(0.1)
        record(context, stage, "done")

    core.jobs.register(
        JobKind(PROBE_JOB, PROBE_STAGES, run_stage, lambda params: f"probe {params}")
    )


def main() -> int:
    settings = load_settings().settings
    configure_logging(settings.log_level, settings.log_format)
    core = build_core(settings)
    try:
        register_probes(core)
        return run_daemon(core)
    finally:
        core.close()


if __name__ == "__main__":
    sys.exit(main())
