"""Bucket locations (type s3) against moto's S3 server through boto3: publish from a volume,
upload model files, inventory side by side, verify, purge, and the faults (missing bucket, wrong
credentials, a part failing, cancel, a file that is not what its name says). Both databases."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from modelarium.config import Settings
from modelarium.core.app import Core
from modelarium.core.clock import FakeClock
from tests.conftest import make_settings
from tests.fakes.hf_hub import FakeHub
from tests.fakes.s3 import FakeS3
from tests.unit.weights.helpers import MiB, add_model, run_jobs

BUCKET = "models-bucket"
PREFIX = "team/"


@pytest.fixture
def settings(
    tmp_path: Path, database_url: str, hub: FakeHub, weights_root: Path, fake_s3: FakeS3
) -> Settings:
    fake_s3.client().create_bucket(Bucket=BUCKET)
    return make_settings(
        tmp_path,
        database_url,
        hf_endpoint=hub.url,
        storage_locations=[
            {"name": "default", "path": str(weights_root), "capacity": 512 * MiB, "min_age": 0},
            {
                "name": "s3",
                "type": "s3",
                "bucket": BUCKET,
                "prefix": PREFIX,
                "endpoint_url": fake_s3.url,
                "region": "us-east-1",
                "min_age": 0,
            },
        ],
        s3_part_size=5 * MiB,
        s3_concurrency=3,
        download_concurrency=2,
    )


def _objects(fake_s3: FakeS3, prefix: str = PREFIX) -> dict[str, bytes]:
    s3 = fake_s3.client()
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def _install(core: Core, runner: Any, hub: FakeHub, size: int = 12 * MiB) -> str:
    add_model(hub, "org/m", size=size, shards=2)
    reply = runner.execute("install org/m", user="U_ADMIN")
    assert reply.ok, reply.text
    [view] = run_jobs(core)
    assert view.status == "succeeded", view.error
    return str(hub.repo("org/m").head.sha)


def _uploads(fake_s3: FakeS3) -> list[dict[str, Any]]:
    return fake_s3.client().list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])


def test_publish_copies_verified_weights_and_activates_with_a_manifest(
    core: Core, runner: Any, hub: FakeHub, fake_s3: FakeS3
) -> None:
    commit = _install(core, runner, hub)
    reply = runner.execute("publish org/m --to s3", user="U_ADMIN")
    assert reply.ok, reply.text
    folder = f"{PREFIX}models/org/m/{commit}/"
    assert reply.data["storage_uri"] == f"s3://{BUCKET}/{folder}"
    assert reply.data["change"] and reply.data["job"] and reply.data["digest"]
    [view] = run_jobs(core)
    assert view.status == "succeeded", view.error

    objects = _objects(fake_s3)
    files = hub.repo("org/m").head.files
    for path, blob in files.items():
        data = objects[folder + path]
        assert len(data) == blob.size
        if blob.lfs:
            assert hashlib.sha256(data).hexdigest() == blob.sha256
    manifest = json.loads(objects[f"{PREFIX}.modelarium/manifests/org/m/{commit}.json"])
    assert {f["path"] for f in manifest["files"]} == set(files)
    # Every part went up with its SHA-256 (S3 rejects a part whose bytes changed), and the
    # manifest was the last object written.
    parts = fake_s3.ops("UploadPart")
    assert parts and all(p.checksum for p in parts)
    puts = [r for r in fake_s3.requests if r.op in ("PutObject", "CompleteMultipartUpload")]
    assert puts[-1].key.endswith(f".modelarium/manifests/org/m/{commit}.json")
    assert _uploads(fake_s3) == []

    listing = runner.execute("weights", user="U_ADMIN")
    assert listing.ok, listing.text
    rows = {(w["location"], w["status"]) for w in listing.data["weights"]}
    assert rows == {("default", "installed"), ("s3", "installed")}
    bucket_row = next(w for w in listing.data["weights"] if w["location"] == "s3")
    assert bucket_row["path"] == f"s3://{BUCKET}/{folder}"
    kinds = {loc["name"]: loc["type"] for loc in listing.data["locations"]}
    assert kinds == {"default": "local", "s3": "s3"}
    assert f"bucket s3://{BUCKET}/{PREFIX}" in listing.text

    verify = runner.execute("verify org/m --location s3", user="U_ADMIN")
    assert verify.ok, verify.text
    [checked] = run_jobs(core)
    assert checked.status == "succeeded", checked.error


def test_a_killed_publish_resumes_without_resending_finished_parts(
    core: Core, runner: Any, hub: FakeHub, fake_s3: FakeS3, clock: FakeClock
) -> None:
    commit = _install(core, runner, hub, size=24 * MiB)  # two 12 MiB shards: 3 parts each
    shard = "model-00001-of-00002.safetensors"
    fake_s3.fail_part(shard, 3, times=-1)  # the service fails part 3 until told otherwise
    runner.execute("publish org/m --to s3", user="U_ADMIN")
    [failed] = run_jobs(core, limit=1)
    assert failed.status == "queued" and "InternalError" in (failed.error or ""), failed
    sent_before = [(r.key, r.part) for r in fake_s3.ops("UploadPart") if shard in r.key]
    assert (f"{PREFIX}models/org/m/{commit}/{shard}", 1) in sent_before
    assert len(_uploads(fake_s3)) == 1  # kept for the resume

    fake_s3.fail_part(shard, 3, times=0)
    clock.advance(3600)
    [done] = run_jobs(core)
    assert done.status == "succeeded", done.error
    sent = [(r.key, r.part) for r in fake_s3.ops("UploadPart") if shard in r.key]
    resent = sent[len(sent_before) :]
    assert all(part == 3 for _, part in resent), resent  # parts 1 and 2 were not sent again
    objects = _objects(fake_s3)
    blob = hub.repo("org/m").head.files[shard]
    key = f"{PREFIX}models/org/m/{commit}/{shard}"
    assert hashlib.sha256(objects[key]).hexdigest() == blob.sha256


def test_a_failing_part_is_retried_then_fails_cleanly_and_cancel_aborts_the_upload(
    core: Core, runner: Any, hub: FakeHub, fake_s3: FakeS3, clock: FakeClock
) -> None:
    _install(core, runner, hub, size=24 * MiB)
    fake_s3.fail_part("model-00001-of-00002.safetensors", 2, times=-1)
    reply = runner.execute("publish org/m --to s3", user="U_ADMIN")
    job_id = reply.data["job"]
    [attempt] = run_jobs(core, limit=1)
    tries = [r for r in fake_s3.ops("UploadPart") if r.part == 2]
    assert len(tries) == 4  # the uploader's own retries before the job gives up this attempt
    assert attempt.error is not None and len(attempt.error.splitlines()) == 1
    assert "InternalError, HTTP 500" in attempt.error
    assert len(_uploads(fake_s3)) == 1

    cancelled = runner.execute(f"cancel {job_id}", user="U_ADMIN")
    assert cancelled.ok, cancelled.text
    assert _uploads(fake_s3) == []  # aborted: no parts left billed
    assert not any("/models/" in k for k in _objects(fake_s3))  # nothing half-activated
    listing = runner.execute("weights --location s3", user="U_ADMIN")
    assert listing.data["weights"] == []


def test_missing_bucket_and_wrong_credentials_are_one_line(
    core: Core, runner: Any, hub: FakeHub, fake_s3: FakeS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(core, runner, hub)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTVALID")
    refused = runner.execute("publish org/m --to s3", user="U_ADMIN")
    assert not refused.ok
    assert refused.data["error"] == (
        f"s3://{BUCKET} (location s3) refused the AWS credentials (403) while checking the "
        "bucket: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_PROFILE and the bucket's "
        "policy"
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", fake_s3.env()["AWS_ACCESS_KEY_ID"])
    fake_s3.client().delete_bucket(Bucket=BUCKET)
    missing = runner.execute("publish org/m --to s3", user="U_ADMIN")
    assert not missing.ok
    assert missing.data["error"] == f"bucket {BUCKET} does not exist (s3://{BUCKET} (location s3))"
    assert run_jobs(core) == []  # nothing was proposed, nothing runs


def test_install_from_the_hub_streams_into_the_bucket_verified_and_activated_by_its_manifest(
    core: Core, runner: Any, hub: FakeHub, fake_s3: FakeS3
) -> None:
    add_model(hub, "org/m", size=24 * MiB, shards=2)  # two 12 MiB shards: 3 parts each
    reply = runner.execute("install org/m --location s3", user="U_ADMIN")
    assert reply.ok, reply.text
    assert reply.data["change"] and reply.data["job"] and reply.data["digest"]
    [view] = run_jobs(core)
    assert view.status == "succeeded", view.error
    commit = str(hub.repo("org/m").head.sha)
    folder = f"{PREFIX}models/org/m/{commit}/"
    change = core.changes.get(reply.data["change"])
    assert change.result["storage_uri"] == f"s3://{BUCKET}/{folder}"

    objects = _objects(fake_s3)
    files = hub.repo("org/m").head.files
    for path, blob in files.items():
        data = objects[folder + path]
        assert len(data) == blob.size
        if blob.lfs:
            assert hashlib.sha256(data).hexdigest() == blob.sha256
    manifest = json.loads(objects[f"{PREFIX}.modelarium/manifests/org/m/{commit}.json"])
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == {
        path: hashlib.sha256(objects[folder + path]).hexdigest() for path in files
    }
    # Every part carried its SHA-256; the manifest was the last object written; no upload left.
    parts = fake_s3.ops("UploadPart")
    assert len(parts) == 6 and all(p.checksum for p in parts)
    puts = [r for r in fake_s3.requests if r.op in ("PutObject", "CompleteMultipartUpload")]
    assert puts[-1].key.endswith(f".modelarium/manifests/org/m/{commit}.json")
    assert _uploads(fake_s3) == []
    assert not (core.settings.locations[0].path / "models--org--m").exists()  # no disk detour

    listing = runner.execute("weights", user="U_ADMIN")
    rows = {(w["location"], w["status"], w["path"]) for w in listing.data["weights"]}
    assert rows == {("s3", "installed", f"s3://{BUCKET}/{folder}")}
    again = runner.execute("install org/m --location s3", user="U_ADMIN")
    assert again.data["already_installed"] and run_jobs(core) == []
    verify = runner.execute("verify org/m --location s3", user="U_ADMIN")
    assert verify.ok, verify.text
    [checked] = run_jobs(core)
    assert checked.status == "succeeded", checked.error

    undo = runner.execute(f"revert {reply.data['change']}", user="U_ADMIN")  # a purge
    assert undo.ok, undo.text
    if undo.data.get("approval"):
        runner.execute(f"approve {undo.data['approval']}", user="U_ADMIN2")
    [purged] = run_jobs(core)
    assert purged.status == "succeeded", purged.error
    assert _objects(fake_s3) == {} and _uploads(fake_s3) == []
    assert runner.execute("weights", user="U_ADMIN").data["weights"] == []


def test_install_into_a_bucket_faults_missing_bucket_and_wrong_credentials_are_one_line(
    core: Core, runner: Any, hub: FakeHub, fake_s3: FakeS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_model(hub, "org/m")
    key = fake_s3.env()["AWS_ACCESS_KEY_ID"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTVALID")
    refused = runner.execute("install org/m --location s3", user="U_ADMIN")
    assert not refused.ok
    assert refused.data["error"] == (
        f"s3://{BUCKET} (location s3) refused the AWS credentials (403) while checking the "
        "bucket: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_PROFILE and the bucket's "
        "policy"
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    fake_s3.client().delete_bucket(Bucket=BUCKET)
    missing = runner.execute("install org/m --location s3", user="U_ADMIN")
    assert not missing.ok
    assert missing.data["error"] == f"bucket {BUCKET} does not exist (s3://{BUCKET} (location s3))"
    assert run_jobs(core) == []  # nothing was proposed, nothing runs

    # The same faults when they appear after the proposal: the job fails with the same line.
    fake_s3.client().create_bucket(Bucket=BUCKET)
    for fault in ("credentials", "bucket"):
        reply = runner.execute("install org/m --location s3", user="U_ADMIN")
        assert reply.ok, reply.text
        if fault == "credentials":
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTVALID")
        else:
            fake_s3.client().delete_bucket(Bucket=BUCKET)
        [view] = run_jobs(core)
        assert view.status == "failed" and len((view.error or "").splitlines()) == 1
        assert ("refused the AWS credentials" if fault == "credentials" else "does not exist") in (
            view.error or ""
        ), view.error
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
        if fault == "bucket":
            fake_s3.client().create_bucket(Bucket=BUCKET)
        [row] = runner.execute("weights --location s3", user="U_ADMIN").data["weights"]
        assert row["status"] == "failed"
    assert not any("manifests" in k for k in _objects(fake_s3))


def test_install_into_a_bucket_a_failing_part_is_retried_then_fails_clearly_and_cancel_aborts(
    core: Core, runner: Any, hub: FakeHub, fake_s3: FakeS3, clock: FakeClock
) -> None:
    add_model(hub, "org/m", size=24 * MiB, shards=2)
    shard = "model-00001-of-00002.safetensors"
    fake_s3.fail_part(shard, 2, times=-1)
    reply = runner.execute("install org/m --location s3", user="U_ADMIN")
    assert reply.ok, reply.text
    [attempt] = run_jobs(core, limit=1)
    assert [r.part for r in fake_s3.ops("UploadPart") if r.part == 2 and shard in r.key] == [2] * 4
    assert attempt.status == "queued"  # retried by the job runner too, with backoff
    assert attempt.error is not None and len(attempt.error.splitlines()) == 1
    assert "InternalError, HTTP 500" in attempt.error and f"part 2 of {PREFIX}models" in (
        attempt.error
    )
    for _ in range(5):
        clock.advance(3600)
        run_jobs(core, limit=1)
    view = core.jobs.get(reply.data["job"])
    assert view.status == "failed", view
    assert len((view.error or "").splitlines()) == 1 and "upload failed" in (view.error or "")
    [row] = runner.execute("weights --location s3", user="U_ADMIN").data["weights"][:1]
    assert row["status"] == "failed"
    assert not any("manifests" in k for k in _objects(fake_s3))  # nothing activated

    # A new install adopts the upload the failed one left (not a second one beside it), and
    # cancelling it aborts the multipart upload: no parts left billed.
    kept = {u["UploadId"] for u in _uploads(fake_s3)}
    assert len(kept) == 1
    again = runner.execute("install org/m --location s3", user="U_ADMIN")
    assert again.ok, again.text
    run_jobs(core, limit=1)
    assert {u["UploadId"] for u in _uploads(fake_s3)} == kept
    cancelled = runner.execute(f"cancel {again.data['job']}", user="U_ADMIN")
    assert cancelled.ok, cancelled.text
    assert _uploads(fake_s3) == []
    assert not any("/models/org/m/" in k or "manifests" in k for k in _objects(fake_s3))
    listing = runner.execute("weights --location s3", user="U_ADMIN")
    assert [w for w in listing.data["weights"] if w["repo"] == "org/m"] == []


def test_the_stale_upload_purge_spares_an_install_still_running(
    core: Core, runner: Any, hub: FakeHub, fake_s3: FakeS3
) -> None:
    add_model(hub, "org/m", size=24 * MiB, shards=2)
    fake_s3.fail_part("model-00001-of-00002.safetensors", 2, times=-1)
    reply = runner.execute("install org/m --location s3", user="U_ADMIN")
    [attempt] = run_jobs(core, limit=1)
    assert attempt.status == "queued"  # to be retried: the install is still running
    mine = {u["UploadId"] for u in _uploads(fake_s3)}
    assert mine
    s3 = fake_s3.client()
    dead = s3.create_multipart_upload(Bucket=BUCKET, Key=f"{PREFIX}models/gone/x/f")["UploadId"]
    assert core.weights.abort_stale_uploads(older_than=0) == [
        "s3: aborted 1 stale multipart upload(s)"
    ]
    assert {u["UploadId"] for u in _uploads(fake_s3)} == mine and dead not in mine
    assert runner.execute(f"cancel {reply.data['job']}", user="U_ADMIN").ok
    assert _uploads(fake_s3) == []


def test_install_into_a_bucket_of_bytes_that_are_not_the_hubs_activates_nothing(
    core: Core, runner: Any, hub: FakeHub, fake_s3: FakeS3
) -> None:
    add_model(hub, "org/m", size=12 * MiB, shards=1)
    hub.corrupt("org/m", "model.safetensors")
    reply = runner.execute("install org/m --location s3", user="U_ADMIN")
    assert reply.ok, reply.text
    [view] = run_jobs(core)
    assert view.status == "failed"
    assert "checksum mismatch: model.safetensors: sha256 mismatch" in (view.error or "")
    assert "nothing was activated" in (view.error or "")
    assert _uploads(fake_s3) == []  # the wrong bytes' upload was aborted, never completed
    assert not any(k.endswith("model.safetensors") or "manifests" in k for k in _objects(fake_s3))


# -- uploads ---------------------------------------------------------------------------------


def safetensors(path: Path, tensors: int = 2, elements: int = 1024) -> Path:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for n in range(tensors):
        header[f"layer.{n}.weight"] = {
            "dtype": "F32",
            "shape": [elements],
            "data_offsets": [offset, offset + 4 * elements],
        }
        offset += 4 * elements
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(range(256)) * (offset // 256))
    return path


def test_upload_config_and_weights_into_one_folder(
    core: Core, runner: Any, fake_s3: FakeS3, tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "hidden_size": 64}))
    reply = runner.execute(
        f"upload qwen2.5-7b-instruct --file {config} --version 2024-06", user="U_ADMIN"
    )
    assert reply.ok, reply.text
    folder = f"{PREFIX}models/qwen2.5-7b-instruct/2024-06/"
    assert reply.data["storage_uri"] == f"s3://{BUCKET}/{folder}"
    [view] = run_jobs(core)
    assert view.status == "succeeded", view.error

    weights = safetensors(tmp_path / "model.safetensors", tensors=3, elements=1024 * 1024)  # 12 MiB
    reply = runner.execute(
        f"upload qwen2.5-7b-instruct --file {weights} --version 2024-06", user="U_ADMIN"
    )
    assert reply.ok, reply.text
    [view] = run_jobs(core)
    assert view.status == "succeeded", view.error
    assert len([r for r in fake_s3.ops("UploadPart") if r.key.endswith("model.safetensors")]) == 3

    objects = _objects(fake_s3)
    assert objects[folder + "config.json"] == config.read_bytes()
    assert objects[folder + "model.safetensors"] == weights.read_bytes()
    manifest = json.loads(
        objects[f"{PREFIX}.modelarium/manifests/qwen2.5-7b-instruct/2024-06.json"]
    )
    assert [(f["path"], f["sha256"]) for f in manifest["files"]] == [
        ("config.json", hashlib.sha256(config.read_bytes()).hexdigest()),
        ("model.safetensors", hashlib.sha256(weights.read_bytes()).hexdigest()),
    ]
    listing = runner.execute("weights --location s3", user="U_ADMIN")
    [row] = listing.data["weights"]
    assert (row["repo"], row["commit"], row["files"], row["status"]) == (
        "qwen2.5-7b-instruct", "2024-06", 2, "installed",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("model.safetensors", b'{"not": "safetensors"}', "is not a safetensors file"),
        ("config.json", b"{not json", "config.json is not valid JSON"),
        ("merges.txt", b"#version: 0.2\na b c\n", "is not a BPE merges file"),
        ("weights.bin", b"\x00" * 10, "not a file type upload accepts"),
    ],
)
def test_an_upload_that_is_not_what_its_name_says_is_refused(
    core: Core, runner: Any, fake_s3: FakeS3, tmp_path: Path, name: str, content: bytes, why: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    reply = runner.execute(f"upload m1 --file {path}", user="U_ADMIN")
    assert not reply.ok
    assert why in reply.text and len(reply.data["error"].splitlines()) == 1
    assert fake_s3.ops("PutObject") == [] and run_jobs(core) == []


def test_upload_size_limits(
    settings: Settings, clock: FakeClock, fake_s3: FakeS3, tmp_path: Path, make_core
) -> None:
    from modelarium.bot.dispatch import CommandRunner

    core = make_core(settings.model_copy(update={"upload_max_text_size": 100}), clock=clock)
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps({"model": {"vocab": {"a": 1}}, "pad": "x" * 200}))
    reply = CommandRunner(core).execute(f"upload m1 --file {path}", user="U_ADMIN")
    assert not reply.ok
    assert "above the 100 B limit for configs and tokenizers" in reply.text


# -- purge -----------------------------------------------------------------------------------


def test_purge_deletes_objects_and_aborts_stale_multipart_uploads(
    core: Core, runner: Any, hub: FakeHub, fake_s3: FakeS3
) -> None:
    _install(core, runner, hub)
    reply = runner.execute("publish org/m --to s3", user="U_ADMIN")
    run_jobs(core)
    s3 = fake_s3.client()
    s3.create_multipart_upload(Bucket=BUCKET, Key=f"{PREFIX}models/other/x/file")  # a dead job's
    undo = runner.execute(f"revert {reply.data['change']}", user="U_ADMIN")
    assert undo.ok, undo.text
    if undo.data.get("approval"):
        runner.execute(f"approve {undo.data['approval']}", user="U_ADMIN2")
    [purged] = run_jobs(core)
    assert purged.status == "succeeded", purged.error
    assert not any("/models/org/m/" in k or "manifests/org/m" in k for k in _objects(fake_s3))
    rows = [
        (w["location"], w["status"])
        for w in runner.execute("weights", user="U_ADMIN").data["weights"]
    ]
    # The dead job's upload is listed as orphaned until the daily purge aborts it.
    assert rows == [("default", "installed"), ("s3", "orphaned")]
    assert core.weights.abort_stale_uploads(older_than=0) == [
        "s3: aborted 1 stale multipart upload(s)"
    ]
    assert _uploads(fake_s3) == []
