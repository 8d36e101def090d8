"""An install from the Hub into a bucket whose worker is SIGKILLed mid-way: a new worker process
finishes it without sending again any part the killed one had checkpointed, verifies every file
against the Hub and activates it with its manifest. SQLite and PostgreSQL; moto's S3 server."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelarium.core.app import Core
from tests.conftest import make_settings
from tests.fakes.hf_hub import FakeHub
from tests.fakes.s3 import FakeS3
from tests.integration.weights.test_crash_resume import REPO, _finish, _killed, _worker
from tests.unit.weights.helpers import MiB, add_model

pytestmark = pytest.mark.slow  # worker processes, SIGKILLed

BUCKET = "resume-bucket"
PREFIX = "fleet/"


@pytest.fixture
def setup(
    tmp_path: Path, database_url: str, fake_hub: FakeHub, fake_s3: FakeS3
) -> Iterator[tuple[Core, dict]]:
    fake_s3.client().create_bucket(Bucket=BUCKET)
    locations = [
        {"name": "default", "path": str(tmp_path / "weights"), "min_age": 0},
        {
            "name": "s3",
            "type": "s3",
            "bucket": BUCKET,
            "prefix": PREFIX,
            "endpoint_url": fake_s3.url,
            "region": "us-east-1",
            "min_age": 0,
        },
    ]
    values = {
        "hf_endpoint": fake_hub.url,
        "storage_locations": locations,
        "job_stale_after": 1.0,
        "job_heartbeat": 0.2,
        "job_max_attempts": 10,
        "download_concurrency": 2,
        "s3_part_size": 5 * MiB,
        "s3_concurrency": 2,
    }
    settings = make_settings(tmp_path, database_url, **values)
    core = Core(settings)
    core.migrate()
    env = {
        **os.environ,  # AWS's own variables, set by the fake_s3 fixture
        "PYTHONPATH": str(REPO),
        "MODELARIUM_DATA_DIR": str(settings.data_dir),
        "MODELARIUM_DATABASE_URL": database_url,
        "MODELARIUM_LOG_LEVEL": "warning",
        "HF_ENDPOINT": fake_hub.url,
        "MODELARIUM_STORAGE_LOCATIONS": json.dumps(locations),
        "MODELARIUM_JOB_STALE_AFTER": "1",
        "MODELARIUM_JOB_HEARTBEAT": "0.2",
        "MODELARIUM_JOB_MAX_ATTEMPTS": "10",
        "MODELARIUM_DOWNLOAD_CONCURRENCY": "2",
        "MODELARIUM_S3_PART_SIZE": str(5 * MiB),
        "MODELARIUM_S3_CONCURRENCY": "2",
    }
    yield core, env
    core.close()


def test_a_killed_install_into_a_bucket_resumes_without_resending_finished_parts(
    setup: tuple[Core, dict], fake_hub: FakeHub, fake_s3: FakeS3
) -> None:
    core, env = setup
    add_model(fake_hub, "org/m", size=40 * MiB, shards=2)  # two 20 MiB shards: 4 parts each
    commit = str(fake_hub.repo("org/m").head.sha)
    proposal = core.changes.propose(
        "weights.install", {"repo": "org/m", "location": "s3"}, "U_ADMIN"
    )
    assert proposal.job is not None
    job = proposal.job.id

    _killed(_worker(env, job, "--die", "bucket-after-parts:3"))
    state = core.jobs.get(job).state
    folder = f"{PREFIX}models/org/m/{commit}/"
    checkpointed = {
        (folder + path, int(number))
        for path, upload in (state.get("uploads") or {}).items()
        for number in upload["parts"]
    }
    assert len(checkpointed) >= 3, state  # the upload ids and the finished parts were saved
    s3 = fake_s3.client()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get("Contents", [])]
    assert not any(".modelarium/manifests/" in k for k in keys)  # not installed
    assert not any(k.endswith(".safetensors") for k in keys)  # the shards: parts only
    [entry] = [v for v in core.weights.inventory() if v.location == "s3" and v.repo_id == "org/m"]
    assert entry.status == "installing"

    before = len(fake_s3.requests)
    out = _finish(env, job)
    assert "2 attempt(s)" in out, out
    resent = {
        (r.key, r.part) for r in fake_s3.requests[before:] if r.op == "UploadPart"
    } & checkpointed
    assert resent == set(), f"parts sent again after the resume: {sorted(resent)}"
    reused = [r for r in fake_s3.requests[before:] if r.op == "ListParts"]
    assert reused, "the resumed worker asked the bucket which parts it holds"

    # Verified and activated: every object is the Hub's file, the manifest lists their sha256.
    files = fake_hub.repo("org/m").head.files
    for path, blob in files.items():
        data = s3.get_object(Bucket=BUCKET, Key=folder + path)["Body"].read()
        assert len(data) == blob.size
        if blob.lfs:
            assert hashlib.sha256(data).hexdigest() == blob.sha256
    manifest_key = f"{PREFIX}.modelarium/manifests/org/m/{commit}.json"
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    assert {f["path"] for f in manifest["files"]} == set(files)
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    [entry] = [v for v in core.weights.inventory() if v.location == "s3"]
    assert (entry.status, entry.path) == ("installed", f"s3://{BUCKET}/{folder}")
    change = core.changes.get(proposal.change.id)
    assert change.status == "succeeded" and change.result["storage_uri"] == entry.path
