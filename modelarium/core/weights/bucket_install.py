"""Installing from the Hub straight into a bucket location: the destination side of the install.

An install into a bucket is the same change and job as one into a volume (``weights.install``:
resolve -> reserve -> download -> activate) and uses the same download loop
(:class:`~modelarium.core.weights.download.Fetcher`: HTTP Range, retries, the Hub's hash
computed as the bytes stream). Only the destination of each file differs: an
:class:`ObjectSink` streams the bytes into a multipart upload (:class:`ObjectWriter`: a SHA-256
per part, sent as ``x-amz-checksum-sha256``) and completes the object only once the whole file
hashed to the Hub's sha256 (or git blob sha1). An object whose metadata names its Hub etag was
therefore verified: a resumed attempt skips it.

Resume: the job's state keeps each unfinished upload (its id and completed parts). The whole
file's hash needs every byte, so a resumed attempt fetches an interrupted file from the Hub again
from its start, but sends none of the parts the bucket already holds with the same SHA-256.

Activation: every object present with its size, then the manifest, written last. A folder
without its manifest is not installed; a cancel aborts the unfinished uploads and deletes the
folder.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from modelarium.config.settings import Settings, StorageLocation
from modelarium.core.clients.s3 import (
    BucketError,
    ObjectUploader,
    ObjectWriter,
    UploadState,
    bucket_errors,
    part_size_for,
    read_object,
    s3_client,
)
from modelarium.core.weights.buckets import Bucket, manifest_key, model_prefix, storage_uri
from modelarium.core.weights.download import Fetcher, FetchTask, new_hasher
from modelarium.core.weights.layout import RepoFile

ETAG_KEY = "hub-etag"
"""Object metadata: the Hub's id of the file (sha256 or git blob sha1) the object was verified
against before it was completed."""


def bucket_bytes_to_write(
    location: StorageLocation, repo_id: str, commit: str, files: Iterable[RepoFile]
) -> int:
    """What an install into a bucket still has to upload: the files without an object of their
    size (one listing)."""
    present = Bucket(location).objects(repo_id, commit)
    unique = {f.path: f for f in files}
    return sum(f.size for path, f in unique.items() if present.get(path) != f.size)


class BucketInstall:
    """One attempt of an install job into a bucket: the uploads in flight and their checkpoint.

    ``checkpoint`` persists job state; it is called from the download and part threads, so the
    caller serialises it with its own writes.
    """

    def __init__(
        self,
        location: StorageLocation,
        repo_id: str,
        commit: str,
        settings: Settings,
        state: dict[str, Any],
        checkpoint: Callable[..., None],
        *,
        since: float | None = None,
    ) -> None:
        self.location = location
        self.repo_id = repo_id
        self.commit = commit
        self.prefix = model_prefix(location, repo_id, commit)
        concurrency = settings.s3_concurrency
        self.client = s3_client(location, connections=concurrency + settings.download_concurrency)
        self.bucket = Bucket(location, self.client)
        self.uploader = ObjectUploader(
            self.client,
            location,
            part_size=settings.s3_part_size,
            concurrency=concurrency,
            backoff=settings.s3_retry_backoff,
        )
        self.window = max(2, -(-concurrency // max(1, settings.download_concurrency)) + 1)
        self.since = since
        """A reinstall: objects written before it began are replaced."""
        self.uploads: dict[str, Any] = dict(state.get("uploads") or {})
        self.sha256: dict[str, str] = dict(state.get("objects") or {})
        self._checkpoint = checkpoint
        self._lock = threading.Lock()
        self.stop = threading.Event()
        """Set when the transfer stops (the download loop's event once it runs)."""
        self.sent_parts = 0
        self.reused_parts = 0

    def close(self) -> None:
        self.uploader.close()

    def __enter__(self) -> BucketInstall:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def key(self, path: str) -> str:
        return f"{self.prefix}{path}"

    def task(self, file: RepoFile, url: str) -> FetchTask:
        return FetchTask(file, url, None, None, sink=ObjectSink(self, file))

    # -- what the sinks report (download and part threads) ------------------------------------

    def holds(self, file: RepoFile) -> bool:
        """The object is there, verified against this file (and, for a reinstall, rewritten
        since it began)."""
        with bucket_errors(self.location, f"checking {file.path}"):
            try:
                head = self.client.head_object(Bucket=self.location.bucket, Key=self.key(file.path))
            except ClientError as exc:  # a 404 is "not there"; the rest is the bucket's error
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                    return False
                raise
        if int(head.get("ContentLength", -1)) != file.size:
            return False
        if (head.get("Metadata") or {}).get(ETAG_KEY) != file.etag:
            return False
        modified: datetime | None = head.get("LastModified")
        return self.since is None or (modified is not None and modified.timestamp() >= self.since)

    def adopt(self, file: RepoFile) -> UploadState | None:
        """The unfinished upload of this object that an earlier job left (a failed or killed
        install, retried as a new change): resumed rather than left billed beside a new one.
        Older ones are aborted."""
        key = self.key(file.path)
        uploads = sorted(
            (u for u in self.bucket.stale_uploads(prefix=key, older_than=0.0) if u.key == key),
            key=lambda u: u.initiated,
        )
        if not uploads:
            return None
        for stale in uploads[:-1]:
            self.bucket.abort(stale)
        state = UploadState(
            uploads[-1].upload_id, part_size_for(file.size, self.uploader.part_size)
        )
        self.save(file.path, state)
        return state

    def save(self, path: str, state: UploadState) -> None:
        with self._lock:
            self.uploads[path] = state.to_json()
            self._checkpoint(uploads=dict(self.uploads))

    def finished(self, path: str, sha256: str | None, writer: ObjectWriter) -> None:
        with self._lock:
            self.uploads.pop(path, None)
            if sha256:
                self.sha256[path] = sha256
            self.sent_parts += writer.sent
            self.reused_parts += writer.reused
            self._checkpoint(uploads=dict(self.uploads), objects=dict(self.sha256))

    def forget(self, path: str) -> None:
        with self._lock:
            self.uploads.pop(path, None)
            self._checkpoint(uploads=dict(self.uploads))

    # -- activation ---------------------------------------------------------------------------

    def missing(self, files: Iterable[RepoFile]) -> list[RepoFile]:
        """Files without an object of their size (gone since the download stage)."""
        present = self.bucket.objects(self.repo_id, self.commit)
        unique = {f.path: f for f in files}
        return [f for path, f in sorted(unique.items()) if present.get(path) != f.size]

    def manifest_files(self, files: Iterable[RepoFile]) -> list[dict[str, Any]]:
        """Each file's size and sha256 for the manifest. Small (git) files whose sha256 this
        attempt did not compute are read back and checked against their git blob id."""
        out = []
        for path, file in sorted({f.path: f for f in files}.items()):
            digest = file.sha256 or self.sha256.get(path)
            if not digest:
                data = read_object(self.client, self.location, self.key(path))
                hasher = new_hasher(file)
                hasher.update(data or b"")
                if data is None or hasher.hexdigest() != file.etag:
                    raise BucketError(
                        f"{path} in s3://{self.location.bucket} is not the file the Hub lists"
                    )
                digest = hashlib.sha256(data).hexdigest()
            out.append({"path": path, "size": file.size, "sha256": digest})
        return out

    def activate(self, manifest: dict[str, Any]) -> str:
        """Write the manifest (the activation) and return the folder's ``storage_uri``."""
        self.bucket.write_manifest(self.repo_id, self.commit, manifest)
        return storage_uri(self.location, self.repo_id, self.commit)

    def manifest_key(self) -> str:
        return manifest_key(self.location, self.repo_id, self.commit)

    def cancel(self, state: dict[str, Any]) -> bool:
        """Abort the unfinished uploads; delete the folder unless it is activated (a cancelled
        reinstall keeps its installed copy). True if the folder was removed."""
        for path, upload in (state.get("uploads") or {}).items():
            self.uploader.abort(self.key(path), str(upload["upload_id"]))
        if self.bucket.has_manifest(self.repo_id, self.commit):
            return False
        self.bucket.remove(self.repo_id, self.commit)
        return True


class ObjectSink:
    """One file of a bucket install: the download loop writes into an :class:`ObjectWriter`."""

    def __init__(self, install: BucketInstall, file: RepoFile) -> None:
        self.install = install
        self.file = file

    def complete(self, file: RepoFile, fetcher: Fetcher) -> bool:
        if not self.install.holds(file):
            return False
        fetcher.transfer.add(file.size, fetched=False)
        return True

    @contextmanager
    def open(self) -> Iterator[ObjectWriter]:
        install, file = self.install, self.file
        saved = install.uploads.get(file.path)
        state = UploadState.from_json(saved) if saved else install.adopt(file)
        writer = ObjectWriter(
            install.uploader,
            install.key(file.path),
            file.size,
            state=state,
            save=lambda state: install.save(file.path, state),
            metadata={ETAG_KEY: file.etag},
            window=install.window,
            # An LFS file's sha256 is the Hub's hash, checked by the loop; a git file's sha256
            # (for the manifest) is computed here.
            hash_whole=not file.sha256,
            cancelled=lambda: install.stop.is_set(),
        )
        try:
            yield writer
        finally:
            writer.close()

    def resume(self, handle: ObjectWriter, file: RepoFile, fetcher: Fetcher) -> tuple[Any, int]:
        # From the start: the parts the bucket holds are hashed again but not sent again.
        return new_hasher(file), 0

    def commit(self, handle: ObjectWriter) -> None:
        handle.finish()
        self.install.finished(self.file.path, handle.sha256(), handle)

    def discard(self, handle: ObjectWriter) -> None:
        handle.abort()
        self.install.forget(self.file.path)
