"""S3-compatible buckets through boto3: the client of a storage location, one-line errors, and
multipart uploads that checksum every part and can be resumed after a crash.

Credentials come from AWS's own chain (environment, shared config and credentials files, an IAM
role or web identity); Modelarium never reads or stores them. ``endpoint_url`` points boto3 at
MinIO or any S3-compatible service, and at a local fake in the tests.

Every part is sent with its SHA-256 (``x-amz-checksum-sha256``), so the service rejects a part
whose bytes changed on the way; the whole file's SHA-256 is computed as the parts stream and
compared with what the file must be *before* the upload is completed: a wrong file never becomes
an object. The upload id and the finished parts are handed to a ``save`` callback after every
part, so a killed upload resumes with ``ListParts`` and sends only what is missing.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from modelarium.config.settings import StorageLocation
from modelarium.core.errors import ModelariumError, UnreachableError, UpstreamError

MIN_PART = 5 * 1024 * 1024
MAX_PARTS = 10_000
_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "ExpiredToken",
    "InvalidToken",
    "InvalidClientTokenId",
    "AuthorizationHeaderMalformed",
}
_DIGEST_CODES = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "InvalidChecksum"}


class BucketError(UpstreamError):
    """The bucket refused something (missing bucket, credentials, a wrong checksum...)."""


class BucketUnreachable(UnreachableError):
    """The bucket's service did not answer or answered 5xx/503 SlowDown: worth retrying."""


class UploadGone(BucketError):
    """The multipart upload a checkpoint names no longer exists (aborted or expired)."""


class ContentMismatch(ModelariumError):
    """The bytes uploaded are not the file they claim to be (sha256 or size): never retried."""


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


def s3_client(location: StorageLocation, *, connections: int = 16) -> Any:
    """A boto3 S3 client for ``location`` (boto3 clients are thread-safe).

    Clients are reused: making one costs ~0.1 CPU s. A change of the AWS variables (rotated
    keys, another profile) makes a new one; role credentials refresh inside a client.
    """
    where = (location.endpoint_url, location.region, location.bucket, connections)
    env = tuple(os.environ.get(name) for name in _CREDENTIAL_VARIABLES)
    return _client(where, env)


@functools.lru_cache(maxsize=32)
def _client(where: tuple[Any, ...], env: tuple[str | None, ...]) -> Any:
    # boto3 is imported by the first client (a fifth of a second every process paid at start).
    import boto3
    import botocore.session
    from botocore.config import Config

    endpoint_url, region, _bucket, connections = where
    config = Config(
        region_name=region,
        # One retry policy: the uploader's (per part, with backoff) and the job runner's.
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=connections,
        connect_timeout=10,
        read_timeout=120,
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        # We send our own SHA-256 per part; no extra CRC of the whole body.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    # One loader for all sessions: parsing botocore's service models costs ~0.4 CPU s a
    # session, more than hashing a GiB.
    core = botocore.session.get_session()
    core.register_component("data_loader", _loader())
    session = boto3.session.Session(botocore_session=core)
    return session.client("s3", endpoint_url=endpoint_url, config=config)


@functools.cache
def _loader() -> Any:
    """botocore's data loader (it caches the JSON models it has read), shared by every client."""
    import botocore.loaders

    return botocore.loaders.create_loader()


def _code(exc: ClientError) -> tuple[str, int]:
    error = exc.response.get("Error", {})
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return str(error.get("Code") or status), status


@contextmanager
def bucket_errors(location: StorageLocation, what: str = "") -> Iterator[None]:
    """Translate boto3 errors into one line naming the location and the bucket."""
    where = f"s3://{location.bucket} (location {location.name})"
    doing = f" while {what}" if what else ""
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError):
        raise BucketError(
            f"no AWS credentials for {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE, or give the pod an IAM role"
        ) from None
    except ClientError as exc:
        code, status = _code(exc)
        if code in ("NoSuchBucket",) or (status == 404 and what == "checking the bucket"):
            raise BucketError(f"bucket {location.bucket} does not exist ({where})") from None
        if code == "NoSuchUpload":
            raise UploadGone(f"the multipart upload{doing} is gone from {where}") from None
        if code in _CREDENTIAL_CODES or status == 403:
            raise BucketError(
                f"{where} refused the AWS credentials ({code}){doing}: check AWS_ACCESS_KEY_ID, "
                "AWS_SECRET_ACCESS_KEY or AWS_PROFILE and the bucket's policy"
            ) from None
        if code in _DIGEST_CODES:
            raise BucketUnreachable(
                f"{where} rejected a part's checksum ({code}){doing}: bytes changed in transit"
            ) from None
        if status >= 500 or status == 429 or code in ("SlowDown", "RequestTimeout"):
            raise BucketUnreachable(f"{where} failed{doing} ({code}, HTTP {status})") from None
        raise BucketError(f"{where} refused{doing}: {code} (HTTP {status})") from None
    except (BotoConnectionError, BotoCoreError) as exc:
        first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise BucketUnreachable(f"{where} is unreachable{doing} ({first})") from None


