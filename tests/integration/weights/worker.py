"""A job worker in its own process, for the crash tests.

``python -m tests.integration.weights.worker JOB_ID [--die POINT]`` builds the core from the
environment (``MODELARIUM_*``, ``HF_ENDPOINT``), as the daemon does, and runs jobs with
:meth:`WorkerPool.run_one` until job ``JOB_ID`` ends (exit 0 if it succeeded). ``--die`` sends
the process SIGKILL at a point a test cannot hit reliably from outside:

- ``after-files:N``: right after the N-th file is verified and renamed (between files);
- ``before-activate``: as the activate stage starts (everything downloaded and verified);
- ``after-snapshot``: snapshot links made, the record not yet marked installed;
- ``purge-after-remove:N``: a purge job has deleted the files of its N-th revision, and not yet
  the record that says so;
- ``bucket-after-parts:N``: an install into a bucket has uploaded and checkpointed its N-th part
  (other parts may be in flight).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from typing import Any


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _install_hook(point: str) -> None:
    from modelarium.core.weights import download, install

    if point.startswith("after-files:"):
        limit = int(point.split(":", 1)[1])
        original = download.Fetcher._fetch
        lock = threading.Lock()
        count = 0

        def fetch(self: Any, task: Any) -> None:
            nonlocal count
            original(self, task)
            with lock:
                count += 1
                if count >= limit:
                    _die()

        download.Fetcher._fetch = fetch  # type: ignore[method-assign]
    elif point == "before-activate":

        def activate(self: Any, ctx: Any) -> None:
            _die()

        install.InstallPipeline._activate = activate  # type: ignore[method-assign]
    elif point == "after-snapshot":
        link = install.link_snapshot

        def link_then_die(*args: Any, **kwargs: Any) -> None:
            link(*args, **kwargs)
            _die()

        install.link_snapshot = link_then_die  # type: ignore[assignment]
    elif point.startswith("purge-after-remove:"):
        from modelarium.core.weights import purge

        limit = int(point.split(":", 1)[1])
        remove = purge.remove_revision
        removed = 0

        def remove_then_die(*args: Any, **kwargs: Any) -> int:
            nonlocal removed
            freed = remove(*args, **kwargs)
            removed += 1
            if removed >= limit:
                _die()
            return freed

        purge.remove_revision = remove_then_die  # type: ignore[assignment]
    elif point.startswith("bucket-after-parts:"):
        from modelarium.core.clients import s3

        limit = int(point.split(":", 1)[1])
        send = s3.ObjectWriter._send
        lock = threading.Lock()
        parts = 0

        def send_then_die(self: Any, *args: Any) -> None:
            nonlocal parts
            send(self, *args)
            with lock:
                parts += 1
                if parts >= limit:
                    _die()

        s3.ObjectWriter._send = send_then_die  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown --die point {point!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("job", type=int)
    parser.add_argument("--die")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)

    from modelarium.config import Settings
    from modelarium.core.app import Core
    from modelarium.core.jobs import WorkerPool

    core = Core(Settings())
    if args.die:
        _install_hook(args.die)
    pool = WorkerPool(core.jobs, size=1, heartbeat=core.settings.job_heartbeat)
    deadline = time.monotonic() + args.timeout
    try:
        while time.monotonic() < deadline:
            pool.run_one()
            view = core.jobs.get(args.job)
            if view.done:
                print(f"job {view.id} {view.status} after {view.attempts} attempt(s)")
                return 0 if view.status == "succeeded" else 1
            time.sleep(0.1)
        print("timed out")
        return 2
    finally:
        core.close()


if __name__ == "__main__":
    sys.exit(main())
