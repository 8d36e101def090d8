"""The job runner: a durable queue in the database and worker threads that run it."""

from modelarium.core.jobs.runner import WorkerPool, worker_identity
from modelarium.core.jobs.service import (
    JobCancelled,
    JobContext,
    JobFailed,
    JobKind,
    JobLost,
    JobService,
    JobView,
    render_job,
)

__all__ = [
    "JobCancelled",
    "JobContext",
    "JobFailed",
    "JobKind",
    "JobLost",
    "JobService",
    "JobView",
    "WorkerPool",
    "render_job",
    "worker_identity",
]