def check_bucket(client: Any, location: StorageLocation) -> None:
    with bucket_errors(location, "checking the bucket"):
        client.head_bucket(Bucket=location.bucket)


# -- multipart uploads ------------------------------------------------------------------------


def part_size_for(size: int, preferred: int) -> int:
    """At least ``preferred`` (and S3's 5 MiB), and few enough parts for S3's 10,000."""
    size_per_part = -(-size // MAX_PARTS) if size else 0
    return max(MIN_PART, preferred, size_per_part)


@dataclass
class UploadState:
    """What a checkpoint keeps of one object's multipart upload."""

    upload_id: str
    part_size: int
    parts: dict[int, dict[str, Any]] = field(default_factory=dict)
    """part number -> {"etag", "checksum", "size"}"""

    def to_json(self) -> dict[str, Any]:
        return {
            "upload_id": self.upload_id,
            "part_size": self.part_size,
            "parts": {str(n): p for n, p in sorted(self.parts.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UploadState:
        return cls(
            str(data["upload_id"]),
            int(data["part_size"]),
            {int(n): dict(p) for n, p in (data.get("parts") or {}).items()},
        )


@dataclass(frozen=True)
class Uploaded:
    key: str
    size: int
    sha256: str
    parts_sent: int
    parts_reused: int


class ObjectUploader:
    """Puts files into one bucket: single PUTs for small ones, resumable multipart for the rest.

    ``source(offset)`` yields the file's bytes from ``offset`` (a local file, a Hub response).
    Parts are uploaded by a pool of ``concurrency`` threads while the source is read and hashed
    in order; at most ``concurrency`` parts are held in memory.
    """

    def __init__(
        self,
        client: Any,
        location: StorageLocation,
        *,
        part_size: int = 16 * 1024 * 1024,
        concurrency: int = 8,
        attempts: int = 4,
        backoff: float = 0.5,
    ) -> None:
        self.client = client
        self.location = location
        self.bucket = str(location.bucket)
        self.part_size = part_size
        self.concurrency = max(1, concurrency)
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="s3-part")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ObjectUploader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _retry(self, what: str, call: Callable[[], Any], cancelled: Callable[[], bool]) -> Any:
        for attempt in range(1, self.attempts + 1):
            try:
                with bucket_errors(self.location, what):
                    return call()
            except BucketUnreachable:
                if attempt == self.attempts or cancelled():
                    raise
                time.sleep(self.backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def put_small(
        self,
        key: str,
        data: bytes,
        *,
        expected_sha256: str | None,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> Uploaded:
        digest = hashlib.sha256(data).hexdigest()
        if expected_sha256 and digest != expected_sha256:
            raise ContentMismatch(f"{key}: sha256 {digest[:12]}…, expected {expected_sha256[:12]}…")
        extra: dict[str, Any] = {"Metadata": {**(metadata or {}), "sha256": digest}}
        if content_type:
            extra["ContentType"] = content_type
        self._retry(
            f"uploading {key}",
            lambda: self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode(),
                **extra,
            ),
            cancelled,
        )
        return Uploaded(key, len(data), digest, 1, 0)

    def start(self, key: str, size: int, metadata: dict[str, str] | None = None) -> UploadState:
        response = self._retry(
            f"starting the upload of {key}",
            lambda: self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ChecksumAlgorithm="SHA256", Metadata=metadata or {}
            ),
            lambda: False,
        )
        return UploadState(str(response["UploadId"]), part_size_for(size, self.part_size))

    def listed_parts(self, key: str, state: UploadState) -> dict[int, dict[str, Any]]:
        """Parts the service holds for this upload: the truth after a crash."""
        found: dict[int, dict[str, Any]] = {}
        marker = 0
        while True:
            with bucket_errors(self.location, f"resuming the upload of {key}"):
                page = self.client.list_parts(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=state.upload_id,
                    PartNumberMarker=marker,
                )
            for part in page.get("Parts", []):
                found[int(part["PartNumber"])] = {
                    "etag": part["ETag"],
                    "size": int(part["Size"]),
                    "checksum": part.get("ChecksumSHA256"),
                }
            if not page.get("IsTruncated"):
                return found
            marker = int(page["NextPartNumberMarker"])

    def abort(self, key: str, upload_id: str) -> None:
        with bucket_errors(self.location, f"aborting the upload of {key}"):
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except ClientError as exc:
                if _code(exc)[0] != "NoSuchUpload":
                    raise

    def upload(
        self,
        key: str,
        size: int,
        source: Callable[[int], Iterable[bytes]],
        *,
        expected_sha256: str | None,
        state: UploadState | None,
        save: Callable[[UploadState], None],
        on_bytes: Callable[[int], None] = lambda n: None,
        cancelled: Callable[[], bool] = lambda: False,
        metadata: dict[str, str] | None = None,
    ) -> Uploaded:
        """Upload ``size`` bytes from ``source`` as ``key`` (multipart), resuming ``state``.

        Raises :class:`ContentMismatch` (after aborting the upload) when the bytes are not the
        file: a wrong size or a sha256 other than ``expected_sha256``.
        """
        meta = dict(metadata or {})
        if expected_sha256:
            meta["sha256"] = expected_sha256
        writer = ObjectWriter(
            self, key, size, state=state, save=save, metadata=meta, cancelled=cancelled,
            window=self.concurrency, on_part=on_bytes, multipart=True,
        )  # fmt: skip
        try:
            for chunk in source(0):
                if cancelled():
                    raise _Cancelled()
                writer.write(chunk)
            digest = writer.sha256() or ""
            if writer.position != size or (expected_sha256 and digest != expected_sha256):
                writer.abort()
                what = (
                    f"{writer.position} bytes, expected {size}"
                    if writer.position != size
                    else f"sha256 {digest[:12]}…, expected {expected_sha256[:12]}…"  # type: ignore[index]
                )
                raise ContentMismatch(f"{key}: {what}; the upload was aborted")
            return writer.finish()
        finally:
            writer.close()


class ObjectWriter:
    """A write-only stream into one object: what a download writes its bytes to.

    Bytes are cut into parts of ``state.part_size`` as they arrive; each part's SHA-256 is
    computed here and sent as ``x-amz-checksum-sha256``, and the part goes up on the uploader's
    pool while the next bytes arrive (at most ``window`` parts of this object in flight). A part
    that the resumed ``state`` already holds with the same size and SHA-256 is not sent again.
    A file smaller than one part is a single PUT at :meth:`finish`. Nothing becomes an object
    before :meth:`finish`, which the caller runs only once the whole file's hash matched.

    It speaks the subset of a file's interface a download loop uses: ``write``, and ``seek`` /
    ``truncate`` to the current position (a no-op) or to 0 (start over).
    """

    def __init__(
        self,
        uploader: ObjectUploader,
        key: str,
        size: int,
        *,
        state: UploadState | None,
        save: Callable[[UploadState], None],
        metadata: dict[str, str] | None = None,
        cancelled: Callable[[], bool] = lambda: False,
        window: int = 2,
        hash_whole: bool = True,
        on_part: Callable[[int], None] = lambda n: None,
        multipart: bool | None = None,
    ) -> None:
        self.uploader = uploader
        self.key = key
        self.size = size
        self.save = save
        self.metadata = dict(metadata or {})
        self.cancelled = cancelled
        self.window = max(1, window)
        self.on_part = on_part
        self.small = size < uploader.part_size if multipart is None else not multipart
        self.part_size = part_size_for(size, uploader.part_size)
        self._hash_whole = hash_whole
        self._lock = threading.Lock()
        self._pending: set[Future[None]] = set()
        self.state: UploadState | None = None
        if state is not None and not self.small:
            self.state = self._resume(state)
            if self.state is not None:
                self.part_size = self.state.part_size
        self.sent = 0
        self.reused = 0
        self._reset()

    def _resume(self, state: UploadState) -> UploadState | None:
        """Keep the checkpointed parts the service still holds, byte for byte (``ListParts``
        is the truth after a crash); ``None`` if the upload is gone."""
        try:
            held = self.uploader.listed_parts(self.key, state)
        except UploadGone:
            return None
        kept: dict[int, dict[str, Any]] = {}
        for n, part in held.items():
            saved = state.parts.get(n)
            if saved is not None and (saved["etag"], saved["size"]) == (part["etag"], part["size"]):
                kept[n] = {**part, "checksum": saved.get("checksum") or part.get("checksum")}
            elif part.get("checksum"):
                # Finished after the last checkpoint (the worker died before saving it): S3
                # lists the SHA-256 it verified, which is all a reuse needs.
                kept[n] = part
        state.parts = kept
        return state

    def _reset(self) -> None:
        self.position = 0
        self._number = 1
        self._hasher = hashlib.sha256() if self._hash_whole else None
        self._new_buffer()

    def _new_buffer(self) -> None:
        # Filled in place and handed to the part's upload as is: no copy per part.
        self._buffer = bytearray(self.size if self.small else self.part_size)
        self._fill = 0

    # -- the file interface ---------------------------------------------------------------

    def seek(self, offset: int) -> int:
        if offset not in (0, self.position):
            raise ValueError(f"{self.key}: cannot seek to {offset} (at {self.position})")
        return offset

    def truncate(self, size: int) -> int:
        if size == self.position:
            return size
        if size != 0:
            raise ValueError(f"{self.key}: cannot truncate to {size} (at {self.position})")
        self._drain(0)  # parts already sent stay reusable: identical bytes are not re-sent
        self._reset()
        return 0

    def write(self, chunk: bytes | memoryview) -> int:
        n = len(chunk)
        if self._hasher is not None:
            self._hasher.update(chunk)
        self.position += n
        view = memoryview(chunk)
        while view:
            room = len(self._buffer) - self._fill
            if room <= 0:  # more bytes than the file's size: kept, refused by finish()
                self._buffer += view
                self._fill += len(view)
                break
            take = min(room, len(view))
            self._buffer[self._fill : self._fill + take] = view[:take]
            self._fill += take
            view = view[take:]
            if not self.small and self._fill == self.part_size:
                self._part(self._buffer)
                self._new_buffer()
        return n

    # -- parts ----------------------------------------------------------------------------

    def _start(self) -> UploadState:
        if self.state is None:
            self.state = self.uploader.start(self.key, self.size, self.metadata)
            self.state.part_size = self.part_size
            with self._lock:
                self.save(self.state)
        return self.state

    def _part(self, data: bytes | bytearray) -> None:
        number = self._number
        self._number += 1
        checksum = sha256_b64(data)
        state = self._start()
        done = state.parts.get(number)
        if done is not None and done["size"] == len(data) and done["checksum"] == checksum:
            self.reused += 1
            self.on_part(len(data))
            return
        self._drain(self.window - 1)
        self._pending.add(self.uploader._pool.submit(self._send, state, number, data, checksum))
        self.sent += 1

    def _send(
        self, state: UploadState, number: int, data: bytes | bytearray, checksum: str
    ) -> None:
        response = self.uploader._retry(
            f"uploading part {number} of {self.key}",
            lambda: self.uploader.client.upload_part(
                Bucket=self.uploader.bucket,
                Key=self.key,
                UploadId=state.upload_id,
                PartNumber=number,
                Body=data,
                ChecksumSHA256=checksum,
            ),
            self.cancelled,
        )
        with self._lock:
            state.parts[number] = {
                "etag": response["ETag"],
                "checksum": checksum,
                "size": len(data),
            }
            self.save(state)
        self.on_part(len(data))

    def _drain(self, limit: int) -> None:
        while len(self._pending) > limit:
            done, self._pending = wait(self._pending, return_when=FIRST_EXCEPTION)
            for future in done:
                future.result()

    # -- the end --------------------------------------------------------------------------

    def sha256(self) -> str | None:
        """The SHA-256 of every byte written so far (``None`` if not asked for)."""
        return self._hasher.hexdigest() if self._hasher is not None else None

    def finish(self) -> Uploaded:
        """Make the object: the caller has checked the bytes are the file."""
        if self.position != self.size:
            raise ContentMismatch(f"{self.key}: {self.position} bytes, expected {self.size}")
        if self.small:
            body = bytes(self._buffer[: self._fill])
            digest = self.sha256() or hashlib.sha256(body).hexdigest()
            self.uploader._retry(
                f"uploading {self.key}",
                lambda: self.uploader.client.put_object(
                    Bucket=self.uploader.bucket,
                    Key=self.key,
                    Body=body,
                    ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode(),
                    Metadata={**self.metadata, "sha256": digest},
                ),
                self.cancelled,
            )
            return Uploaded(self.key, self.size, digest, 1, 0)
        if self._fill or self._number == 1:
            self._part(bytes(self._buffer[: self._fill]))
            self._new_buffer()
        self._drain(0)
        state = self._start()
        parts = [
            {"PartNumber": n, "ETag": p["etag"], "ChecksumSHA256": p["checksum"]}
            for n, p in sorted(state.parts.items())
            if n < self._number
        ]
        self.uploader._retry(
            f"completing the upload of {self.key}",
            lambda: self.uploader.client.complete_multipart_upload(
                Bucket=self.uploader.bucket,
                Key=self.key,
                UploadId=state.upload_id,
                MultipartUpload={"Parts": parts},
            ),
            self.cancelled,
        )
        return Uploaded(self.key, self.size, self.sha256() or "", self.sent, self.reused)

    def close(self) -> None:
        """Stop: cancel the parts not started, wait for those in flight (no thread writes on
        after the caller moved on). The upload stays resumable."""
        for future in self._pending:
            future.cancel()
        wait(self._pending)
        self._pending = set()

    def abort(self) -> None:
        """Close, and abort the multipart upload (its parts are billed until then)."""
        self.close()
        if self.state is not None:
            self.uploader.abort(self.key, self.state.upload_id)
            self.state = None


class _Cancelled(Exception):
    """The caller asked to stop; the upload stays resumable (or is aborted by on_cancel)."""


Cancelled = _Cancelled


def read_object(client: Any, location: StorageLocation, key: str) -> bytes | None:
    """An object's bytes, or ``None`` if there is no such key."""
    with bucket_errors(location, f"reading {key}"):
        try:
            return bytes(client.get_object(Bucket=location.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if _code(exc)[0] in ("NoSuchKey", "404"):
                return None
            raise
