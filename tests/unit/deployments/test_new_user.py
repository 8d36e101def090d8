"""The issue's story for a new user, in one go: install a model (really downloaded and verified
from the fake Hub), preview and dry-run its deployment, deploy it after an approval and watch it
become Ready, change its context length, see a failing rollout explained and rolled back, roll
back by hand, stop and start it, read its history, and get an alert for a kubectl edit."""

from __future__ import annotations

import json
import urllib.request

from modelarium.core.app import Core
from modelarium.core.clock import FakeClock
from tests.fakes.hf_hub import FakeHub
from tests.fakes.kubernetes import KSERVE, FakeKubernetes
from tests.unit.deployments.conftest import run_jobs
from tests.unit.discovery.hubdata import config

REPO = "acme/chat-8b"


def test_a_new_user_from_install_to_drift_alert(
    core: Core, runner, hub: FakeHub, cluster: FakeKubernetes, clock: FakeClock
) -> None:
    hub.add_generated_model(
        REPO, total_bytes=2 << 20, shards=2, config=config("llama-3.1-8b-instruct")
    )
    commit = hub.repo(REPO).head.sha

    def run(text: str, user: str = "U_ADMIN", *approvers: str) -> dict:
        reply = runner.execute(text, user=user, channel="C1")
        assert reply.ok, reply.text
        for approver in approvers:
            assert runner.execute(f"approve {reply.data['approval']}", user=approver).ok
        jobs = run_jobs(core)
        clock.advance(60)
        return {"reply": reply, "jobs": jobs}

    installed = run(f"install {REPO} --location venus")
    assert [j.status for j in installed["jobs"]] == ["succeeded"]

    preview = run(f"deploy {REPO} --name chat --namespace prod --context 8k --dry-run")["reply"]
    assert preview.data["verified"] is True
    assert preview.data["manifest"]["spec"]["predictor"]["model"]["storageUri"] == (
        f"pvc://models-venus/hub/models--acme--chat-8b/snapshots/{commit}"
    )
    assert preview.data["dry_run"]["ok"]

    first = run(f"deploy {REPO} --name chat --namespace prod --context 8k", "U_ADMIN",
                "U_ADMIN2", "U_ADMIN3")  # fmt: skip
    assert [j.status for j in first["jobs"]] == ["succeeded"]
    change = core.changes.get(first["reply"].data["change"])
    assert change.report[0] == "✅ prod/chat is Ready at http://chat.prod.example.com"

    longer = run(f"deploy {REPO} --name chat --namespace prod --context 16k", "U_ADMIN",
                 "U_ADMIN2", "U_ADMIN3")  # fmt: skip
    assert [j.status for j in longer["jobs"]] == ["succeeded"]

    cluster.kserve.inject_failure("prod", "chat", "insufficient-gpus")
    failing = run(f"deploy {REPO} --name chat --namespace prod --context 32k", "U_ADMIN",
                  "U_ADMIN2", "U_ADMIN3")  # fmt: skip
    [job] = failing["jobs"]
    assert job.status == "failed"
    bad = core.changes.get(failing["reply"].data["change"])
    assert "Insufficient nvidia.com/gpu" in bad.outcome
    assert any("FailedScheduling" in line for line in bad.report)
    assert bad.outcome.endswith(f"rolled back to change #{longer['reply'].data['change']}")

    back = run("deployment rollback prod/chat --to 1", "U_ADMIN", "U_ADMIN2", "U_ADMIN3")
    assert [j.status for j in back["jobs"]] == ["succeeded"]
    args = cluster.custom_object("prod", "chat")["spec"]["predictor"]["model"]["args"]
    assert "--max-model-len=8192" in args

    assert run("deployment stop prod/chat", "U_ADMIN", "U_ADMIN2", "U_ADMIN3")["jobs"]
    assert cluster.pods("prod") == []
    assert run("deployment start prod/chat", "U_ADMIN", "U_ADMIN2", "U_ADMIN3")["jobs"]

    history = runner.execute("deployment history prod/chat", user="U_VIEWER").data["history"]
    assert [(h["action"], h["outcome"]) for h in history] == [
        ("apply", "succeeded"),
        ("apply", "succeeded"),
        ("apply", "rolled back"),
        ("rollback", "succeeded"),
        ("stop", "succeeded"),
        ("start", "succeeded"),
    ]

    request = urllib.request.Request(
        f"{cluster.url}/apis/{KSERVE.api_version}/namespaces/prod/{KSERVE.plural}/chat"
        "?fieldManager=kubectl-edit",
        data=json.dumps({"spec": {"predictor": {"maxReplicas": 4}}}).encode(),
        method="PATCH",
        headers={"Authorization": f"Bearer {cluster.token}",
                 "Content-Type": "application/merge-patch+json"},
    )  # fmt: skip
    urllib.request.urlopen(request).close()
    report = core.deployments.reconcile()
    core.alerts.evaluate("deployment_drift", report.observations["deployment_drift"])
    [alert] = [a for a in core.alerts.active() if a.rule == "deployment_drift"]
    assert alert.state == "firing"
    assert alert.summary.startswith("Deployment prod/chat differs from the spec")
