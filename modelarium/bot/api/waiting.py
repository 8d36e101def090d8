"""Waiting for jobs and changes to end (``?wait=30s``) without a thread or a database
connection per waiter.

Waiters park on futures in the event loop. While any wait, one poller per watcher asks the
database, in one short query on a worker thread, which of the awaited ids have ended, and wakes
their waiters. A hundred clients waiting on a job cost one query per interval, not a hundred
threads each holding a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import anyio.to_thread

from modelarium.core.logging import get_logger

log = get_logger(__name__)

POLL_INTERVAL = 0.5


class Watcher:
    def __init__(
        self, finished: Callable[[list[int]], set[int]], *, interval: float = POLL_INTERVAL
    ) -> None:
        self._finished = finished
        self.interval = interval
        self._waiters: dict[int, set[asyncio.Future[None]]] = {}
        self._poller: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return sum(len(futures) for futures in self._waiters.values())

    async def wait(self, key: int, timeout: float) -> bool:
        """Until ``key`` has ended (True) or ``timeout`` seconds passed (False)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiters.setdefault(key, set()).add(future)
        if self._poller is None or self._poller.done() or self._poller.get_loop() is not loop:
            self._poller = loop.create_task(self._poll())
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            futures = self._waiters.get(key)
            if futures is not None:
                futures.discard(future)
                if not futures:
                    del self._waiters[key]

    async def _poll(self) -> None:
        while self._waiters:
            await asyncio.sleep(self.interval)
            keys = list(self._waiters)
            if not keys:
                break
            try:
                ended = await anyio.to_thread.run_sync(self._finished, keys)
            except Exception:  # a database blip: the waiters time out or the next poll works
                log.exception("api.wait_poll_failed")
                continue
            for key in ended:
                for future in self._waiters.pop(key, set()):
                    with contextlib.suppress(asyncio.InvalidStateError):
                        future.set_result(None)
