"""Deployments end to end through the commands: preview, dry run, approval, the apply job watching
the rollout, a failing rollout explained and rolled back, rollback by hand, stop and start,
history, drift and deletion, on both databases, against the fake cluster with KServe running."""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta

import pytest

from modelarium.core.app import Core
from modelarium.core.clock import FakeClock
from modelarium.core.rbac import Role
from tests.fakes.kubernetes import KSERVE, FakeKubernetes
from tests.unit.deployments.conftest import install, run_jobs
from tests.unit.discovery.hubdata import LLAMA_8B

COMMIT = "c0ffee" + "0" * 34


def _args(cluster: FakeKubernetes, namespace: str, name: str) -> list[str]:
    obj = cluster.custom_object(namespace, name)
    assert obj is not None
    return obj["spec"]["predictor"]["model"]["args"]


def _approve(runner, reply, *users: str) -> None:
    for user in users:
        answer = runner.execute(f"approve {reply.data['approval']}", user=user)
        assert answer.ok, answer.text


def _deploy(runner, core: Core, text: str, *approvers: str) -> dict:
    reply = runner.execute(text, user="U_ADMIN", channel="C1")
    assert reply.ok, reply.text
    _approve(runner, reply, *approvers)
    [job] = run_jobs(core)
    return {"reply": reply, "job": job, "change": core.changes.get(reply.data["change"])}


def test_preview_propose_approve_and_watch_it_become_ready(
    core: Core, runner, cluster: FakeKubernetes
) -> None:
    install(core, LLAMA_8B)
    preview = runner.execute(
        f"deploy {LLAMA_8B} --name chat --namespace prod --context 8k --dry-run", user="U_ADMIN"
    )
    assert preview.ok, preview.text
    data = preview.data
    assert data["dry_run"] == {"ok": True, "messages": [data["dry_run"]["messages"][0]],
                               "conflicts": []}  # fmt: skip
    assert data["manifest"]["spec"]["predictor"]["model"]["storageUri"].startswith(
        "pvc://models-venus/hub/"
    )
    assert data["diff"].startswith("--- live\n+++ desired\n")
    assert (data["change"], data["approval"], data["job"], data["digest"]) == (None,) * 4
    [attached] = preview.files  # a long manifest goes as a file
    assert attached.filename == "chat.yaml"
    assert attached.content.startswith(b"apiVersion: serving.kserve.io/v1beta1\n")
    assert "Server-side dry run" in preview.text
    assert cluster.custom_objects() == []

    proposed = runner.execute(
        f"deploy {LLAMA_8B} --name chat --namespace prod --context 8k", user="U_ADMIN"
    )
    assert proposed.ok, proposed.text
    assert proposed.data["approval"] and proposed.data["digest"] and proposed.data["change"]
    assert proposed.data["manifest"] == data["manifest"]
    change = core.changes.get(proposed.data["change"])
    assert change.status == "pending_approval"
    assert "namespace prod needs 2 admins" in change.reasons
    assert run_jobs(core) == []  # nothing runs before the approvals
    own = runner.execute(f"approve {proposed.data['approval']}", user="U_ADMIN")
    assert not own.ok  # the requester cannot approve their own change
    _approve(runner, proposed, "U_ADMIN2", "U_ADMIN3")
    [job] = run_jobs(core)
    assert job.status == "succeeded", job.error
    assert job.completed_stages == ("validate", "apply", "wait")
    change = core.changes.get(change.id)
    assert change.status == "succeeded"
    assert change.report[0] == "✅ prod/chat is Ready at http://chat.prod.example.com"
    assert any("curl -s http://chat.prod.example.com/openai/v1/chat/completions" in line
               for line in change.report)  # fmt: skip
    live = cluster.custom_object("prod", "chat")
    assert live["metadata"]["annotations"]["modelarium.io/change"] == str(change.id)
    assert live["metadata"]["managedFields"][0]["manager"] == "modelarium"

    [entry] = runner.execute("deployment history prod/chat", user="U_VIEWER").data["history"]
    assert entry["proposed_by"] == "U_ADMIN"
    assert sorted(entry["approved_by"]) == ["U_ADMIN2", "U_ADMIN3"]
    assert entry["digest"] == change.digest
    assert (entry["action"], entry["outcome"]) == ("apply", "succeeded")

    listing = runner.execute("deployments", user="U_VIEWER")
    assert listing.ok, listing.text
    [row] = listing.data["deployments"]
    assert (row["key"], row["ready"], row["url"]) == (
        "prod/chat",
        True,
        "http://chat.prod.example.com",
    )
    assert row["traffic"][0]["revisionName"] == "chat-predictor-00001"
    assert f"{LLAMA_8B}@{COMMIT[:7]}" in listing.text

    shown = runner.execute("deployment show chat", user="U_VIEWER")
    assert shown.ok, shown.text
    assert shown.data["status"] == "ready"
    assert {c["type"] for c in shown.data["conditions"]} >= {"Ready", "PredictorReady"}

    weights = runner.execute("weights", user="U_VIEWER")
    assert weights.data["weights"][0]["deployed_by"] == ["prod/chat"]
    core.settings.storage_locations[0].max_age = 1.0  # old enough to go, but deployed
    purge = runner.execute("purge --dry-run --location venus", user="U_ADMIN")
    assert "deployed by prod/chat" in purge.text, purge.text


