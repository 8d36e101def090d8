"""Weights in an S3-compatible bucket (a storage location of ``type: s3``).

Layout, under the location's prefix:

- ``models/<model-id>/<version>/<file>``: the files, as a server loads them (KServe's
  ``storageUri: s3://<bucket>/<prefix>models/<model-id>/<version>/``); a Hub model's id is its
  repo (``org/name``) and its version the commit;
- ``.modelarium/manifests/<model-id>/<version>.json``: what was written there (each file's
  size and sha256, where it came from). It is written last and deleted first: a folder without
  its manifest is not installed (an install or a copy that died half-way, or a purge that did).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from modelarium.config.settings import StorageLocation
from modelarium.core.clients.s3 import (
    bucket_errors,
    check_bucket,
    read_object,
    s3_client,
    sha256_b64,
)

MANIFESTS = ".modelarium/manifests/"


def model_prefix(location: StorageLocation, model_id: str, version: str) -> str:
    return f"{location.prefix}models/{model_id}/{version}/"


def manifest_key(location: StorageLocation, model_id: str, version: str) -> str:
    return f"{location.prefix}{MANIFESTS}{model_id}/{version}.json"


def storage_uri(location: StorageLocation, model_id: str, version: str) -> str:
    return f"s3://{location.bucket}/{model_prefix(location, model_id, version)}"


@dataclass(frozen=True)
class StaleUpload:
    key: str
    upload_id: str
    initiated: datetime


class Bucket:
    """One bucket location: manifests, usage, removal, stale multipart uploads."""

    def __init__(self, location: StorageLocation, client: Any | None = None) -> None:
        self.location = location
        self.name = str(location.bucket)
        self.client = client or s3_client(location)

    def check(self) -> None:
        check_bucket(self.client, self.location)

    def _objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        with bucket_errors(self.location, f"listing {prefix or 'the bucket'}"):
            for page in paginator.paginate(Bucket=self.name, Prefix=prefix):
                yield from page.get("Contents", [])

    def used_bytes(self) -> int:
        """Bytes stored under the location's prefix (what the bucket bills for it)."""
        return sum(int(o["Size"]) for o in self._objects(self.location.prefix))

    def manifests(self) -> set[tuple[str, str]]:
        """(model id, version) of every activated folder."""
        root = f"{self.location.prefix}{MANIFESTS}"
        found = set()
        for obj in self._objects(root):
            rest = str(obj["Key"])[len(root) :]
            if not rest.endswith(".json") or "/" not in rest:
                continue
            model_id, _, version = rest.removesuffix(".json").rpartition("/")
            found.add((model_id, version))
        return found

    def read_manifest(self, model_id: str, version: str) -> dict[str, Any] | None:
        body = read_object(
            self.client, self.location, manifest_key(self.location, model_id, version)
        )
        data = json.loads(body) if body is not None else None
        return data if isinstance(data, dict) else None

    def has_manifest(self, model_id: str, version: str) -> bool:
        key = manifest_key(self.location, model_id, version)
        return any(o["Key"] == key for o in self._objects(key))

    def write_manifest(self, model_id: str, version: str, data: dict[str, Any]) -> None:
        """The activation: one PUT, after every file it lists is complete and verified."""
        body = json.dumps(data, indent=2, sort_keys=True).encode()
        key = manifest_key(self.location, model_id, version)
        with bucket_errors(self.location, f"writing {key}"):
            self.client.put_object(
                Bucket=self.name,
                Key=key,
                Body=body,
                ContentType="application/json",
                ChecksumSHA256=sha256_b64(body),
            )

    def objects(self, model_id: str, version: str) -> dict[str, int]:
        """File path (relative to the folder) -> size, of what is in the folder now."""
        prefix = model_prefix(self.location, model_id, version)
        return {str(o["Key"])[len(prefix) :]: int(o["Size"]) for o in self._objects(prefix)}

    def remove(self, model_id: str, version: str) -> int:
        """Deactivate (manifest first), then delete the folder's objects; bytes freed."""
        key = manifest_key(self.location, model_id, version)
        with bucket_errors(self.location, f"deleting {key}"):
            self.client.delete_object(Bucket=self.name, Key=key)
        prefix = model_prefix(self.location, model_id, version)
        freed = 0
        batch: list[dict[str, str]] = []
        for obj in self._objects(prefix):
            freed += int(obj["Size"])
            batch.append({"Key": str(obj["Key"])})
            if len(batch) == 1000:
                self._delete(batch)
                batch = []
        if batch:
            self._delete(batch)
        for upload in self.stale_uploads(prefix=prefix, older_than=0.0):
            self.abort(upload)
        return freed

    def _delete(self, batch: list[dict[str, str]]) -> None:
        with bucket_errors(self.location, "deleting objects"):
            self.client.delete_objects(Bucket=self.name, Delete={"Objects": batch, "Quiet": True})

    def stale_uploads(
        self, *, prefix: str | None = None, older_than: float, now: datetime | None = None
    ) -> list[StaleUpload]:
        """Unfinished multipart uploads under ``prefix`` started more than ``older_than``
        seconds ago: their parts cost storage until aborted."""
        paginator = self.client.get_paginator("list_multipart_uploads")
        found = []
        with bucket_errors(self.location, "listing multipart uploads"):
            for page in paginator.paginate(
                Bucket=self.name, Prefix=prefix if prefix is not None else self.location.prefix
            ):
                for upload in page.get("Uploads", []):
                    initiated = upload["Initiated"]
                    if now is not None and initiated > now - timedelta(seconds=older_than):
                        continue
                    found.append(StaleUpload(upload["Key"], upload["UploadId"], initiated))
        return found

    def abort(self, upload: StaleUpload) -> None:
        with bucket_errors(self.location, f"aborting the upload of {upload.key}"):
            self.client.abort_multipart_upload(
                Bucket=self.name, Key=upload.key, UploadId=upload.upload_id
            )
