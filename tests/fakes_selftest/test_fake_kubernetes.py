"""Self-tests for FakeKubernetes: the REAL kubernetes client must accept it as an API server."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.fakes.kubernetes import KSERVE, FakeKubernetes, fake_k8s

__all__ = ["fake_k8s"]  # the fixture is imported for pytest, not unused

G, V, P = KSERVE.group, KSERVE.version, KSERVE.plural


@pytest.fixture
def api(fake_k8s: FakeKubernetes, tmp_path: Path) -> Iterator[client.ApiClient]:
    path = fake_k8s.write_kubeconfig(tmp_path / "kubeconfig")
    with config.new_client_from_config(config_file=str(path)) as api_client:
        yield api_client


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def _raw(fake: FakeKubernetes, path: str) -> dict[str, Any]:
    req = urllib.request.Request(fake.url + path, headers={"Authorization": f"Bearer {fake.token}"})
    with urllib.request.urlopen(req) as resp:
        return json.load(resp)


def _status(exc: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    return json.loads(exc.value.body)


def _isvc(name: str, model: str = "hf://org/tiny") -> dict[str, Any]:
    return {
        "apiVersion": KSERVE.api_version,
        "kind": KSERVE.kind,
        "metadata": {"name": name, "labels": {"app": "modelarium"}},
        "spec": {
            "predictor": {"model": {"modelFormat": {"name": "huggingface"}, "storageUri": model}}
        },
    }


# -- kubeconfig, auth, version --------------------------------------------------------------
def test_load_kube_config_global(fake_k8s: FakeKubernetes, tmp_path: Path) -> None:
    saved = client.Configuration.get_default_copy()
    try:
        config.load_kube_config(config_file=str(fake_k8s.write_kubeconfig(tmp_path / "kc")))
        fake_k8s.add_node("n1")
        assert [n.metadata.name for n in client.CoreV1Api().list_node().items] == ["n1"]
    finally:
        client.Configuration.set_default(saved)
    assert fake_k8s.requests[-1].headers["authorization"] == f"Bearer {fake_k8s.token}"


def test_bad_token_is_401(fake_k8s: FakeKubernetes, tmp_path: Path) -> None:
    path = fake_k8s.write_kubeconfig(tmp_path / "kc")
    data = json.loads(path.read_text())
    data["users"][0]["user"]["token"] = "wrong"
    path.write_text(json.dumps(data))
    with (
        config.new_client_from_config(config_file=str(path)) as api_client,
        pytest.raises(ApiException) as exc,
    ):
        client.CoreV1Api(api_client).list_node()
    assert exc.value.status == 401
    assert _status(exc)["reason"] == "Unauthorized"


def test_version(api: client.ApiClient) -> None:
    info = client.VersionApi(api).get_code()
    assert info.git_version == "v1.31.4"
    assert (info.major, info.minor) == ("1", "31")


# -- nodes ----------------------------------------------------------------------------------
def test_gpu_node_labels_and_resources(fake_k8s: FakeKubernetes, core: client.CoreV1Api) -> None:
    fake_k8s.add_gpu_node("gpu-a100", count=8)
    fake_k8s.add_gpu_node("gpu-h100", product="NVIDIA-H100-80GB-HBM3", count=4, allocatable_gpus=3)
    fake_k8s.add_node("cpu-1")

    nodes = core.list_node(label_selector="nvidia.com/gpu.present=true").items
    assert [n.metadata.name for n in nodes] == ["gpu-a100", "gpu-h100"]
    h100 = core.read_node("gpu-h100")
    labels = h100.metadata.labels
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert labels["nvidia.com/gpu.memory"] == "81559"
    assert labels["nvidia.com/gpu.count"] == "4"
    assert labels["nvidia.com/gpu.family"] == "hopper"
    assert h100.status.capacity["nvidia.com/gpu"] == "4"
    assert h100.status.allocatable["nvidia.com/gpu"] == "3"
    assert any(c.type == "Ready" and c.status == "True" for c in h100.status.conditions)

    assert [
        n.metadata.name for n in core.list_node(label_selector="!nvidia.com/gpu.present").items
    ] == ["cpu-1"]
    sel = "nvidia.com/gpu.family in (ampere,volta)"
    assert [n.metadata.name for n in core.list_node(label_selector=sel).items] == ["gpu-a100"]


def test_list_envelope_and_404_status(fake_k8s: FakeKubernetes, core: client.CoreV1Api) -> None:
    fake_k8s.add_node("n1")
    raw = _raw(fake_k8s, "/api/v1/nodes")
    assert raw["kind"] == "NodeList"
    assert raw["apiVersion"] == "v1"
    assert raw["metadata"]["resourceVersion"].isdigit()
    assert "kind" not in raw["items"][0]  # typed list items carry no kind

    with pytest.raises(ApiException) as exc:
        core.read_node("nope")
    assert exc.value.status == 404
    body = _status(exc)
    assert body["kind"] == "Status"
    assert body["reason"] == "NotFound"
    assert body["message"] == 'nodes "nope" not found'
    assert body["details"] == {"name": "nope", "kind": "nodes"}


def test_pagination(fake_k8s: FakeKubernetes, core: client.CoreV1Api) -> None:
    for i in range(3):
        fake_k8s.add_node(f"n{i}")
    first = core.list_node(limit=2)
    assert [n.metadata.name for n in first.items] == ["n0", "n1"]
    assert first.metadata.remaining_item_count == 1
    rest = core.list_node(limit=2, _continue=first.metadata._continue)
    assert [n.metadata.name for n in rest.items] == ["n2"]
    assert rest.metadata._continue is None


# -- pods -----------------------------------------------------------------------------------
def test_pods_field_selectors(fake_k8s: FakeKubernetes, core: client.CoreV1Api) -> None:
    fake_k8s.add_gpu_node("gpu-1")
    fake_k8s.add_pod("vllm-0", "llm", node="gpu-1", gpus=2)
    fake_k8s.add_pod("done", "llm", node="gpu-1", gpus=1, phase="Succeeded")
    fake_k8s.add_pod("elsewhere", "default", node="gpu-2", gpus=1)
    fake_k8s.add_pod("pending", "llm", gpus=4)

    sel = "spec.nodeName=gpu-1,status.phase!=Succeeded,status.phase!=Failed"
    pods = core.list_pod_for_all_namespaces(field_selector=sel).items
    assert [p.metadata.name for p in pods] == ["vllm-0"]
    container = pods[0].spec.containers[0]
    assert container.resources.requests["nvidia.com/gpu"] == "2"
    assert container.resources.limits["nvidia.com/gpu"] == "2"
    assert pods[0].status.phase == "Running"

    assert len(core.list_pod_for_all_namespaces().items) == 4
    assert [p.metadata.name for p in core.list_namespaced_pod("llm").items] == [
        "done",
        "pending",
        "vllm-0",
    ]
    pending = core.read_namespaced_pod("pending", "llm")
    assert pending.spec.node_name is None
    assert pending.status.phase == "Pending"

    fake_k8s.set_pod_phase("vllm-0", "llm", "Failed")
    assert core.list_pod_for_all_namespaces(field_selector=sel).items == []

    with pytest.raises(ApiException) as exc:
        core.list_pod_for_all_namespaces(field_selector="spec.bogus=x")
    assert exc.value.status == 400
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_pod("nope", "llm")
    assert _status(missing)["message"] == 'pods "nope" not found'


def test_namespaces(fake_k8s: FakeKubernetes, core: client.CoreV1Api) -> None:
    fake_k8s.add_pod("p", "llm")
    names = [n.metadata.name for n in core.list_namespace().items]
    assert names == ["default", "kube-system", "llm"]
    assert core.read_namespace("llm").status.phase == "Active"


# -- faults ---------------------------------------------------------------------------------
def test_injected_faults(fake_k8s: FakeKubernetes, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    fake_k8s.fail_next(500, path="/api/v1/nodes")
    with pytest.raises(ApiException) as exc:
        core.list_node()
    assert exc.value.status == 500
    assert core.list_node().items == []

    api.configuration.client_go_retries = True
    fake_k8s.fail_next(429, method="GET", retry_after=1)
    start = time.monotonic()
    assert core.list_node().items == []
    assert time.monotonic() - start >= 1.0


# -- custom objects (KServe) -----------------------------------------------------------------
def test_custom_objects_crud(fake_k8s: FakeKubernetes, custom: client.CustomObjectsApi) -> None:
    created = custom.create_namespaced_custom_object(G, V, "llm", P, _isvc("tiny"))
    meta = created["metadata"]
    assert meta["namespace"] == "llm"
    assert meta["generation"] == 1
    assert meta["uid"]
    assert fake_k8s.custom_object("llm", "tiny") == created

    with pytest.raises(ApiException) as dup:
        custom.create_namespaced_custom_object(G, V, "llm", P, _isvc("tiny"))
    assert dup.value.status == 409
    assert _status(dup)["reason"] == "AlreadyExists"

    got = custom.get_namespaced_custom_object(G, V, "llm", P, "tiny")
    assert got["spec"] == created["spec"]
    listed = custom.list_namespaced_custom_object(G, V, "llm", P, label_selector="app=modelarium")
    assert listed["kind"] == "InferenceServiceList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["tiny"]
    assert listed["items"][0]["kind"] == "InferenceService"
    assert custom.list_cluster_custom_object(G, V, P)["items"][0]["metadata"]["name"] == "tiny"

    patched = custom.patch_namespaced_custom_object(
        G,
        V,
        "llm",
        P,
        "tiny",
        {"spec": {"predictor": {"minReplicas": 1}}, "metadata": {"labels": {"app": None}}},
    )
    assert patched["spec"]["predictor"]["minReplicas"] == 1
    assert patched["spec"]["predictor"]["model"]["storageUri"] == "hf://org/tiny"
    assert "app" not in patched["metadata"].get("labels", {})
    assert patched["metadata"]["generation"] == 2
    assert int(patched["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])

    with pytest.raises(ApiException) as stale:
        custom.patch_namespaced_custom_object(
            G,
            V,
            "llm",
            P,
            "tiny",
            {"metadata": {"resourceVersion": meta["resourceVersion"]}, "spec": {}},
        )
    assert stale.value.status == 409
    assert _status(stale)["reason"] == "Conflict"

    jp = custom.patch_namespaced_custom_object(
        G,
        V,
        "llm",
        P,
        "tiny",
        [{"op": "replace", "path": "/spec/predictor/minReplicas", "value": 2}],
        _content_type="application/json-patch+json",
    )
    assert jp["spec"]["predictor"]["minReplicas"] == 2

    body = {**jp, "spec": {"predictor": {"model": {"storageUri": "hf://org/other"}}}}
    replaced = custom.replace_namespaced_custom_object(G, V, "llm", P, "tiny", body)
    assert replaced["spec"]["predictor"] == {"model": {"storageUri": "hf://org/other"}}
    with pytest.raises(ApiException) as conflict:
        custom.replace_namespaced_custom_object(G, V, "llm", P, "tiny", body)  # stale rv
    assert conflict.value.status == 409
    no_rv = {**body, "metadata": {"name": "tiny"}}
    with pytest.raises(ApiException) as invalid:
        custom.replace_namespaced_custom_object(G, V, "llm", P, "tiny", no_rv)
    assert invalid.value.status == 422

    deleted = custom.delete_namespaced_custom_object(G, V, "llm", P, "tiny")
    assert deleted["kind"] == "Status"
    assert deleted["status"] == "Success"
    with pytest.raises(ApiException) as gone:
        custom.get_namespaced_custom_object(G, V, "llm", P, "tiny")
    assert gone.value.status == 404
    assert _status(gone)["message"] == 'inferenceservices.serving.kserve.io "tiny" not found'
    with pytest.raises(ApiException) as gone_delete:
        custom.delete_namespaced_custom_object(G, V, "llm", P, "tiny")
    assert gone_delete.value.status == 404


def test_custom_object_validation(custom: client.CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as no_name:
        custom.create_namespaced_custom_object(G, V, "llm", P, {**_isvc("x"), "metadata": {}})
    assert no_name.value.status == 422
    with pytest.raises(ApiException) as bad_name:
        custom.create_namespaced_custom_object(G, V, "llm", P, _isvc("Bad_Name"))
    assert bad_name.value.status == 422
    with pytest.raises(ApiException) as wrong_kind:
        custom.create_namespaced_custom_object(G, V, "llm", P, {**_isvc("x"), "kind": "Pod"})
    assert wrong_kind.value.status == 400
    with pytest.raises(ApiException) as no_crd:
        custom.list_namespaced_custom_object("example.com", "v1", "llm", "widgets")
    assert no_crd.value.status == 404
    generated = custom.create_namespaced_custom_object(
        G, V, "llm", P, {**_isvc("x"), "metadata": {"generateName": "tiny-"}}
    )
    assert generated["metadata"]["name"].startswith("tiny-")


def test_status_subresource(fake_k8s: FakeKubernetes, custom: client.CustomObjectsApi) -> None:
    with_status = {**_isvc("tiny"), "status": {"url": "http://ignored"}}
    created = custom.create_namespaced_custom_object(G, V, "llm", P, with_status)
    assert "status" not in created  # status is the controller's, dropped on create

    patched = custom.patch_namespaced_custom_object_status(
        G, V, "llm", P, "tiny", {"status": {"url": "http://x"}, "spec": {"ignored": True}}
    )
    assert patched["status"] == {"url": "http://x"}
    assert "ignored" not in patched["spec"]
    assert patched["metadata"]["generation"] == 1

    ignored = custom.patch_namespaced_custom_object(
        G, V, "llm", P, "tiny", {"status": {"url": "y"}}
    )
    assert ignored["status"] == {"url": "http://x"}  # main resource ignores status changes

    fake_k8s.set_inference_service_ready("llm", "tiny", url="http://tiny.llm.example.com")
    got = custom.get_namespaced_custom_object(G, V, "llm", P, "tiny")
    ready = next(c for c in got["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert got["status"]["url"] == "http://tiny.llm.example.com"

    fake_k8s.set_inference_service_ready("llm", "tiny", ready=False, reason="ModelLoadFailed")
    got = custom.get_namespaced_custom_object_status(G, V, "llm", P, "tiny")
    ready = next(c for c in got["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ModelLoadFailed")


def test_reset(fake_k8s: FakeKubernetes, core: client.CoreV1Api) -> None:
    fake_k8s.add_node("n1")
    fake_k8s.put_custom_object("llm", _isvc("tiny"))
    fake_k8s.reset()
    assert core.list_node().items == []
    assert fake_k8s.custom_objects() == []