def test_change_context_failed_rollout_is_explained_and_rolled_back(
    core: Core, runner, cluster: FakeKubernetes, clock: FakeClock
) -> None:
    install(core, LLAMA_8B)
    first = _deploy(runner, core, f"deploy {LLAMA_8B} --name chat --context 8k")
    assert first["change"].status == "succeeded"  # dev needs no approval
    clock.advance(60)
    second = _deploy(runner, core, f"deploy {LLAMA_8B} --name chat --context 16k")
    assert second["reply"].data["changes"] == [
        '~ spec.predictor.model.args: ["--max-model-len=8192", "--gpu-memory-utilization=0.9"]'
        ' -> ["--max-model-len=16384", "--gpu-memory-utilization=0.9"]'
    ]
    assert second["change"].status == "succeeded"
    assert "--max-model-len=16384" in _args(cluster, "dev", "chat")

    clock.advance(60)
    cluster.kserve.inject_failure("dev", "chat", "oom")
    third = _deploy(runner, core, f"deploy {LLAMA_8B} --name chat --context 32k")
    change = third["change"]
    assert change.status == "failed"
    assert "OOMKilled" in change.outcome  # from the conditions or the pod, whichever said first
    assert change.outcome.endswith(f"rolled back to change #{second['change'].id}")
    report = "\n".join(change.report)
    assert "❌ dev/chat did not become Ready" in report
    assert "OOMKilled" in report
    assert "BackOff" in report  # the pod's Warning event
    assert f"↩️ rolled back to change #{second['change'].id}: Ready again" in report
    assert "--max-model-len=16384" in _args(cluster, "dev", "chat")
    history = runner.execute("deployment history chat", user="U_VIEWER").data["history"]
    assert [(h["action"], h["outcome"]) for h in history] == [
        ("apply", "succeeded"),
        ("apply", "succeeded"),
        ("apply", "rolled back"),
    ]
    assert history[0]["proposed_by"] == "U_ADMIN" and history[0]["digest"]

    # roll back by hand, to the first spec
    clock.advance(60)
    back = _deploy(runner, core, "deployment rollback chat --to 1")
    assert back["change"].status == "succeeded", back["change"].outcome
    assert "--max-model-len=8192" in _args(cluster, "dev", "chat")

    # what served when
    when = (first["change"].finished_at + timedelta(seconds=30)).isoformat()
    at = runner.execute(f"deployment history chat --at {when}", user="U_VIEWER")
    assert at.ok, at.text
    assert at.data["served"]["number"] == 1
    assert runner.execute("deployment history chat --at 1d", user="U_VIEWER").data["nothing"]

    # stop and start
    clock.advance(60)
    stop = _deploy(runner, core, "deployment stop chat")
    assert stop["change"].status == "succeeded", stop["change"].outcome
    assert cluster.pods("dev") == []
    shown = runner.execute("deployment show chat", user="U_VIEWER")
    assert shown.data["status"] == "stopped"
    again = runner.execute("deployment stop chat", user="U_ADMIN")
    assert not again.ok and "already stopped" in again.text
    clock.advance(60)
    start = _deploy(runner, core, "deployment start chat")
    assert start["change"].status == "succeeded", start["change"].outcome
    assert len(cluster.pods("dev")) == 1
    clock.advance(60)
    stopped_at = runner.execute("deployment history chat --at 90s", user="U_VIEWER")
    assert "stopped" in stopped_at.data["nothing"]


