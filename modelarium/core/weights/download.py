"""Resumable, verified file downloads: HTTP Range, hashing while the bytes stream, bounded
parallelism.

A file is written to ``blobs/<etag>.<install>.incomplete`` and renamed to ``blobs/<etag>`` only
once its hash matched, so a blob's final name means "verified". The partial file is the durable
progress record: a worker killed at any moment leaves a prefix on disk, and the next attempt (any
process) re-hashes that prefix once and asks the hub for the rest with ``Range: bytes=N-``.
huggingface_hub itself neither resumes across processes nor checks LFS sha256, hence this module.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import os
import queue
import stat
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx

from modelarium.core.weights.layout import RepoFile

READ_CHUNK = 8 * 1024 * 1024
STREAM_BUFFER = 1024 * 1024
"""Bytes gathered from the response before one hash update and one write: large enough that
both release the GIL for long stretches (hashlib does above 2 KiB; the 64 KiB pieces httpcore
reads would mean 16k write calls per GiB), small enough to stay in the CPU cache between the
copy in, the hash and the write."""
WRITEBACK = 32 * 1024 * 1024
"""Written bytes after which the kernel is asked to start putting them on disk."""
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


class UnsafeLocation(Exception):
    """Something in the weights location is not what the installer itself would have put there
    (a symlink in ``blobs/``, a directory swapped for a link): refused rather than followed."""


_NOFOLLOW = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def open_blobs_dir(blobs: Path) -> int:
    """A descriptor of ``<root>/<repo folder>/blobs``, creating what is missing, refusing a
    symlink at the repo folder or at ``blobs`` (the location root itself is the operator's and
    may be one). Every later open and rename is relative to it, so a path swapped for a link
    after this check is not followed either."""
    repo = blobs.parent
    repo.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(repo.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in (repo.name, blobs.name):
            flags = os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW
            try:
                try:
                    child = os.open(name, flags, dir_fd=fd)
                except FileNotFoundError:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(name, 0o755, dir_fd=fd)
                    child = os.open(name, flags, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafeLocation(
                        f"{repo if name == repo.name else blobs} is not a directory "
                        "(a symlink?); refusing to write through it"
                    ) from None
                raise
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def _open_in(dir_fd: int, name: str, flags: int, where: Path) -> int:
    """``open`` relative to ``dir_fd`` that never follows a symlink at ``name``."""
    try:
        return os.open(name, flags | _NOFOLLOW, 0o644, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeLocation(f"{where / name} is a symlink; refusing to follow it") from None
        raise


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


class Sink(Protocol):
    """Where one fetched file goes: a blob on a volume (:class:`BlobSink`) or an object in a
    bucket (:class:`~modelarium.core.weights.bucket_install.ObjectSink`). The download loop is
    the same; only the destination differs."""

    def complete(self, file: RepoFile, fetcher: Fetcher) -> bool:
        """The verified file is already there (an earlier attempt finished it); its bytes are
        counted in ``fetcher.transfer`` as present."""
        ...

    def open(self) -> AbstractContextManager[Any]:
        """A handle the loop writes to (``write``; ``seek``/``truncate`` to the current position
        or to 0); closed whatever happens."""
        ...

    def resume(self, handle: Any, file: RepoFile, fetcher: Fetcher) -> tuple[Any, int]:
        """(hasher over the bytes kept, offset to fetch from)."""
        ...

    def commit(self, handle: Any) -> None:
        """The bytes hashed to what the hub promised: make the file final."""
        ...

    def discard(self, handle: Any) -> None:
        """The bytes are wrong: remove what was written."""
        ...


class BlobSink:
    """``blobs/<etag>.<install>.incomplete``, renamed to ``blobs/<etag>`` once verified.

    Every open, rename and unlink is relative to a descriptor of ``blobs/`` and never follows a
    symlink, so nothing planted in the location can redirect a write outside it."""

    def __init__(self, partial: Path | None, final: Path | None, *, durable: bool = True) -> None:
        if partial is None or final is None:
            raise ValueError("a blob sink needs its partial and final paths")
        self.partial = partial
        self.final = final
        self.durable = durable
        self._dir_fd: int | None = None

    def complete(self, file: RepoFile, fetcher: Fetcher) -> bool:
        """Whether ``blobs/<etag>`` already holds the right bytes. Its name alone is not proof
        (planted, damaged, left by another tool): it is hashed, which costs a read, not a
        download; a wrong one is removed and fetched again. A symlink there is refused."""
        name = self.final.name
        dir_fd = open_blobs_dir(self.partial.parent)
        try:
            try:
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                return False
            if not stat.S_ISREG(info.st_mode):
                raise UnsafeLocation(
                    f"{self.final} is not a regular file (a symlink?); refusing it"
                )
            if info.st_size == file.size:
                fd = _open_in(dir_fd, name, os.O_RDONLY, self.partial.parent)
                with open(fd, "rb", buffering=0) as handle:
                    hasher = new_hasher(file)
                    done = _hash_stream(handle, hasher, file.size, fetcher.cancel, fetcher.transfer)
                if done == file.size and hasher.hexdigest() == file.etag:
                    # A check is not a use: keep the access time LRU purges go by.
                    with contextlib.suppress(OSError):
                        os.utime(
                            name,
                            ns=(info.st_atime_ns, info.st_mtime_ns),
                            dir_fd=dir_fd,
                            follow_symlinks=False,
                        )
                    return True
                fetcher.transfer.rewind(done)
            os.unlink(name, dir_fd=dir_fd)
            return False
        finally:
            os.close(dir_fd)

    @contextmanager
    def open(self) -> Iterator[Any]:
        blobs = self.partial.parent
        dir_fd = open_blobs_dir(blobs)
        self._dir_fd = dir_fd
        try:
            fd = _open_in(dir_fd, self.partial.name, os.O_RDWR | os.O_CREAT, blobs)
            with open(fd, "r+b", buffering=0) as handle:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise UnsafeLocation(f"{self.partial} is not a regular file; refusing it")
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise TransferFailed(
                        f"{self.partial.name}: another worker is still writing it"
                    ) from None
                yield handle
        finally:
            self._dir_fd = None
            os.close(dir_fd)

    def resume(self, handle: Any, file: RepoFile, fetcher: Fetcher) -> tuple[Any, int]:
        """Re-hash the prefix already on disk (once per resume: cheap next to re-downloading)."""
        size = os.fstat(handle.fileno()).st_size
        if size > file.size:
            handle.truncate(0)
            size = 0
        hasher = new_hasher(file)
        if size:
            size = _hash_stream(handle, hasher, size, fetcher.cancel, fetcher.transfer)
            handle.truncate(size)
        return hasher, size

    def commit(self, handle: Any) -> None:
        if self.durable:
            os.fsync(handle.fileno())
        os.replace(
            self.partial.name, self.final.name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd
        )

    def discard(self, handle: Any) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.partial.name, dir_fd=self._dir_fd)


@dataclass(frozen=True)
class FetchTask:
    file: RepoFile
    url: str
    partial: Path | None
    final: Path | None
    replace: bool = False
    """Reinstall: fetch even though the final blob exists, then replace it."""
    sink: Sink | None = None
    """Another destination than the volume's blob (``partial``/``final`` unused then)."""


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
        except (ChecksumMismatch, TransferFailed, UnsafeLocation):
            # Stop the sibling transfers (and any not started) now: the job fails or retries.
            self.cancel.set()
            raise

    def _fetch(self, task: FetchTask) -> None:
        file = task.file
        sink = task.sink or BlobSink(task.partial, task.final, durable=self.durable)
        if not task.replace and sink.complete(file, self):
            self.transfer.file_done()
            return
        with sink.open() as handle:
            for from_scratch in (False, True):
                hasher, offset = sink.resume(handle, file, self)
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
                sink.discard(handle)
                what = "sha256" if file.sha256 else "git blob sha1"
                raise ChecksumMismatch(file, what, file.etag, digest)
            sink.commit(handle)
        self.transfer.file_done()

    def _stream(self, handle: Any, task: FetchTask, hasher: Any, offset: int) -> Any:
        file = task.file
        failures = 0
        best = offset
        size = min(STREAM_BUFFER, max(1, file.size))
        buffers = (memoryview(bytearray(size)), memoryview(bytearray(size)))
        while offset < file.size:
            if self.cancel.is_set():
                raise TransferCancelled()
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            try:
                with self.client.stream("GET", task.url, headers=headers) as response:
                    status = response.status_code
                    if status not in (200, 206):
                        if status in RETRYABLE_STATUS:
                            raise _Retry(f"HTTP {status}")
                        raise TransferFailed(f"{file.path}: the hub answered HTTP {status}")
                    encoded = response.headers.get("content-encoding", "identity") != "identity"
                    start = 0
                    if status == 206:
                        start, end, total = _content_range(response.headers.get("content-range"))
                        if start != offset or end != file.size - 1 or total != file.size:
                            raise _Retry(
                                f"asked for bytes {offset}-{file.size - 1}/{file.size}, got "
                                f"{response.headers.get('content-range')!r}"
                            )
                    length = response.headers.get("content-length")
                    if not encoded and length is not None and length != str(file.size - start):
                        # A short (or long) answer, however well-formed, is not the file.
                        raise _Retry(
                            f"HTTP {status} of {length} bytes where {file.size - start} were asked"
                        )
                    if status == 200 and offset:
                        # The server ignored the Range: start this file over.
                        self.transfer.rewind(offset)
                        offset = 0
                        hasher = new_hasher(file)
                    handle.truncate(offset)
                    # A destination without a file descriptor (a bucket's multipart writer)
                    # takes the bytes through its write(), in order.
                    fd = handle.fileno() if hasattr(handle, "fileno") else None
                    if fd is not None:
                        _preallocate(fd, offset, file.size - offset)
                    sink = _Sink(
                        fd,
                        hasher,
                        offset,
                        buffers,
                        self.transfer,
                        pipelined=file.size - offset > 2 * size,
                        write=None if fd is not None else handle.write,
                    )
                    chunks = response.iter_bytes() if encoded else response.iter_raw()
                    feed = sink.feed
                    cancel = self.cancel
                    try:
                        for chunk in chunks:
                            if sink.accepted + len(chunk) > file.size:
                                raise ChecksumMismatch(
                                    file,
                                    "size",
                                    str(file.size),
                                    f"more than {sink.accepted + len(chunk)} bytes",
                                )
                            feed(chunk)
                            if cancel.is_set():
                                raise TransferCancelled()
                        sink.drain()
                    except httpx.TransportError:
                        sink.drain()  # what arrived before the cut is good: keep it
                        raise
                    finally:
                        sink.close()
                        offset = sink.offset
                    if offset != file.size:
                        raise _Retry(f"the response ended at byte {offset} of {file.size}")
            except (httpx.TransportError, _Retry) as exc:
                # Only bytes beyond the best point reached so far are progress: a server that
                # keeps restarting the file (or sends short answers) must run out of attempts.
                failures = 0 if offset > best else failures + 1
                best = max(best, offset)
                if failures > self.retries:
                    raise TransferFailed(f"{file.path}: {_short(exc)}") from None
                if self.cancel.wait(min(8.0, self.backoff * 2 ** max(0, failures - 1))):
                    raise TransferCancelled() from None
        return hasher


