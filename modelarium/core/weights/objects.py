"""Copying files into a bucket location: the transfer shared by publish and upload.

Files go up with :class:`~modelarium.core.clients.s3.ObjectUploader` (a SHA-256 per part, the
whole file's SHA-256 checked before completion). The job's state keeps each unfinished
multipart upload (its id and finished parts) and each finished file, so a resumed job sends only
what is missing. Nothing is activated here: the caller writes the folder's manifest last.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelarium.config.settings import StorageLocation
from modelarium.core.changes import ChangeContext, Failed, Retryable
from modelarium.core.clients.s3 import (
    BucketError,
    BucketUnreachable,
    Cancelled,
    ContentMismatch,
    ObjectUploader,
    UploadState,
    s3_client,
)
from modelarium.core.weights.buckets import Bucket, model_prefix

READ_BLOCK = 4 * 1024 * 1024


@dataclass(frozen=True)
class FileToCopy:
    path: str
    """Relative path inside the model's folder (``config.json``, ``model-00001.safetensors``)."""
    source: Path
    size: int
    sha256: str | None
    """Expected SHA-256 (verified before the upload completes); ``None``: check ``git_sha1``."""
    git_sha1: str | None = None


def git_blob_sha1(data: bytes) -> str:
    """The Hub's id of a small (non-LFS) file: git's blob hash."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _read(path: Path) -> Callable[[int], Iterator[bytes]]:
    def source(offset: int) -> Iterator[bytes]:
        with path.open("rb") as handle:
            handle.seek(offset)
            while block := handle.read(READ_BLOCK):
                yield block

    return source


class BucketCopy:
    """Copies ``files`` into ``<location>/models/<model_id>/<version>/`` for one job."""

    def __init__(
        self, location: StorageLocation, model_id: str, version: str, *, part_size: int,
        concurrency: int, backoff: float = 0.5,
    ) -> None:  # fmt: skip
        self.location = location
        self.model_id = model_id
        self.version = version
        self.prefix = model_prefix(location, model_id, version)
        self.client = s3_client(location, connections=concurrency * 2)
        self.bucket = Bucket(location, self.client)
        self.part_size = part_size
        self.concurrency = concurrency
        self.backoff = backoff

    def key(self, path: str) -> str:
        return f"{self.prefix}{path}"

    def run(self, ctx: ChangeContext, files: list[FileToCopy]) -> dict[str, dict[str, Any]]:
        """Upload what is not done yet; the done map (path -> size, sha256) is checkpointed."""
        done: dict[str, dict[str, Any]] = dict(ctx.state.get("done") or {})
        uploads: dict[str, Any] = dict(ctx.state.get("uploads") or {})
        total = sum(f.size for f in files)
        moved = sum(int(done[f.path]["size"]) for f in files if f.path in done)
        progress = {"bytes": moved}

        def report(force: bool = False) -> None:
            ctx.progress(
                progress["bytes"], total, unit="bytes", message=f"{len(done)}/{len(files)} files",
                files_done=len(done), files_total=len(files), force=force,
            )  # fmt: skip

        def cancelled() -> bool:
            ctx.check_cancelled()
            return False

        with ObjectUploader(
            self.client,
            self.location,
            part_size=self.part_size,
            concurrency=self.concurrency,
            backoff=self.backoff,
        ) as uploader:
            for file in files:
                if file.path in done:
                    continue
                ctx.check_cancelled()
                key = self.key(file.path)
                try:
                    if file.size < uploader.part_size:
                        data = file.source.read_bytes()
                        if file.git_sha1 and git_blob_sha1(data) != file.git_sha1:
                            raise ContentMismatch(f"{file.path}: not the file the Hub lists")
                        result = uploader.put_small(
                            key, data, expected_sha256=file.sha256, cancelled=cancelled
                        )
                        if result.size != file.size:
                            raise ContentMismatch(
                                f"{file.path}: {result.size} bytes, expected {file.size}"
                            )
                    else:
                        state = uploads.get(file.path)

                        def save(s: UploadState, path: str = file.path) -> None:
                            uploads[path] = s.to_json()
                            ctx.checkpoint(uploads=uploads)

                        def moved_bytes(n: int) -> None:
                            progress["bytes"] += n
                            report()

                        result = uploader.upload(
                            key, file.size, _read(file.source),
                            expected_sha256=file.sha256,
                            state=UploadState.from_json(state) if state else None,
                            save=save, on_bytes=moved_bytes, cancelled=cancelled,
                        )  # fmt: skip
                        progress["bytes"] -= file.size  # counted again just below
                except ContentMismatch as exc:
                    uploads.pop(file.path, None)
                    ctx.checkpoint(uploads=uploads)
                    raise Failed(f"{exc}; nothing was activated") from None
                except Cancelled:
                    ctx.check_cancelled()
                    raise Retryable("interrupted") from None
                except BucketUnreachable as exc:
                    raise Retryable(str(exc)) from None
                except BucketError as exc:
                    raise Failed(str(exc)) from None
                except OSError as exc:
                    raise Failed(f"cannot read {file.source}: {exc.strerror or exc}") from None
                uploads.pop(file.path, None)
                done[file.path] = {"size": result.size, "sha256": result.sha256}
                progress["bytes"] += file.size
                ctx.checkpoint(done=done, uploads=uploads)
                report(force=True)
        return done

    def check_complete(self, files: list[FileToCopy], done: dict[str, dict[str, Any]]) -> None:
        """Every file is in the bucket with its size, before the manifest makes it live."""
        present = self.bucket.objects(self.model_id, self.version)
        for file in files:
            if present.get(file.path) != file.size or file.path not in done:
                raise Failed(
                    f"{file.path} is not complete in the bucket ({present.get(file.path)} of "
                    f"{file.size} bytes); nothing was activated"
                )

    def abort_unfinished(self, state: dict[str, Any]) -> int:
        """Abort the multipart uploads a cancelled job left (their parts are billed)."""
        aborted = 0
        with ObjectUploader(self.client, self.location, backoff=self.backoff) as uploader:
            for path, upload in (state.get("uploads") or {}).items():
                uploader.abort(self.key(path), str(upload["upload_id"]))
                aborted += 1
        return aborted