def test_a_first_rollout_that_fails_is_explained_not_rolled_back(
    core: Core, runner, cluster: FakeKubernetes
) -> None:
    install(core, LLAMA_8B)
    cluster.kserve.inject_failure("dev", "chat", "image-pull")
    failed = _deploy(runner, core, f"deploy {LLAMA_8B} --name chat")
    change = failed["change"]
    assert change.status == "failed"
    assert "rolled back" not in (change.outcome or "")
    assert any("ImagePullBackOff" in line for line in change.report)
    assert runner.execute("deployment show chat", user="U_VIEWER").data["state"] == "failed"


def test_rollout_deadline(core: Core, runner, cluster: FakeKubernetes) -> None:
    install(core, LLAMA_8B)
    core.settings.deploy_ready_timeout = 1.0
    cluster.kserve.paused = True
    failed = _deploy(runner, core, f"deploy {LLAMA_8B} --name chat")
    assert failed["change"].status == "failed"
    assert failed["change"].outcome.startswith("not Ready within 1s (last: RevisionMissing")


def test_proposed_rollback_offers_a_button(core: Core, runner, cluster: FakeKubernetes) -> None:
    install(core, LLAMA_8B)
    core.settings.deploy_rollback = "propose"
    first = _deploy(runner, core, f"deploy {LLAMA_8B} --name chat --context 8k")
    cluster.kserve.inject_failure("dev", "chat", "crash-loop", message="KeyError: 'rope'")
    second = _deploy(runner, core, f"deploy {LLAMA_8B} --name chat --context 16k")
    assert second["change"].status == "failed"
    assert "KeyError: 'rope'" in second["change"].outcome
    from modelarium.core.db.models.notify import OutboundMessage

    with core.db.transaction() as session:
        row = (
            session.query(OutboundMessage)
            .filter_by(key=f"deployment-rollback:{second['change'].id}")
            .one()
        )
        buttons = json.dumps(row.payload)
    assert "deployment rollback dev/chat" in buttons
    pressed = runner.execute("deployment rollback dev/chat", user="U_ADMIN")
    assert pressed.ok, pressed.text
    [job] = run_jobs(core)
    assert job.status == "succeeded"
    assert "--max-model-len=8192" in _args(cluster, "dev", "chat")
    assert first["change"].status == "succeeded"


def test_drift_and_deletion_outside_modelarium(
    core: Core, runner, cluster: FakeKubernetes, clock: FakeClock
) -> None:
    install(core, LLAMA_8B)
    _deploy(runner, core, f"deploy {LLAMA_8B} --name chat --context 8k")
    report = core.deployments.reconcile()
    assert (report.ready, report.drifted, report.missing) == (1, [], [])
    # kubectl edit
    req = urllib.request.Request(
        f"{cluster.url}/apis/{KSERVE.api_version}/namespaces/dev/{KSERVE.plural}/chat"
        "?fieldManager=kubectl-edit",
        data=json.dumps({"spec": {"predictor": {"minReplicas": 3}}}).encode(),
        method="PATCH",
        headers={"Authorization": f"Bearer {cluster.token}",
                 "Content-Type": "application/merge-patch+json"},
    )  # fmt: skip
    urllib.request.urlopen(req).close()
    diff = runner.execute("deployment diff chat", user="U_VIEWER")
    assert "-    minReplicas: 3\n+    minReplicas: 1\n" in diff.data["diff"]
    from modelarium.automation.tasks import deployments as reconcile_task

    reconcile_task.register(core)  # what the daemon does at start
    core.tasks.sync()
    ran = runner.execute("run deployments_reconcile", user="U_ADMIN")
    assert ran.ok, ran.text
    jobs = run_jobs(core)
    firing = {a.rule: a for a in core.alerts.active()}
    assert "deployment_drift" in firing, [(j.kind, j.status, j.summary, j.error) for j in jobs]
    assert firing["deployment_drift"].state == "firing"
    assert firing["deployment_drift"].labels == {"deployment": "dev/chat"}
    from modelarium.core.db.models.notify import OutboundMessage

    with core.db.transaction() as session:
        keys = [m.key for m in session.query(OutboundMessage).all()]
        drift = [
            m for m in session.query(OutboundMessage).all() if m.key.startswith("deployment-drift")
        ]
        assert drift and "minReplicas: 1 -> 3" in json.dumps(drift[0].payload)
    assert keys

    # deleted outside Modelarium
    cluster.kserve.settle()
    with cluster._lock:
        cluster._delete_custom(KSERVE, (KSERVE.group, KSERVE.plural, "dev", "chat"))
    report = core.deployments.reconcile()
    assert report.missing == ["dev/chat"]
    assert core.deployments.reconcile().missing == []  # noticed once
    history = runner.execute("deployment history chat", user="U_VIEWER").data["history"]
    assert history[-1]["action"] == "removed"
    assert runner.execute("weights", user="U_VIEWER").data["weights"][0]["deployed_by"] == []