class _Sink:
    """The bytes of one response on their way to disk: copied once into a large buffer, then
    hashed and written (``pwrite``, no extra copy) a buffer at a time.

    With ``pipelined``, a second thread hashes and writes one buffer while this one reads the
    next into the other buffer: both ``sha256`` and ``pwrite`` release the GIL, so even a single
    large file keeps two cores busy (HTTP parsing here, hashing there) instead of one doing both
    in turn. ``offset`` is what is on disk; ``accepted`` what was fed.
    """

    def __init__(
        self,
        fd: int | None,
        hasher: Any,
        offset: int,
        buffers: tuple[memoryview, memoryview],
        transfer: Transfer,
        *,
        pipelined: bool,
        write: Callable[[memoryview], Any] | None = None,
    ) -> None:
        self.fd = fd
        self.write = write
        """Without ``fd``: where the bytes go (it must copy them: the buffer is reused)."""
        self.hasher = hasher
        self.offset = self.accepted = self.synced = offset
        self.transfer = transfer
        self.buffer = buffers[0]
        self.fill = 0
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if pipelined:
            self._free: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
            self._free.put(buffers[1])
            self._work: queue.Queue[tuple[memoryview, int] | None] = queue.Queue()
            self._thread = threading.Thread(target=self._writer, name="weights-sink", daemon=True)
            self._thread.start()

    def feed(self, chunk: bytes) -> None:
        n = len(chunk)
        fill = self.fill
        if fill + n > len(self.buffer):
            self._hand_off()
            fill = 0
            if n > len(self.buffer):
                self.drain()
                self._commit(memoryview(chunk))
                self.accepted += n
                return
        self.buffer[fill : fill + n] = chunk
        self.fill = fill + n
        self.accepted += n

    def drain(self) -> None:
        """Put everything fed so far on disk (and in the hash); raise the writer's error."""
        self._hand_off()
        if self._thread is not None:
            self._work.join()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Stop the writer thread (what it was given is finished first)."""
        if self._thread is not None:
            self._work.put(None)
            self._thread.join()
            self._thread = None

    def _hand_off(self) -> None:
        if not self.fill:
            return
        buffer, fill = self.buffer, self.fill
        self.fill = 0
        if self._thread is None:
            self._commit(buffer[:fill])
            return
        self._work.put((buffer, fill))
        self.buffer = self._free.get()  # back once the writer is done with it
        if self.error is not None:
            raise self.error

    def _writer(self) -> None:
        while True:
            item = self._work.get()
            try:
                if item is None:
                    return
                if self.error is None:
                    self._commit(item[0][: item[1]])
            except BaseException as exc:  # handed to the reading thread
                self.error = exc
            finally:
                if item is not None:
                    self._free.put(item[0])
                self._work.task_done()

    def _commit(self, data: memoryview) -> None:
        self.hasher.update(data)
        if self.fd is None:
            assert self.write is not None
            self.write(data)
            written = len(data)
        else:
            written = 0
            while written < len(data):
                written += os.pwrite(self.fd, data[written:], self.offset + written)
        self.offset += written
        self.transfer.add(written)
        if self.fd is not None and self.offset - self.synced >= WRITEBACK:
            _start_writeback(self.fd, self.synced, self.offset - self.synced)
            self.synced = self.offset


def _load_libc(name: str) -> Any:
    """``fallocate`` or ``sync_file_range`` (Linux; ``(int, int|int64, int64, int|uint)``
    arguments), or None where the C library has no such function."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    if name == "fallocate":
        function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    else:
        function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_FALLOCATE = _load_libc("fallocate")
