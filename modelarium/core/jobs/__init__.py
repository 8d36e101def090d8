"""The job runner: a durable queue in the database and worker threads that run it."""

from modelarium.core.jobs.card import add_job_body, progress_label, render_job
from modelarium.core.jobs.runner import WorkerPool, worker_identity
from modelarium.core.jobs.service import (
    JobCancelled,
    JobContext,
    JobFailed,
    JobKind,
    JobLost,
    JobService,
    JobView,
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
    "add_job_body",
    "progress_label",
    "render_job",
    "worker_identity",
]
