"""The install and verify jobs.

Install stages: ``resolve`` (the commit's file listing) -> ``reserve`` (free space, reserved in
the database under a per-location lock, so two installs never count the same free bytes) ->
``download`` (resumable, hashed as the bytes stream) -> ``activate`` (trees, snapshot links,
refs, and the record marked installed last). Each stage is idempotent and the disk is the
progress record, so a worker killed at any point is resumed by another from what is on disk.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import sqlalchemy as sa
from huggingface_hub import hf_hub_url

from modelarium import __version__
from modelarium.config.settings import StorageLocation
from modelarium.config.units import format_size
from modelarium.core.clients.huggingface import hub_token
from modelarium.core.clients.s3 import (
    BucketError,
    BucketUnreachable,
    ContentMismatch,
    UploadGone,
)
from modelarium.core.db.models.weights import WeightRecord
from modelarium.core.errors import ModelariumError, is_retryable
from modelarium.core.jobs import JobContext, JobFailed
from modelarium.core.logging import get_logger
from modelarium.core.weights import metrics
from modelarium.core.weights.bucket_install import BucketInstall, bucket_bytes_to_write
from modelarium.core.weights.download import (
    ChecksumMismatch,
    Fetcher,
    FetchTask,
    Transfer,
    TransferCancelled,
    TransferFailed,
    UnsafeLocation,
    hash_file,
    run_parallel,
)
from modelarium.core.weights.layout import (
    RepoFile,
    RepoLayout,
    check_repo_file,
    install_tag,
    link_snapshot,
    prune_repo,
    remove_blobs,
    remove_incomplete,
    write_ref,
    write_tree,
)
from modelarium.core.weights.service import WeightsService, record_files, restore_times

if TYPE_CHECKING:
    from modelarium.core.kernel import Kernel

log = get_logger(__name__)

INSTALL_STAGES = ("resolve", "reserve", "download", "activate")
VERIFY_STAGES = ("verify",)
RESERVE_EVERY = 5.0


class InstallPipeline:
    def __init__(self, kernel: Kernel, service: WeightsService) -> None:
        self._core = kernel
        self.settings = kernel.settings
        self.service = service

    # -- wiring ---------------------------------------------------------------------------------

    def run_install(self, ctx: JobContext, stage: str) -> None:
        getattr(self, f"_{stage}")(ctx)

    def run_verify(self, ctx: JobContext, stage: str) -> None:
        self._verify(ctx)

    def _record(self, ctx: JobContext) -> WeightRecord:
        try:
            return self.service.record(int(ctx.params["weight_id"]))
        except ModelariumError:
            raise JobFailed(
                "its weights record is gone (cancelled or purged)", retry=False
            ) from None

    def _client(self) -> httpx.Client:
        headers = {"User-Agent": f"modelarium/{__version__}", "Accept-Encoding": "identity"}
        token = hub_token(self.settings)
        if token:
            # httpx drops it when a redirect leaves the hub's origin (the CDN), like the hub client.
            headers["Authorization"] = f"Bearer {token}"
        connections = self.settings.download_concurrency * 2
        return httpx.Client(
            headers=headers,
            follow_redirects=True,
            timeout=httpx.Timeout(
                max(60.0, self.settings.hub_timeout), connect=self.settings.hub_timeout
            ),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    def _fail(self, record: WeightRecord, message: str) -> None:
        """Record a failure retrying cannot fix. A reinstall keeps its installed revision (the
        blobs it already replaced were verified; the others were never touched)."""
        if record.reinstall:
            self.service.update(
                record.id, status="installed", reinstall=False, reserved_bytes=0, error=message
            )
        else:
            self.service.update(record.id, status="failed", reserved_bytes=0, error=message)

    # -- stages ---------------------------------------------------------------------------------

    def _resolve(self, ctx: JobContext) -> None:
        record = self._record(ctx)
        if not ctx.state.get("started"):
            # ``written_after``: wall-clock, compared with file times (see ``_fetch``).
            ctx.checkpoint(started=self._core.clock.now().timestamp(), written_after=time.time())
        files = record_files(record)
        if not record.files:
            try:
                commit, files = self.service.resolve(record.repo_id, record.commit)
            except ModelariumError as exc:
                retry = is_retryable(exc)
                if not retry:
                    self._fail(record, str(exc))
                raise JobFailed(str(exc), retry=retry) from None
            if commit != record.commit:
                raise JobFailed(f"the hub resolved {record.commit} to {commit}", retry=False)
        try:
            for file in files:
                check_repo_file(file)
        except ValueError as exc:
            self._fail(record, str(exc))
            raise JobFailed(str(exc), retry=False) from None
        self.service.update(
            record.id,
            files=[f.to_json() for f in files],
            file_count=len(files),
            size_bytes=sum(f.size for f in files),
        )

    def _reserve(self, ctx: JobContext) -> None:
        record = self._record(ctx)
        loc = self.service.location(record.location)
        if loc.is_bucket:
            try:
                needed = (
                    record.size_bytes
                    if record.reinstall
                    else bucket_bytes_to_write(
                        loc, record.repo_id, record.commit, record_files(record)
                    )
                )
            except BucketUnreachable as exc:
                raise JobFailed(str(exc), retry=True) from None
            except BucketError as exc:
                self._fail(record, str(exc))
                raise JobFailed(str(exc), retry=False) from None
        else:
            needed = self.service.bytes_to_write(
                loc,
                record.repo_id,
                record_files(record),
                replace=record.reinstall,
                done=ctx.state.get("done", []),
                tag=install_tag(record.id),
            )
        problem = None
        with self._core.db.transaction() as session:
            self.service.lock_location(session, loc.name)
            usage = self.service.usage(loc)
            others = self.service.reserved(session, loc.name, exclude=record.id)
            available = usage.free - others
            row = session.get(WeightRecord, record.id)
            if row is None:
                raise JobFailed("its weights record is gone", retry=False)
            if needed > available:
                problem = (
                    f"not enough space in {loc.name}: needs {format_size(needed)}, "
                    f"{format_size(max(0, available))} free"
                    + (f" ({format_size(others)} reserved by other installs)" if others else "")
                    + "; free some with `purge`"
                )
            else:
                row.reserved_bytes = needed
        if problem:
            self._fail(record, problem)
            raise JobFailed(problem, retry=False)
        ctx.checkpoint(reserved=needed)

    def _download(self, ctx: JobContext) -> None:
        record = self._record(ctx)
        self._fetch(ctx, record, record_files(record), replace=record.reinstall)

    def _activate(self, ctx: JobContext) -> None:
        record = self._record(ctx)
        loc = self.service.location(record.location)
        if loc.is_bucket:
            self._activate_bucket(ctx, record)
            return
        layout = RepoLayout(loc.path, record.repo_id)
        files = record_files(record)
        # A blob may have gone since the download stage (a crash, a purge of a sibling
        # revision): fetch what is missing rather than link to nothing.
        missing = []
        for file in {f.etag: f for f in files}.values():
            blob = layout.blob(file.etag)
            try:
                if blob.stat().st_size == file.size:
                    continue
                blob.unlink()
            except OSError:
                pass
            missing.append(file)
        if missing:
            self._fetch(ctx, record, missing, replace=False)
        layout.snapshots.mkdir(parents=True, exist_ok=True)
        layout.refs.mkdir(parents=True, exist_ok=True)
        write_tree(layout, record.commit, files)
        link_snapshot(layout, record.commit, files)
        write_ref(layout, record.revision, record.commit)
        self._installed(ctx, record, str(layout.snapshot(record.commit)))

    def _activate_bucket(self, ctx: JobContext, record: WeightRecord) -> None:
        """Every object present with its size (fetch what went missing), then the manifest."""
        loc = self.service.location(record.location)
        files = record_files(record)
        try:
            with self._bucket(ctx, record, loc) as bucket:
                missing = bucket.missing(files)
            if missing:
                self._fetch(ctx, record, missing, replace=False)
            with self._bucket(ctx, record, loc) as bucket:
                still = bucket.missing(files)
                if still:
                    raise BucketError(
                        f"{still[0].path} is not complete in {loc.name}; nothing was activated"
                    )
                uri = bucket.activate(
                    {
                        "model_id": record.repo_id,
                        "version": record.commit,
                        "repo": record.repo_id,
                        "commit": record.commit,
                        "revision": record.revision,
                        "source": f"install from {self.settings.hf_endpoint.rstrip('/')}",
                        "created_by": record.created_by,
                        "created_at": self._core.clock.now().isoformat(),
                        "files": bucket.manifest_files(files),
                    }
                )
        except (BucketUnreachable, UploadGone) as exc:
            raise JobFailed(str(exc), retry=True) from None
        except BucketError as exc:
            self._fail(record, str(exc))
            raise JobFailed(str(exc), retry=False) from None
        self._installed(ctx, record, uri, storage_uri=uri)

    def _installed(self, ctx: JobContext, record: WeightRecord, path: str, **extra: str) -> None:
        loc = self.service.location(record.location)
        now = self._core.clock.now()
        self.service.update(
            record.id,
            status="installed",
            installed_at=now,
            last_access_at=now,
            verified_at=now,
            reserved_bytes=0,
            reinstall=False,
            replaced=None,
            error=None,
        )
        started = float(ctx.state.get("started") or now.timestamp())
        took = max(0.0, now.timestamp() - started)
        metrics.INSTALL_SECONDS.labels(location=loc.name, outcome="installed").observe(took)
        self.service.usage(loc)
        self._core.audit.record(
            record.created_by,
            "weights.installed",
            target=f"{record.repo_id}@{record.commit}",
            params={"location": loc.name, "size": record.size_bytes, "job": ctx.job_id, **extra},
        )
        ctx.checkpoint(path=path, took=took, **extra)

    def _bucket(
        self,
        ctx: JobContext,
        record: WeightRecord,
        loc: StorageLocation,
        checkpoint: Callable[..., None] | None = None,
    ) -> BucketInstall:
        written_after = ctx.state.get("written_after")
        return BucketInstall(
            loc,
            record.repo_id,
            record.commit,
            self.settings,
            ctx.state,
            checkpoint or ctx.checkpoint,
            since=float(written_after) if record.reinstall and written_after else None,
        )

    # -- the transfer ---------------------------------------------------------------------------

    def _fetch(
        self, ctx: JobContext, record: WeightRecord, files: Iterable[RepoFile], *, replace: bool
    ) -> None:
        loc = self.service.location(record.location)
        if loc.is_bucket:
            # One writer of the job's state at a time: the part threads checkpoint uploads.
            lock = threading.Lock()

            def checkpoint(**state: Any) -> None:
                with lock:
                    ctx.checkpoint(**state)

            try:
                with self._bucket(ctx, record, loc, checkpoint) as bucket:
                    self._transfer(ctx, record, files, replace=replace, bucket=bucket)
            except (BucketUnreachable, UploadGone) as exc:
                raise JobFailed(f"upload failed: {exc}", retry=True) from None
            except (BucketError, ContentMismatch) as exc:
                message = f"{exc}; nothing was activated"
                self._fail(record, message)
                self._observe_failure(ctx, loc.name)
                raise JobFailed(message, retry=False) from None
        else:
            self._transfer(ctx, record, files, replace=replace)

    def _transfer(
        self,
        ctx: JobContext,
        record: WeightRecord,
        files: Iterable[RepoFile],
        *,
        replace: bool,
        bucket: BucketInstall | None = None,
    ) -> None:
        """Fetch ``files`` into the location: blobs on a volume, or objects in ``bucket``."""
        loc = self.service.location(record.location)
        layout = RepoLayout(loc.path, record.repo_id)
        tag = install_tag(record.id)
        done: list[str] = list(ctx.state.get("done", []))

        def ident(file: RepoFile) -> str:
            # A volume stores a blob per content; a bucket an object per path.
            return file.path if bucket is not None else file.etag

        unique = {ident(f): f for f in files}
        everything = {ident(f): f for f in record_files(record)}
        tasks = []
        present = sum(f.size for key, f in everything.items() if key not in unique)
        written_after = float(ctx.state.get("written_after") or time.time())
        # Replaced and verified by an earlier attempt of this reinstall (a failed job): checked
        # by hash like any existing blob, fetched again only if that fails.
        kept = set(record.replaced or []) if replace else set()
        for etag, file in unique.items():
            url = hf_hub_url(
                record.repo_id,
                file.path,
                revision=record.commit,
                endpoint=self.settings.hf_endpoint.rstrip("/"),
            )
            if bucket is not None:
                tasks.append(bucket.task(file, url))  # a reinstall: the sink checks the time
                continue
            if replace and (etag in done or _rewritten(layout.blob(etag), written_after)):
                present += file.size
                continue
            tasks.append(
                FetchTask(
                    file,
                    url,
                    layout.incomplete(etag, tag),
                    layout.blob(etag),
                    replace=replace and etag not in kept,
                )
            )
        total = sum(f.size for f in everything.values())
        transfer = Transfer(total, 0, len(everything))
        transfer.add(present, fetched=False)
        transfer.files_done = len(everything) - len(tasks)
        cancel = threading.Event()
        if bucket is not None:
            bucket.stop = cancel  # part uploads stop retrying once the transfer stops
        counted = 0
        last_reserve = time.monotonic()

        def tick() -> None:
            nonlocal counted, last_reserve
            ctx.check_cancelled()
            fetched = transfer.fetched
            metrics.BYTES_DOWNLOADED.labels(location=loc.name).inc(fetched - counted)
            counted = fetched
            speed = transfer.speed()
            remaining = max(0, transfer.total - transfer.done)
            ctx.progress(
                transfer.done,
                transfer.total,
                unit="bytes",
                message=f"{transfer.files_done}/{transfer.files_total} files",
                speed=speed,
                eta=remaining / speed if speed > 0 else None,
                files_done=transfer.files_done,
                files_total=transfer.files_total,
            )
            if time.monotonic() - last_reserve >= RESERVE_EVERY:
                last_reserve = time.monotonic()
                self.service.update(record.id, reserved_bytes=remaining)

        def finished(task: FetchTask) -> None:
            # A verified blob's final name is the durable record of a normal install; only a
            # reinstall, whose blobs already have their names, needs to remember what it redid.
            if replace and bucket is None:
                done.append(task.file.etag)
                ctx.checkpoint(done=done)
                # On the record too: a retry after a failure is a new job, without this state.
                self.service.update(record.id, replaced=sorted(kept | set(done)))

        with self._client() as client:
            fetcher = Fetcher(
                client, transfer, cancel, backoff=self.settings.download_retry_backoff
            )
            try:
                run_parallel(
                    fetcher.fetch,
                    tasks,
                    concurrency=self.settings.download_concurrency,
                    cancel=cancel,
                    tick=tick,
                    on_done=finished,
                )
            except ChecksumMismatch as exc:
                metrics.VERIFY_FAILURES.labels(location=loc.name, stage="install").inc()
                message = f"checksum mismatch: {exc}; nothing was activated"
                self._fail(record, message)
                self._observe_failure(ctx, loc.name)
                raise JobFailed(message, retry=False) from None
            except TransferFailed as exc:
                raise JobFailed(f"download failed: {exc}", retry=True) from None
            except UnsafeLocation as exc:
                message = f"{exc}; nothing was activated"
                self._fail(record, message)
                self._observe_failure(ctx, loc.name)
                raise JobFailed(message, retry=False) from None
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                # Someone else filled the volume past our reservation: say so, keep the
                # partial files (a later install resumes them once space is freed).
                message = f"{loc.name} is full ({exc.strerror}); free space with `purge`"
                self._fail(record, message)
                raise JobFailed(message, retry=False) from None
            except TransferCancelled:
                ctx.check_cancelled()
                raise JobFailed("download interrupted", retry=True) from None
        ctx.progress(
            transfer.done,
            transfer.total,
            unit="bytes",
            message="verified",
            speed=transfer.speed(),
            eta=0,
            files_done=transfer.files_done,
            files_total=transfer.files_total,
            force=True,
        )
        self.service.update(record.id, reserved_bytes=0)

    def _observe_failure(self, ctx: JobContext, location: str) -> None:
        started = ctx.state.get("started")
        if started:
            took = max(0.0, self._core.clock.now().timestamp() - float(started))
            metrics.INSTALL_SECONDS.labels(location=location, outcome="failed").observe(took)

    # -- cancel ---------------------------------------------------------------------------------

    def on_cancel(self, ctx: JobContext) -> None:
        """Remove what the install wrote; a cancelled reinstall leaves the installed copy."""
        record_id = int(ctx.params["weight_id"])
        with self._core.db.transaction() as session:
            record = session.get(WeightRecord, record_id)
            if record is None:
                return
            session.expunge(record)
            others = {
                RepoFile.from_json(f).etag
                for other in session.scalars(
                    sa.select(WeightRecord).where(
                        WeightRecord.repo_id == record.repo_id,
                        WeightRecord.location == record.location,
                        WeightRecord.id != record.id,
                    )
                )
                for f in other.files or []
            }
        try:
            loc = self.service.location(record.location)
        except ModelariumError:
            loc = None
        if loc is not None and loc.is_bucket:
            # Abort the unfinished multipart uploads (their parts are billed) and delete the
            # folder unless its manifest says it is installed (a cancelled reinstall).
            with self._bucket(ctx, record, loc) as bucket:
                if not bucket.cancel(ctx.state):
                    self.service.update(
                        record.id, status="installed", reinstall=False, reserved_bytes=0, error=None
                    )
                    return
        elif loc is not None:
            layout = RepoLayout(loc.path, record.repo_id)
            remove_incomplete(layout, install_tag(record.id))
            if record.reinstall or layout.snapshot(record.commit).is_dir():
                self.service.update(
                    record.id, status="installed", reinstall=False, reserved_bytes=0, error=None
                )
                return
            remove_blobs(layout, [f.etag for f in record_files(record)], others)
            prune_repo(layout, others)
        with self._core.db.transaction() as session:
            row = session.get(WeightRecord, record_id)
            if row is not None and row.status == "installing":
                session.delete(row)

    # -- verify ---------------------------------------------------------------------------------

    def _verify(self, ctx: JobContext) -> None:
        record = self._record(ctx)
        if record.status != "installed":
            raise JobFailed(f"{record.repo_id}@{record.commit[:7]} is {record.status}", retry=False)
        loc = self.service.location(record.location)
        layout = RepoLayout(loc.path, record.repo_id)
        files = list({f.etag: f for f in record_files(record)}.values())
        transfer = Transfer(sum(f.size for f in files), 0, len(files))
        cancel = threading.Event()

        def check(file: RepoFile) -> None:
            blob = layout.blob(file.etag)
            try:
                before = blob.stat()
            except OSError:
                raise ChecksumMismatch(file, "presence", "a file", "nothing on disk") from None
            if before.st_size != file.size:
                raise ChecksumMismatch(file, "size", str(file.size), str(before.st_size))
            digest = hash_file(blob, file, cancel, on_bytes=transfer.add)
            restore_times(blob, before)
            if digest != file.etag:
                blob.unlink(missing_ok=True)  # never serve bytes known to be wrong
                what = "sha256" if file.sha256 else "git blob sha1"
                raise ChecksumMismatch(file, what, file.etag, digest)
            transfer.file_done()

        def tick() -> None:
            ctx.check_cancelled()
            speed = transfer.speed()
            remaining = max(0, transfer.total - transfer.done)
            ctx.progress(
                transfer.done,
                transfer.total,
                unit="bytes",
                message=f"{transfer.files_done}/{transfer.files_total} files",
                speed=speed,
                eta=remaining / speed if speed > 0 else None,
                files_done=transfer.files_done,
                files_total=transfer.files_total,
            )

        try:
            run_parallel(
                check,
                files,
                concurrency=self.settings.download_concurrency,
                cancel=cancel,
                tick=tick,
            )
        except ChecksumMismatch as exc:
            metrics.VERIFY_FAILURES.labels(location=loc.name, stage="verify").inc()
            message = (
                f"verify failed: {exc}; reinstall with "
                f"`install {record.repo_id}@{record.commit[:7]}`"
            )
            self.service.update(record.id, status="failed", error=message)
            raise JobFailed(message, retry=False) from None
        except TransferCancelled:
            ctx.check_cancelled()
            raise JobFailed("verification interrupted", retry=True) from None
        self.service.update(record.id, verified_at=self._core.clock.now(), error=None)
        ctx.checkpoint(files=len(files), bytes=transfer.total)
        ctx.record(
            f"✅ All {len(files)} file(s) of {record.repo_id}@{record.commit[:7]} match the "
            f"hub's hashes ({format_size(transfer.total)})"
        )


def _rewritten(blob: Path, since: float) -> bool:
    """A blob this reinstall already replaced: it was written after the reinstall began (the
    verified file keeps its mtime through the rename). Durable even when the worker died
    between the rename and the ``done`` checkpoint."""
    try:
        return blob.stat().st_mtime >= since
    except OSError:
        return False
