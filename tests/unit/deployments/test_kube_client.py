"""The InferenceService client through the real kubernetes library against the fake API server:
every call, and every failure as the one line a person reads."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelarium.config import Settings
from modelarium.core.clients.kubernetes import (
    WATCH_CHUNK,
    AdmissionRejectedError,
    ApplyConflictError,
    KubeClient,
    KubernetesAuthError,
    KubernetesForbiddenError,
    KubernetesNotConfiguredError,
    KubernetesUnreachableError,
    WatchTimeoutError,
    is_ready,
    kube_client,
)
from tests.fakes.kubernetes import KSERVE, FakeKubernetes


def _settings(tmp_path: Path, kubeconfig: Path | None) -> Settings:
    return Settings(data_dir=tmp_path / "data", kubeconfig=kubeconfig)  # type: ignore[call-arg]


@pytest.fixture
def kube(fake_k8s: FakeKubernetes, tmp_path: Path) -> Iterator[KubeClient]:
    client = kube_client(_settings(tmp_path, fake_k8s.write_kubeconfig(tmp_path / "kc")))
    yield client
    client.close()


def _isvc(name: str, namespace: str = "llm", **predictor: Any) -> dict[str, Any]:
    return {
        "apiVersion": KSERVE.api_version,
        "kind": KSERVE.kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "modelarium"},
        },
        "spec": {
            "predictor": {
                "minReplicas": 1,
                **predictor,
                "model": {
                    "modelFormat": {"name": "huggingface"},
                    "storageUri": "hf://org/tiny",
                    "args": ["--max-model-len=4096"],
                },
            }
        },
    }


def test_apply_get_list_annotate_delete(fake_k8s: FakeKubernetes, kube: KubeClient) -> None:
    assert kube.get_inference_service("llm", "tiny") is None
    dry = kube.apply_inference_service(_isvc("tiny"), dry_run=True)
    assert dry["metadata"]["name"] == "tiny"
    assert fake_k8s.custom_objects() == []

    created = kube.apply_inference_service(_isvc("tiny"))  # 201: decoded all the same
    assert created["metadata"]["generation"] == 1
    managers = {(e["manager"], e["operation"]) for e in created["metadata"]["managedFields"]}
    assert managers == {("modelarium", "Apply")}
    request = fake_k8s.requests[-1]
    assert request.method == "PATCH"
    assert request.headers["content-type"] == "application/apply-patch+yaml"
    assert "fieldManager=modelarium" in request.path

    assert kube.get_inference_service("llm", "tiny")["spec"] == created["spec"]
    kube.apply_inference_service(_isvc("other"))
    kube.apply_inference_service(_isvc("elsewhere", namespace="prod"))
    fake_k8s.clear_requests()
    names = [o["metadata"]["name"] for o in kube.list_inference_services("llm")]
    assert names == ["other", "tiny"]
    assert len(fake_k8s.requests) == 1  # one call per namespace

    stopped = kube.patch_annotations("llm", "tiny", {"serving.kserve.io/stop": "true"})
    assert stopped["metadata"]["annotations"] == {"serving.kserve.io/stop": "true"}
    started = kube.patch_annotations("llm", "tiny", {"serving.kserve.io/stop": None})
    assert "serving.kserve.io/stop" not in (started["metadata"].get("annotations") or {})

    assert kube.delete_inference_service("llm", "tiny", dry_run=True) is True
    assert kube.get_inference_service("llm", "tiny") is not None
    assert kube.delete_inference_service("llm", "tiny") is True
    assert kube.delete_inference_service("llm", "tiny") is False
    assert kube.get_inference_service("llm", "tiny") is None


def test_list_reads_large_namespaces_in_pages(fake_k8s: FakeKubernetes, kube: KubeClient) -> None:
    for i in range(501):
        fake_k8s.put_custom_object("big", {**_isvc(f"m{i:03d}"), "status": {}})
    fake_k8s.clear_requests()
    assert len(kube.list_inference_services("big")) == 501
    assert len(fake_k8s.requests) == 2


def test_apply_conflict_names_the_other_manager(fake_k8s: FakeKubernetes, kube: KubeClient) -> None:
    kube.apply_inference_service(_isvc("tiny"))

    req = urllib.request.Request(
        f"{fake_k8s.url}/apis/{KSERVE.api_version}/namespaces/llm/{KSERVE.plural}/tiny"
        "?fieldManager=kubectl-edit",
        data=json.dumps({"spec": {"predictor": {"minReplicas": 3}}}).encode(),
        method="PATCH",
        headers={
            "Authorization": f"Bearer {fake_k8s.token}",
            "Content-Type": "application/merge-patch+json",
        },
    )
    urllib.request.urlopen(req).close()

    with pytest.raises(ApplyConflictError) as exc:
        kube.apply_inference_service(_isvc("tiny"), dry_run=True)
    assert str(exc.value) == (
        "another field manager changed fields Modelarium applies "
        '("kubectl-edit" using serving.kserve.io/v1beta1 owns .spec.predictor.minReplicas); '
        "re-apply with --force to take them over"
    )
    assert [(c.manager, c.field) for c in exc.value.conflicts] == [
        ('"kubectl-edit" using serving.kserve.io/v1beta1', ".spec.predictor.minReplicas")
    ]
    assert exc.value.detail.startswith("Apply failed with 1 conflict")
    forced = kube.apply_inference_service(_isvc("tiny"), force=True)
    assert forced["spec"]["predictor"]["minReplicas"] == 1


def test_webhook_rejection_is_shown_verbatim(fake_k8s: FakeKubernetes, kube: KubeClient) -> None:
    fake_k8s.add_admission_webhook(
        lambda op, obj, old: 'the InferenceService "tiny" is invalid: minReplicas > maxReplicas',
        code=403,
    )
    with pytest.raises(AdmissionRejectedError) as exc:
        kube.apply_inference_service(_isvc("tiny"), dry_run=True)
    assert str(exc.value) == (
        'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the '
        'request: the InferenceService "tiny" is invalid: minReplicas > maxReplicas'
    )


def test_rbac_refusal_is_the_api_servers_sentence(
    fake_k8s: FakeKubernetes, kube: KubeClient
) -> None:
    fake_k8s.deny("patch", "inferenceservices", "prod")
    with pytest.raises(KubernetesForbiddenError) as exc:
        kube.apply_inference_service(_isvc("tiny", namespace="prod"))
    assert str(exc.value) == (
        "Kubernetes refused applying inferenceservice prod/tiny: "
        'inferenceservices.serving.kserve.io "tiny" is forbidden: User '
        '"system:serviceaccount:modelarium:modelarium" cannot patch resource '
        '"inferenceservices" in API group "serving.kserve.io" in the namespace "prod"'
    )


def test_expired_credentials(fake_k8s: FakeKubernetes, tmp_path: Path) -> None:
    path = fake_k8s.write_kubeconfig(tmp_path / "kc")
    data = json.loads(path.read_text())
    data["users"][0]["user"]["token"] = "expired-token"
    path.write_text(json.dumps(data))
    client = kube_client(_settings(tmp_path, path))
    with pytest.raises(KubernetesAuthError) as exc:
        client.list_inference_services("llm")
    assert str(exc.value) == (
        "Kubernetes rejected our credentials while listing inferenceservices in llm "
        "(HTTP 401 Unauthorized): the kubeconfig's token or certificate is missing, wrong or "
        "expired"
    )


def test_missing_kubeconfig_and_unreachable_cluster(
    fake_k8s: FakeKubernetes, tmp_path: Path
) -> None:
    with pytest.raises(KubernetesNotConfiguredError) as missing:
        kube_client(_settings(tmp_path, tmp_path / "nope"))
    assert str(missing.value) == f"kubeconfig {tmp_path / 'nope'} does not exist"
    with pytest.raises(KubernetesNotConfiguredError) as unset:
        kube_client(_settings(tmp_path, None))
    assert str(unset.value) == "Kubernetes is not configured (set KUBECONFIG or run in a cluster)"

    client = kube_client(_settings(tmp_path, fake_k8s.write_kubeconfig(tmp_path / "kc")), 2.0)
    fake_k8s.stop()
    with pytest.raises(KubernetesUnreachableError) as down:
        client.get_inference_service("llm", "tiny")
    assert str(down.value).startswith("Kubernetes is unreachable (")
    assert "\n" not in str(down.value)


def test_wait_ready_watches_the_rollout(fake_kserve: FakeKubernetes, kube: KubeClient) -> None:
    created = kube.apply_inference_service(_isvc("tiny"))
    seen: list[Any] = []
    ready = kube.wait_for(
        "llm",
        "tiny",
        lambda obj: seen.append(obj) or is_ready(obj),
        5.0,
        resource_version=created["metadata"]["resourceVersion"],
    )
    assert ready is not None and ready["status"]["url"] == "http://tiny.llm.example.com"
    assert len(seen) >= 2  # the rollout's Unknown, then Ready
    assert not is_ready(seen[0])
    assert is_ready(kube.wait_ready("llm", "tiny", 5.0))  # already Ready: the first event

    pods = kube.service_pods("llm", "tiny")
    assert [p["metadata"]["labels"]["serving.knative.dev/revision"] for p in pods] == [
        "tiny-predictor-00001"
    ]
    events = kube.events("llm", pods[0]["metadata"]["name"])
    assert [e["reason"] for e in events] == ["Scheduled", "Pulled", "Created", "Started"]
    assert kube.events("llm", "tiny", kind="InferenceService", warnings=True) == []


def test_wait_times_out_with_the_last_object(fake_kserve: FakeKubernetes, kube: KubeClient) -> None:
    fake_kserve.kserve.paused = True
    kube.apply_inference_service(_isvc("tiny"))
    started = time.monotonic()
    cancelled = []
    with pytest.raises(WatchTimeoutError) as exc:
        kube.wait_ready("llm", "tiny", 1.0, check=lambda: cancelled.append(1))
    assert 0.9 < time.monotonic() - started < 4
    assert exc.value.last is not None
    assert exc.value.last["metadata"]["name"] == "tiny"
    assert cancelled  # the check ran between events
    assert str(exc.value) == "inferenceservice llm/tiny did not get there within 1s"


def test_wait_survives_a_compacted_history(fake_kserve: FakeKubernetes, kube: KubeClient) -> None:
    created = kube.apply_inference_service(_isvc("tiny"))
    fake_kserve.kserve.settle()
    fake_kserve.compact()
    ready = kube.wait_ready(
        "llm", "tiny", 5.0, resource_version=created["metadata"]["resourceVersion"]
    )
    assert is_ready(ready)


def test_deletion_is_seen_by_a_waiter(fake_kserve: FakeKubernetes, kube: KubeClient) -> None:
    created = kube.apply_inference_service(_isvc("tiny"))
    kube.delete_inference_service("llm", "tiny")
    gone = kube.wait_for(
        "llm",
        "tiny",
        lambda obj: obj is None,
        3.0,
        resource_version=created["metadata"]["resourceVersion"],
    )
    assert gone is None


def test_a_wait_for_a_deletion_that_already_happened_ends_at_once(
    fake_kserve: FakeKubernetes, kube: KubeClient
) -> None:
    """Without a resourceVersion the wait starts from a list: a watch alone sends nothing for
    an object that is not there, and `deployment delete` sat out a whole watch chunk (10 s)."""
    kube.apply_inference_service(_isvc("tiny"))
    kube.delete_inference_service("llm", "tiny")
    fake_kserve.clear_requests()
    started = time.monotonic()
    assert kube.wait_for("llm", "tiny", lambda obj: obj is None, 60.0) is None
    assert time.monotonic() - started < WATCH_CHUNK / 2
    assert not any("watch=" in r.path for r in fake_kserve.requests), "answered by the list"
