"""The daemon: leader-elected scheduler, job workers and the outbox dispatchers in one process.

Run N replicas against one PostgreSQL database: all of them run workers and deliver
notifications (claims use SKIP LOCKED); only the lease holder runs periodic tasks. Chat messages
and webhooks have a delivery thread each, so a slow webhook receiver never delays an approval
card.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from modelarium.automation.scheduler import Scheduler
from modelarium.automation.tasks import Fronts, register_all
from modelarium.core.app import Core
from modelarium.core.jobs import WorkerPool, worker_identity
from modelarium.core.logging import get_logger
from modelarium.core.metrics import ALERTS_FIRING, JOB_QUEUE_DEPTH
from modelarium.core.notify import MessageSender

log = get_logger(__name__)


class Daemon:
    def __init__(
        self,
        core: Core,
        *,
        sender: MessageSender | None = None,
        workers: int | None = None,
        identity: str | None = None,
        fronts: Fronts | None = None,
    ) -> None:
        self.core = core
        self.sender = sender
        self.identity = identity or worker_identity("daemon")
        register_all(core, fronts)
        self.scheduler = Scheduler(core, self.identity)
        self.workers = WorkerPool(
            core.jobs,
            size=core.settings.job_workers if workers is None else workers,
            heartbeat=core.settings.job_heartbeat,
        )
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self.scheduler.start()
        self.workers.start()
        loops: list[tuple[Callable[[], None], str]] = [(self._gauges_loop, "gauges")]
        if self.sender is not None:
            loops.append((self._chat_loop, "outbox-chat"))
        if self.core.notify.webhooks:
            loops.append((self._webhook_loop, "outbox-webhooks"))
        for target, name in loops:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info(
            "daemon.started",
            identity=self.identity,
            tasks=sorted(self.core.tasks.tasks),
            workers=self.core.settings.job_workers,
        )

    def stop(self) -> None:
        self._stop.set()
        self.scheduler.stop()
        self.workers.stop()
        for thread in self._threads:
            thread.join(5)

    def wait(self) -> None:
        self._stop.wait()

    def health(self) -> dict[str, Any]:
        return {
            "scheduler": (
                self.scheduler.started,
                "leader" if self.scheduler.is_leader else "standby",
            ),
        }

    def _chat_loop(self) -> None:
        assert self.sender is not None
        while not self._stop.wait(0.5):
            try:
                self.core.notify.deliver_pending(self.sender)
            except Exception:
                log.exception("daemon.delivery_failed", to="chat")

    def _webhook_loop(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.core.notify.deliver_webhooks()
            except Exception:
                log.exception("daemon.delivery_failed", to="webhooks")

    def _gauges_loop(self) -> None:
        while not self._stop.wait(10):
            try:
                depth = self.core.jobs.queue_depth()
                for kind in self.core.jobs.kinds:
                    JOB_QUEUE_DEPTH.labels(kind=kind).set(depth.get(kind, 0))
                firing = self.core.alerts.firing_count()
                for rule in self.core.alerts.rules:
                    ALERTS_FIRING.labels(rule=rule).set(firing.get(rule, 0))
            except Exception:
                log.exception("daemon.gauges_failed")
