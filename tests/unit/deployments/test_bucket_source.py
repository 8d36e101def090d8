"""A deployment of weights installed in a bucket location: KServe gets ``storageUri: s3://...``
and the location's service account (the bucket's credentials). Fake KServe, moto's S3 server,
both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelarium.config import Settings
from modelarium.core.app import Core
from modelarium.core.db.models.weights import WeightRecord
from tests.conftest import make_settings
from tests.fakes.hf_hub import FakeHub
from tests.fakes.kubernetes import FakeKubernetes
from tests.fakes.s3 import FakeS3
from tests.unit.deployments.conftest import namespaces, run_jobs
from tests.unit.discovery.hubdata import LLAMA_8B, config

BUCKET = "fleet-models"
COMMIT = "b0cce7" + "0" * 34
FOLDER = f"serving/models/{LLAMA_8B}/{COMMIT}/"


@pytest.fixture
def settings(
    tmp_path: Path, database_url: str, hub: FakeHub, cluster: FakeKubernetes, fake_s3: FakeS3
) -> Settings:
    fake_s3.client().create_bucket(Bucket=BUCKET)
    return make_settings(
        tmp_path,
        database_url,
        hf_endpoint=hub.url,
        hub_timeout=3.0,
        kubeconfig=cluster.write_kubeconfig(tmp_path / "kubeconfig"),
        storage_locations=[
            {"name": "scratch", "path": str(tmp_path / "scratch"), "min_age": 0},
            {
                "name": "objects",
                "type": "s3",
                "bucket": BUCKET,
                "prefix": "serving/",
                "endpoint_url": fake_s3.url,
                "region": "us-east-1",
                "service_account": "models-reader",
                "min_age": 0,
            },
        ],
        deploy_namespaces=namespaces(),
        admins=["U_ADMIN", "U_ADMIN2", "U_ADMIN3"],
        deploy_ready_timeout=5.0,
    )


def _install_in_bucket(core: Core, fake_s3: FakeS3) -> None:
    """What an install into the bucket leaves: the files, the manifest (last), the record."""
    s3 = fake_s3.client()
    body = json.dumps(config("llama-3.1-8b-instruct")).encode()
    s3.put_object(Bucket=BUCKET, Key=f"{FOLDER}config.json", Body=body)
    manifest = {"model_id": LLAMA_8B, "version": COMMIT, "files": [{"path": "config.json"}]}
    s3.put_object(
        Bucket=BUCKET,
        Key=f"serving/.modelarium/manifests/{LLAMA_8B}/{COMMIT}.json",
        Body=json.dumps(manifest).encode(),
    )
    now = datetime.now(UTC)
    with core.db.transaction() as session:
        session.add(
            WeightRecord(
                repo_id=LLAMA_8B, revision="main", commit=COMMIT, location="objects",
                status="installed", size_bytes=16 * 2**30, file_count=1,
                files=[{"path": "config.json", "size": len(body), "blob_id": "0" * 40}],
                reserved_bytes=0, reinstall=False, pinned=False, created_by="U_ADMIN",
                created_at=now, installed_at=now, verified_at=now,
            )
        )  # fmt: skip


def test_weights_in_a_bucket_deploy_with_an_s3_storage_uri_and_the_locations_service_account(
    core: Core, runner, hub: FakeHub, cluster: FakeKubernetes, fake_s3: FakeS3
) -> None:
    _install_in_bucket(core, fake_s3)
    hub.clear_requests()
    proposed = runner.execute(f"deploy {LLAMA_8B} --name chat --namespace dev", user="U_ADMIN")
    assert proposed.ok, proposed.text
    manifest = proposed.data["manifest"]
    predictor = manifest["spec"]["predictor"]
    assert predictor["model"]["storageUri"] == f"s3://{BUCKET}/{FOLDER}"
    assert predictor["serviceAccountName"] == "models-reader"
    assert manifest["metadata"]["annotations"]["modelarium.io/location"] == "objects"
    assert hub.requests == []  # config.json came from the bucket, verified there
    assert not any("not verified" in w for w in proposed.data.get("warnings", []))

    [job] = run_jobs(core)
    assert job.status == "succeeded", job.error
    live = cluster.custom_object("dev", "chat")
    assert live["spec"]["predictor"]["model"]["storageUri"] == f"s3://{BUCKET}/{FOLDER}"
    assert live["spec"]["predictor"]["serviceAccountName"] == "models-reader"
    # The purge spares what a deployment serves, in a bucket as on a volume.
    assert core.weights.deployed_by(LLAMA_8B, COMMIT, "objects") == ("dev/chat",)
