"""The ``task.run`` job kind: `/model run <task>` from any front runs a task in the daemon."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelarium.core.jobs import JobContext, JobFailed, JobKind
from modelarium.core.scheduling.tasks import job_holder

if TYPE_CHECKING:
    from modelarium.core.kernel import Kernel
    from modelarium.core.ports import Ports

RUN_TASK_JOB = "task.run"


def register(core: Kernel, service: Any, ports: Ports) -> None:
    def run_stage(context: JobContext, stage: str) -> None:
        name = context.params["task"]
        if name not in core.tasks.tasks:
            raise JobFailed(f"this daemon has no task {name!r}", retry=False)
        holder = job_holder(context.job_id, context.worker)
        outcome = core.tasks.run_tick(name, None, None, manual=True, holder=holder)
        if not outcome.ran:
            raise JobFailed(f"{name} not started: {outcome.summary}", retry=False)
        context.checkpoint(status=outcome.status, summary=outcome.summary)
        if outcome.status != "ok":
            raise JobFailed(outcome.summary or "task failed", retry=False)

    def describe(params: dict[str, Any]) -> str:
        return f"run task {params['task']} now"

    core.jobs.register(JobKind(RUN_TASK_JOB, ("run",), run_stage, describe))