def test_not_ready_alert_after_the_grace_period(
    core: Core, runner, cluster: FakeKubernetes, clock: FakeClock
) -> None:
    install(core, LLAMA_8B)
    _deploy(runner, core, f"deploy {LLAMA_8B} --name chat")
    cluster.set_inference_service_ready("dev", "chat", ready=False, reason="RevisionFailed")
    core.settings.deploy_not_ready_grace = 300
    core.alerts.evaluate(
        "deployment_not_ready", core.deployments.reconcile().observations["deployment_not_ready"]
    )
    assert "deployment_not_ready" not in {a.rule for a in core.alerts.active(include_pending=False)}
    clock.advance(301)
    report = core.deployments.reconcile()
    core.alerts.evaluate("deployment_not_ready", report.observations["deployment_not_ready"])
    assert "deployment_not_ready" in {a.rule for a in core.alerts.active(include_pending=False)}
    cluster.set_inference_service_ready("dev", "chat")
    report = core.deployments.reconcile()
    core.alerts.evaluate("deployment_not_ready", report.observations["deployment_not_ready"])
    assert "deployment_not_ready" not in {a.rule for a in core.alerts.active()}


def test_delete_needs_approval_and_can_be_undone(
    core: Core, runner, cluster: FakeKubernetes
) -> None:
    install(core, LLAMA_8B)
    _deploy(runner, core, f"deploy {LLAMA_8B} --name chat")
    deleted = _deploy(runner, core, "deployment delete chat", "U_ADMIN2")
    assert deleted["reply"].data["approval"]  # even in dev
    assert deleted["change"].status == "succeeded", deleted["change"].outcome
    assert cluster.custom_object("dev", "chat") is None
    assert runner.execute("weights", user="U_VIEWER").data["weights"][0]["deployed_by"] == []
    undo = runner.execute(f"revert {deleted['change'].id}", user="U_ADMIN")
    assert undo.ok, undo.text
    run_jobs(core)
    assert cluster.custom_object("dev", "chat") is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"deploy {LLAMA_8B} --name Bad_Name", "is not a valid deployment name"),
        (f"deploy {LLAMA_8B} --namespace staging", "namespace 'staging' is not allowed"),
        (f"deploy {LLAMA_8B} --gpus 16", "--gpus 16 is more than any node has"),
        (f"deploy {LLAMA_8B} --force", "admins only"),
    ],
)
def test_bad_input_is_one_line_and_nothing_is_applied(
    core: Core, runner, cluster: FakeKubernetes, text: str, message: str
) -> None:
    install(core, LLAMA_8B)
    user = "U_OPERATOR" if "--force" in text else "U_ADMIN"
    core.rbac.grant("U_OPERATOR", Role.OPERATOR, "U_ADMIN")
    reply = runner.execute(text, user=user)
    assert not reply.ok
    assert message in reply.text
    assert cluster.custom_objects() == []


def test_webhook_rejection_and_unreachable_cluster(
    core: Core, runner, cluster: FakeKubernetes
) -> None:
    install(core, LLAMA_8B)
    cluster.add_admission_webhook(lambda op, obj, old: "models must be approved by the catalog")
    rejected = runner.execute(f"deploy {LLAMA_8B}", user="U_ADMIN")
    assert not rejected.ok
    assert rejected.data["dry_run"]["messages"] == [
        'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the '
        "request: models must be approved by the catalog"
    ]
    assert rejected.data["change"] is None
    cluster.stop()
    down = runner.execute(f"deploy {LLAMA_8B}", user="U_ADMIN")
    assert not down.ok
    assert "Kubernetes is unreachable" in down.text
