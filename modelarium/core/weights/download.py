"""Resumable, verified file downloads: HTTP Range, hashing while the bytes stream, bounded
parallelism.

A file is written to ``blobs/<etag>.<install>.incomplete`` and renamed to ``blobs/<etag>`` only
once its hash matched, so a blob's final name means "verified". The partial file is the durable
progress record: a worker killed at any moment leaves a prefix on disk, and the next attempt (any
process) re-hashes that prefix once and asks the hub for the rest with ``Range: bytes=N-``.
huggingface_hub itself neither resumes across processes nor checks LFS sha256, hence this module.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from modelarium.core.weights.layout import RepoFile

READ_CHUNK = 8 * 1024 * 1024
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
T = TypeVar("T")


class ChecksumMismatch(Exception):
    """The bytes the hub served do not hash to what its listing promised."""

    def __init__(self, file: RepoFile, what: str, expected: str, actual: str) -> None:
        super().__init__(f"{file.path}: {what} mismatch (expected {expected}, got {actual})")
        self.file = file


class TransferFailed(Exception):
    """A file could not be fetched after retries; a later attempt may succeed."""


class TransferCancelled(Exception):
    """The caller asked the transfer to stop."""


def new_hasher(file: RepoFile) -> Any:
    """sha256 of the content for LFS files; the git blob sha1 (``blob <size>\\0`` + content)
    for the rest, which is exactly the hub's ETag for them."""
    if file.sha256:
        return hashlib.sha256()
    hasher = hashlib.sha1(usedforsecurity=False)
    hasher.update(f"blob {file.size}\0".encode())
    return hasher