_SYNC_FILE_RANGE = _load_libc("sync_file_range")
_SYNC_FILE_RANGE_WRITE = 2


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing these pages now (``SYNC_FILE_RANGE_WRITE`` does not wait
    for them): the disk works while the download goes on, so the one ``fsync`` before the file
    gets its verified name has little left to do instead of the whole file. Best effort."""
    global _SYNC_FILE_RANGE
    if _SYNC_FILE_RANGE is None:
        return
    failed = _SYNC_FILE_RANGE(fd, offset, length, _SYNC_FILE_RANGE_WRITE)
    if failed and ctypes.get_errno() in (errno.ENOSYS, errno.EOPNOTSUPP, errno.ESPIPE):
        _SYNC_FILE_RANGE = None


_FALLOC_FL_KEEP_SIZE = 1


def _preallocate(fd: int, offset: int, length: int) -> None:
    """Reserve the blocks the rest of the file will take (fewer, larger extents; a full disk
    fails here rather than half way). ``FALLOC_FL_KEEP_SIZE``, not ``os.posix_fallocate``: the
    size of a partial file is its resume point, so it must only grow with verified-as-streamed
    bytes. Filesystems that cannot preallocate are simply not asked again."""
    global _FALLOCATE
    if length <= 0 or _FALLOCATE is None:
        return
    if _FALLOCATE(fd, _FALLOC_FL_KEEP_SIZE, offset, length) == 0:
        return
    err = ctypes.get_errno()
    if err in (errno.ENOSPC, errno.EDQUOT):
        raise OSError(err, os.strerror(err))
    if err in (errno.EOPNOTSUPP, errno.ENOSYS):
        _FALLOCATE = None


def _hash_stream(
    handle: Any, hasher: Any, size: int, cancel: threading.Event, transfer: Transfer
) -> int:
    """Feed up to ``size`` bytes of ``handle`` (from its start) to ``hasher``; returns how many
    there were. Counted as present (not fetched) bytes."""
    handle.seek(0)
    buffer = bytearray(min(READ_CHUNK, max(size, 1)))
    view = memoryview(buffer)
    remaining = size
    while remaining:
        if cancel.is_set():
            raise TransferCancelled()
        n = handle.readinto(view[: min(len(buffer), remaining)])
        if not n:
            break
        hasher.update(view[:n])
        remaining -= n
        transfer.add(n, fetched=False)
    return size - remaining


class _Retry(Exception):
    pass


def _content_range(header: str | None) -> tuple[int | None, int | None, int | None]:
    """``bytes 100-199/200`` -> (100, 199, 200); None for what is missing or malformed."""
    try:
        unit, _, rest = (header or "").strip().partition(" ")
        if unit.lower() != "bytes":
            return None, None, None
        span, _, total = rest.partition("/")
        first, _, last = span.partition("-")
        return int(first), int(last), int(total) if total != "*" else None
    except ValueError:
        return None, None, None


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
