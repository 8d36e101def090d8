"""The S3 fake through the real boto3: moto's protocol plus S3's strictness and faults."""

from __future__ import annotations

import base64
import hashlib

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.fakes.s3 import FakeS3


def _b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_multipart_with_checksums_and_list_parts(fake_s3: FakeS3) -> None:
    s3 = fake_s3.client()
    s3.create_bucket(Bucket="models")
    upload = s3.create_multipart_upload(Bucket="models", Key="a/b", ChecksumAlgorithm="SHA256")
    part = b"x" * (5 * 1024 * 1024)
    done = s3.upload_part(
        Bucket="models", Key="a/b", UploadId=upload["UploadId"], PartNumber=1, Body=part,
        ChecksumSHA256=_b64(part),
    )  # fmt: skip
    listed = s3.list_parts(Bucket="models", Key="a/b", UploadId=upload["UploadId"])
    assert [(p["PartNumber"], p["ETag"]) for p in listed["Parts"]] == [(1, done["ETag"])]
    assert fake_s3.ops("UploadPart")[0].checksum == _b64(part)


def test_a_wrong_part_checksum_is_bad_digest(fake_s3: FakeS3) -> None:
    s3 = fake_s3.client()
    s3.create_bucket(Bucket="models")
    with pytest.raises(ClientError) as raised:
        s3.put_object(Bucket="models", Key="k", Body=b"abc", ChecksumSHA256=_b64(b"abd"))
    assert raised.value.response["Error"]["Code"] == "BadDigest"


def test_unknown_access_keys_are_refused(fake_s3: FakeS3) -> None:
    with pytest.raises(ClientError) as raised:
        fake_s3.client(access_key="AKIAWRONG").list_buckets()
    assert raised.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_injected_part_failures(fake_s3: FakeS3) -> None:
    s3 = fake_s3.client()
    s3.create_bucket(Bucket="models")
    upload = s3.create_multipart_upload(Bucket="models", Key="dir/k")
    fake_s3.fail_part("k", 1, times=1)
    once = fake_s3.client(config=Config(retries={"total_max_attempts": 1}))  # no retries
    kwargs = {"Bucket": "models", "Key": "dir/k", "UploadId": upload["UploadId"], "PartNumber": 1}
    with pytest.raises(ClientError) as raised:
        once.upload_part(Body=b"1", **kwargs)
    assert raised.value.response["Error"]["Code"] == "InternalError"
    assert once.upload_part(Body=b"1", **kwargs)["ETag"]  # the failure was used up
    assert [r.part for r in fake_s3.ops("UploadPart")] == [1, 1]