def hash_file(
    path: Path,
    file: RepoFile,
    cancel: threading.Event | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> str:
    """Hash a whole file on disk (verify jobs)."""
    hasher = new_hasher(file)
    buffer = bytearray(READ_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while True:
            if cancel is not None and cancel.is_set():
                raise TransferCancelled()
            n = handle.readinto(buffer)
            if not n:
                break
            hasher.update(view[:n])
            if on_bytes is not None:
                on_bytes(n)
    return str(hasher.hexdigest())


class Transfer:
    """Counters shared by the download threads and the job thread that reports progress."""

    def __init__(self, total: int, present: int = 0, files_total: int = 0) -> None:
        self._lock = threading.Lock()
        self.total = total
        self.done = present
        self.fetched = 0
        self.files_total = files_total
        self.files_done = 0
        self.started = time.monotonic()
        self._samples: deque[tuple[float, int]] = deque(maxlen=64)

    def add(self, n: int, *, fetched: bool = True) -> None:
        with self._lock:
            self.done += n
            if fetched:
                self.fetched += n

    def rewind(self, n: int) -> None:
        with self._lock:
            self.done -= n

    def file_done(self) -> None:
        with self._lock:
            self.files_done += 1

    def speed(self) -> float:
        """Bytes/s over roughly the last ten seconds of network transfer (not resumed bytes)."""
        now = time.monotonic()
        with self._lock:
            self._samples.append((now, self.fetched))
            while len(self._samples) > 2 and now - self._samples[0][0] > 10:
                self._samples.popleft()
            t0, b0 = self._samples[0]
            if now - t0 < 0.5:
                elapsed = now - self.started
                return self.fetched / elapsed if elapsed > 0 else 0.0
            return (self.fetched - b0) / (now - t0)


@dataclass(frozen=True)
class FetchTask:
    file: RepoFile
    url: str
    partial: Path
    final: Path
    replace: bool = False
    """Reinstall: fetch even though the final blob exists, then replace it."""


class Fetcher:
    """Downloads one file at a time per calling thread; share one per transfer."""

    def __init__(
        self,
        client: httpx.Client,
        transfer: Transfer,
        cancel: threading.Event,
        *,
        retries: int = 5,
        backoff: float = 0.5,
        durable: bool = True,
    ) -> None:
        self.client = client
        self.transfer = transfer
        self.cancel = cancel
        self.retries = retries
        self.backoff = backoff
        self.durable = durable

    def fetch(self, task: FetchTask) -> None:
        try:
            self._fetch(task)
        except (ChecksumMismatch, TransferFailed):
            # Stop the sibling transfers (and any not started) now: the job fails or retries.
            self.cancel.set()
            raise

    def _fetch(self, task: FetchTask) -> None:
        file = task.file
        if not task.replace and task.final.exists():
            self.transfer.add(file.size, fetched=False)
            self.transfer.file_done()
            return
        task.partial.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(task.partial, os.O_RDWR | os.O_CREAT, 0o644)
        with open(fd, "r+b", buffering=0) as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise TransferFailed(f"{file.path}: another worker is still writing it") from None
            for from_scratch in (False, True):
                hasher, offset = self._resume(handle, file)
                resumed = offset > 0
                hasher = self._stream(handle, task, hasher, offset)
                digest = hasher.hexdigest()
                if digest == file.etag:
                    break
                self.transfer.rewind(file.size)
                handle.truncate(0)
                if resumed and not from_scratch:
                    # The kept prefix may be what is wrong (a host crash loses unsynced pages):
                    # fetch the file once from zero before blaming the hub.
                    continue
                task.partial.unlink(missing_ok=True)
                what = "sha256" if file.sha256 else "git blob sha1"
                raise ChecksumMismatch(file, what, file.etag, digest)
            if self.durable:
                os.fsync(handle.fileno())
            os.replace(task.partial, task.final)
        self.transfer.file_done()

    def _resume(self, handle: Any, file: RepoFile) -> tuple[Any, int]:
        """Re-hash the prefix already on disk (once per resume: cheap next to re-downloading)."""
        size = os.fstat(handle.fileno()).st_size
        if size > file.size:
            handle.truncate(0)
            size = 0
        hasher = new_hasher(file)
        if size:
            handle.seek(0)
            buffer = bytearray(READ_CHUNK)
            view = memoryview(buffer)
            remaining = size
            while remaining:
                if self.cancel.is_set():
                    raise TransferCancelled()
                n = handle.readinto(view[: min(READ_CHUNK, remaining)])
                if not n:
                    break
                hasher.update(view[:n])
                remaining -= n
            size -= remaining
            handle.truncate(size)
            self.transfer.add(size, fetched=False)
        return hasher, size

    def _stream(self, handle: Any, task: FetchTask, hasher: Any, offset: int) -> Any:
        file = task.file
        failures = 0
        while offset < file.size:
            if self.cancel.is_set():
                raise TransferCancelled()
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            progressed = False
            try:
                with self.client.stream("GET", task.url, headers=headers) as response:
                    status = response.status_code
                    if status == 200 and offset:
                        # The server ignored the Range: start this file over.
                        self.transfer.rewind(offset)
                        offset = 0
                        hasher = new_hasher(file)
                    elif status == 206:
                        start = _range_start(response.headers.get("content-range", ""))
                        if start != offset:
                            raise _Retry(f"asked for byte {offset}, got a range from {start}")
                    elif status != 200:
                        if status in RETRYABLE_STATUS:
                            raise _Retry(f"HTTP {status}")
                        raise TransferFailed(f"{file.path}: the hub answered HTTP {status}")
                    handle.seek(offset)
                    handle.truncate(offset)
                    encoded = response.headers.get("content-encoding", "identity") != "identity"
                    chunks = response.iter_bytes() if encoded else response.iter_raw()
                    write = handle.write
                    update = hasher.update
                    add = self.transfer.add
                    cancel = self.cancel
                    for chunk in chunks:
                        n = len(chunk)
                        if offset + n > file.size:
                            raise ChecksumMismatch(
                                file, "size", str(file.size), f"more than {offset + n} bytes"
                            )
                        write(chunk)
                        update(chunk)
                        offset += n
                        add(n)
                        progressed = True
                        if cancel.is_set():
                            raise TransferCancelled()
            except (httpx.TransportError, _Retry) as exc:
                failures = 0 if progressed else failures + 1
                if failures > self.retries:
                    raise TransferFailed(f"{file.path}: {_short(exc)}") from None
                if self.cancel.wait(min(8.0, self.backoff * 2 ** max(0, failures - 1))):
                    raise TransferCancelled() from None
        return hasher


class _Retry(Exception):
    pass


def _range_start(header: str) -> int | None:
    # "bytes 100-199/200"
    try:
        unit, _, rest = header.partition(" ")
        if unit != "bytes":
            return None
        return int(rest.split("-", 1)[0])
    except ValueError:
        return None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


def run_parallel(
    work: Callable[[T], None],
    tasks: Iterable[T],
    *,
    concurrency: int,
    cancel: threading.Event,
    tick: Callable[[], None],
    on_done: Callable[[T], None] | None = None,
    interval: float = 0.5,
) -> None:
    """Run ``work`` over ``tasks`` on ``concurrency`` threads; call ``tick`` on this thread
    every ``interval`` (progress, cancel checks and DB writes stay on the job's own thread).

    The first failure (or an exception from ``tick``) sets ``cancel`` and waits for the other
    threads to stop before it propagates, so no thread still writes while the caller cleans up.
    """
    tasks = list(tasks)
    if not tasks:
        tick()
        return
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="weights")
    futures: dict[Future[None], T] = {}
    try:
        futures = {pool.submit(work, task): task for task in tasks}
        pending = set(futures)
        next_tick = time.monotonic()
        while pending:
            # FIRST_COMPLETED, so on_done records each file as soon as it is finished.
            done, pending = wait(pending, timeout=interval, return_when=FIRST_COMPLETED)
            failed = {f for f in done if f.exception() is not None}
            if on_done is not None:
                for future in done - failed:
                    on_done(futures[future])
            if failed:
                break
            if time.monotonic() >= next_tick or not pending:
                next_tick = time.monotonic() + interval
                tick()
    finally:
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
    # Every thread has stopped: report the failure that caused the stop, not the
    # cancellations it caused in the sibling threads.
    errors = [
        error
        for future in futures
        if not future.cancelled() and (error := future.exception()) is not None
    ]
    real = [e for e in errors if not isinstance(e, TransferCancelled)]
    if real or errors:
        raise (real or errors)[0]
