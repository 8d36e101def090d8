"""The ObjectWriter a bucket install streams into, against moto's S3 server through boto3: parts
with their SHA-256, a restart from byte 0 (a server that ignored the Range) that sends no part
twice, a resumed upload, and nothing visible before ``finish``."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest

from modelarium.config.settings import StorageLocation
from modelarium.core.clients.s3 import (
    ContentMismatch,
    ObjectUploader,
    ObjectWriter,
    UploadState,
    s3_client,
)
from tests.fakes.s3 import FakeS3

MiB = 1 << 20
BUCKET = "writer-bucket"


@pytest.fixture
def location(fake_s3: FakeS3) -> StorageLocation:
    fake_s3.client().create_bucket(Bucket=BUCKET)
    return StorageLocation(
        name="s3", type="s3", bucket=BUCKET, endpoint_url=fake_s3.url, region="us-east-1"
    )


def _write(writer: ObjectWriter, data: bytes, chunk: int = 64 * 1024) -> None:
    for start in range(0, len(data), chunk):
        writer.write(data[start : start + chunk])


def test_parts_carry_their_sha256_and_a_restart_sends_no_part_twice(
    location: StorageLocation, fake_s3: FakeS3
) -> None:
    data = os.urandom(12 * MiB)
    saved: list[dict[str, Any]] = []
    with ObjectUploader(s3_client(location), location, part_size=5 * MiB) as uploader:
        writer = ObjectWriter(
            uploader, "k/model.safetensors", len(data), state=None,
            save=lambda s: saved.append(s.to_json()),
        )  # fmt: skip
        _write(writer, data[: 11 * MiB])
        writer.truncate(0)  # the server ignored the Range: the loop starts the file over
        _write(writer, data)
        assert fake_s3.client().list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
        done = writer.finish()
        writer.close()
    parts = fake_s3.ops("UploadPart")
    assert sorted(p.part for p in parts) == [1, 2, 3]  # 1 and 2 not sent again
    assert all(p.checksum for p in parts)
    assert (done.parts_sent, done.parts_reused, done.sha256) == (
        3,
        2,
        hashlib.sha256(data).hexdigest(),
    )
    body = fake_s3.client().get_object(Bucket=BUCKET, Key="k/model.safetensors")["Body"].read()
    assert body == data
    assert saved[-1]["parts"].keys() == {"1", "2", "3"}


def test_a_resumed_upload_sends_only_the_missing_parts_and_a_wrong_size_is_refused(
    location: StorageLocation, fake_s3: FakeS3
) -> None:
    data = os.urandom(11 * MiB)
    saved: list[UploadState] = []
    with ObjectUploader(s3_client(location), location, part_size=5 * MiB) as uploader:
        first = ObjectWriter(uploader, "k/f", len(data), state=None, save=saved.append)
        _write(first, data[: 10 * MiB])
        first.close()  # the worker dies here: parts 1 and 2 are in the bucket
        state = UploadState.from_json(saved[-1].to_json())
        second = ObjectWriter(uploader, "k/f", len(data), state=state, save=saved.append)
        _write(second, data)
        second.finish()
        second.close()
        short = ObjectWriter(uploader, "k/g", len(data), state=None, save=saved.append)
        _write(short, data[:-1])
        with pytest.raises(ContentMismatch, match="bytes, expected"):
            short.finish()
        short.abort()
    assert sorted(p.part for p in fake_s3.ops("UploadPart") if p.key == "k/f") == [1, 2, 3]
    assert fake_s3.client().get_object(Bucket=BUCKET, Key="k/f")["Body"].read() == data
    assert fake_s3.client().list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
