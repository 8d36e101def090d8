"""Worker threads that claim and run jobs; the daemon starts a pool of them."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid

from modelarium.core.jobs.service import JobService, JobView
from modelarium.core.logging import get_logger
from modelarium.core.metrics import JOB_DURATION

log = get_logger(__name__)


def worker_identity(prefix: str = "worker") -> str:
    """Unique per process and thread start, readable in `/model jobs`."""
    return f"{prefix}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class WorkerPool:
    def __init__(
        self, jobs: JobService, *, size: int, heartbeat: float = 5.0, poll_interval: float = 0.5
    ) -> None:
        self._jobs = jobs
        self._size = size
        self._heartbeat = heartbeat
        self._poll = poll_interval
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.running: dict[str, int] = {}

    def start(self) -> None:
        for index in range(self._size):
            name = worker_identity(f"w{index}")
            thread = threading.Thread(
                target=self._loop, args=(name,), name=f"job-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def run_one(self, worker: str | None = None, *, job_id: int | None = None) -> JobView | None:
        """Claim and run a single job (that one, with ``job_id``) in this thread."""
        worker = worker or worker_identity("inline")
        view = self._jobs.claim(worker, job_id=job_id)
        if view is None:
            return None
        return self._run_with_heartbeat(view, worker)

    def _loop(self, worker: str) -> None:
        while not self._stop.is_set():
            try:
                view = self._jobs.claim(worker)
            except Exception:
                log.exception("jobs.claim_failed", worker=worker)
                self._stop.wait(self._poll * 4)
                continue
            if view is None:
                self._stop.wait(self._poll)
                continue
            self._run_with_heartbeat(view, worker)

    def _run_with_heartbeat(self, view: JobView, worker: str) -> JobView:
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self._heartbeat):
                try:
                    if not self._jobs.heartbeat(view.id, worker):
                        return
                except Exception:
                    log.warning("jobs.heartbeat_failed", job_id=view.id)

        beater = threading.Thread(target=beat, name=f"hb-{view.id}", daemon=True)
        beater.start()
        started = time.monotonic()
        self.running[worker] = view.id
        log.info("job.start", job_id=view.id, kind=view.kind, attempt=view.attempts)
        try:
            result = self._jobs.run(view, worker)
        finally:
            done.set()
            self.running.pop(worker, None)
        if result.done:
            JOB_DURATION.labels(kind=view.kind, status=result.status).observe(
                time.monotonic() - started
            )
        log.info("job.end", job_id=view.id, kind=view.kind, status=result.status)
        return result
