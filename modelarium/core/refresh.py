"""Stale-while-revalidate reads over :class:`~modelarium.core.cache.Cache`, with a deadline.

Answers come from the database cache when fresh; a stale entry is answered at once while one
background thread refreshes it; a miss waits for the upstream, but never longer than the deadline
(huggingface_hub retries a dead hub for ~25 s and ``list_models`` has no timeout at all). A
fetch that outlives its deadline keeps running and still fills the cache when it lands.
Concurrent callers of one key share a single upstream call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelarium.core import errors
from modelarium.core.cache import Cache
from modelarium.core.clock import Clock
from modelarium.core.errors import ModelariumError, UpstreamError
from modelarium.core.logging import get_logger

log = get_logger(__name__)

Fetch = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class Fetched:
    """A value and how old it is; ``stale`` values come with a ``note`` saying why."""

    value: dict[str, Any]
    fetched_at: datetime
    stale: bool = False
    note: str | None = None
    cached: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "fetched_at": self.fetched_at.isoformat(),
            "stale": self.stale,
            "note": self.note,
            "cached": self.cached,
        }


class UnreachableError(errors.UnreachableError):
    """The upstream did not answer before the deadline (and nothing was cached)."""


class Revalidator:
    """One upstream (``label``: "Hugging Face", "Kubernetes") behind the shared cache."""

    def __init__(
        self,
        cache: Cache,
        clock: Clock,
        *,
        label: str,
        stale_ttl: float,
        deadline: float,
        unreachable: type[UpstreamError] = UnreachableError,
    ) -> None:
        self._cache = cache
        self._clock = clock
        self.label = label
        self.stale_ttl = stale_ttl
        self.deadline = deadline
        self._unreachable = unreachable
        self._lock = threading.Lock()
        self._inflight: dict[tuple[str, str], Future[dict[str, Any]]] = {}
        self._failures: dict[tuple[str, str], str] = {}
        self._idle = threading.Condition(self._lock)

    # -- reads ----------------------------------------------------------------------------
    def get(self, namespace: str, key: str, fetch: Fetch, ttl: float) -> Fetched:
        """Fresh from cache, stale from cache (refreshing behind), or fetched within deadline."""
        entry = self._cache.get(namespace, key, stale_ttl=self.stale_ttl)
        if entry is not None and entry.fresh:
            return Fetched(entry.value, entry.fetched_at)
        if entry is not None:
            self._start(namespace, key, fetch, ttl)
            with self._lock:
                failure = self._failures.get((namespace, key))
            note = failure or "refreshing in the background"
            return Fetched(entry.value, entry.fetched_at, stale=True, note=note)
        value = self._wait(self._start(namespace, key, fetch, ttl))
        return Fetched(value, self._clock.now(), cached=False)

    def refresh(self, namespace: str, key: str, fetch: Fetch, ttl: float) -> dict[str, Any]:
        """Fetch now (sharing an in-flight call) and store; raises when the upstream fails."""
        return self._wait(self._start(namespace, key, fetch, ttl))

    def last_failure(self, namespace: str, key: str) -> str | None:
        with self._lock:
            return self._failures.get((namespace, key))

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait for background refreshes to finish (tests, shutdown); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._inflight, timeout=timeout)

    # -- internals ------------------------------------------------------------------------
    def _wait(self, future: Future[dict[str, Any]]) -> dict[str, Any]:
        try:
            return future.result(timeout=self.deadline)
        except FutureTimeout:
            raise self._unreachable(
                f"{self.label} is unreachable (no answer within {self.deadline:g}s)"
            ) from None

    def _start(self, namespace: str, key: str, fetch: Fetch, ttl: float) -> Future[dict[str, Any]]:
        slot = (namespace, key)
        with self._lock:
            running = self._inflight.get(slot)
            if running is not None:
                return running
            future: Future[dict[str, Any]] = Future()
            self._inflight[slot] = future
        # A daemon thread, not an executor: a hung upstream must never block interpreter exit.
        thread = threading.Thread(
            target=self._run,
            args=(slot, fetch, ttl, future),
            name=f"refresh:{namespace}",
            daemon=True,
        )
        thread.start()
        return future

    def _run(
        self, slot: tuple[str, str], fetch: Fetch, ttl: float, future: Future[dict[str, Any]]
    ) -> None:
        try:
            value = fetch()
            self._cache.put(slot[0], slot[1], value, ttl)
        except BaseException as exc:
            with self._lock:
                self._failures[slot] = str(exc) or type(exc).__name__
            if isinstance(exc, ModelariumError):
                log.info("refresh.failed", namespace=slot[0], key=slot[1][:120], error=str(exc))
            else:
                log.exception("refresh.crashed", namespace=slot[0], key=slot[1][:120])
            future.set_exception(exc)
        else:
            with self._lock:
                self._failures.pop(slot, None)
            future.set_result(value)
        finally:
            with self._idle:
                self._inflight.pop(slot, None)
                self._idle.notify_all()
