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


# -- dry run --------------------------------------------------------------------------------
def test_dry_run_validates_and_stores_nothing(
    fake_k8s: FakeKubernetes, custom: client.CustomObjectsApi
) -> None:
    rv_before = fake_k8s.custom_objects()
    created = custom.create_namespaced_custom_object(G, V, "llm", P, _isvc("tiny"), dry_run="All")
    assert created["metadata"]["name"] == "tiny"
    assert created["metadata"]["uid"]
    assert "resourceVersion" not in created["metadata"]  # nothing was persisted
    assert fake_k8s.custom_objects() == rv_before == []
    with pytest.raises(ApiException) as invalid:
        custom.create_namespaced_custom_object(G, V, "llm", P, _isvc("Bad_Name"), dry_run="All")
    assert invalid.value.status == 422

    custom.create_namespaced_custom_object(G, V, "llm", P, _isvc("tiny"))
    stored = fake_k8s.custom_object("llm", "tiny")
    assert stored is not None
    patch = {"spec": {"predictor": {"minReplicas": 3}}}
    answer = custom.patch_namespaced_custom_object(G, V, "llm", P, "tiny", patch, dry_run="All")
    assert answer["spec"]["predictor"]["minReplicas"] == 3
    assert answer["metadata"]["generation"] == 2
    assert fake_k8s.custom_object("llm", "tiny") == stored
    applied = custom.patch_namespaced_custom_object(
        G,
        V,
        "llm",
        P,
        "tiny",
        {**_isvc("tiny", "hf://org/other")},
        dry_run="All",
        field_manager="modelarium",
        force=True,  # created by another manager
        _content_type="application/apply-patch+yaml",
    )
    assert applied["spec"]["predictor"]["model"]["storageUri"] == "hf://org/other"
    assert fake_k8s.custom_object("llm", "tiny") == stored
    gone = custom.delete_namespaced_custom_object(G, V, "llm", P, "tiny", dry_run="All")
    assert gone["status"] == "Success"
    assert fake_k8s.custom_object("llm", "tiny") == stored
    with pytest.raises(ApiException) as bad:
        custom.create_namespaced_custom_object(G, V, "llm", P, _isvc("x"), dry_run="Some")
    assert bad.value.status == 400
    assert 'supported values: "All"' in _status(bad)["message"]


# -- server-side apply ---------------------------------------------------------------------
APPLY = "application/apply-patch+yaml"


def _apply(custom: client.CustomObjectsApi, body: dict, manager: str = "modelarium", **kw: Any):
    """Apply and decode the answer ourselves: an apply that creates answers 201, which the
    generated client's patch method does not map (it would return None)."""
    name = body["metadata"]["name"]
    response = custom.patch_namespaced_custom_object(
        G,
        V,
        "llm",
        P,
        name,
        body,
        field_manager=manager,
        _content_type=APPLY,
        _preload_content=False,
        **kw,
    )
    return json.loads(response.data)


def test_apply_that_creates_answers_201(custom: client.CustomObjectsApi) -> None:
    response = custom.patch_namespaced_custom_object(
        G,
        V,
        "llm",
        P,
        "tiny",
        _isvc("tiny"),
        field_manager="m",
        _content_type=APPLY,
        _preload_content=False,
    )
    assert response.status == 201
    again = custom.patch_namespaced_custom_object(
        G, V, "llm", P, "tiny", _isvc("tiny"), field_manager="m", _content_type=APPLY
    )
    assert again["metadata"]["name"] == "tiny"  # 200: the client decodes it


def _fields(obj: dict, manager: str, operation: str = "Apply") -> dict:
    entry = next(
        e
        for e in obj["metadata"]["managedFields"]
        if e["manager"] == manager and e["operation"] == operation
    )
    assert entry["fieldsType"] == "FieldsV1"
    return entry["fieldsV1"]


def test_server_side_apply_creates_and_owns_fields(
    fake_k8s: FakeKubernetes, custom: client.CustomObjectsApi
) -> None:
    body = _isvc("tiny")
    body["spec"]["predictor"]["minReplicas"] = 1
    created = _apply(custom, body)
    assert created["metadata"]["generation"] == 1
    assert fake_k8s.requests[-1].headers["content-type"] == APPLY
    owned = _fields(created, "modelarium")
    assert owned["f:metadata"] == {"f:labels": {"f:app": {}}}
    assert owned["f:spec"]["f:predictor"]["f:minReplicas"] == {}
    assert owned["f:spec"]["f:predictor"]["f:model"]["f:storageUri"] == {}

    # the same apply again changes nothing, not even the generation
    again = _apply(custom, body)
    assert again["metadata"]["generation"] == 1
    assert again["spec"] == created["spec"]

    # a field the manager stops applying is removed; one another manager owns too stays
    custom.patch_namespaced_custom_object(
        G,
        V,
        "llm",
        P,
        "tiny",
        {"metadata": {"labels": {"team": "ml"}}},
        field_manager="kubectl-label",
    )
    body["metadata"]["labels"] = {"team": "ml"}
    body["spec"]["predictor"].pop("minReplicas")
    third = _apply(custom, body)
    assert "minReplicas" not in third["spec"]["predictor"]
    assert third["metadata"]["labels"] == {"team": "ml"}
    assert third["metadata"]["generation"] == 2

    with pytest.raises(ApiException) as no_manager:
        custom.patch_namespaced_custom_object(G, V, "llm", P, "tiny", body, _content_type=APPLY)
    assert no_manager.value.status == 422
    assert _status(no_manager)["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
        "is required for apply patch"
    )
    with pytest.raises(ApiException) as forced_merge:
        custom.patch_namespaced_custom_object(G, V, "llm", P, "tiny", {"spec": {}}, force=True)
    assert forced_merge.value.status == 422
    with pytest.raises(ApiException) as wrong_name:
        custom.patch_namespaced_custom_object(
            G,
            V,
            "llm",
            P,
            "tiny",
            {**body, "metadata": {"name": "other"}},
            field_manager="m",
            _content_type=APPLY,
        )
    assert wrong_name.value.status == 400


def test_server_side_apply_conflicts_name_the_other_manager(
    fake_k8s: FakeKubernetes, custom: client.CustomObjectsApi
) -> None:
    body = _isvc("tiny")
    body["spec"]["predictor"]["minReplicas"] = 1
    _apply(custom, body)
    # someone edits the live object with kubectl
    custom.patch_namespaced_custom_object(
        G,
        V,
        "llm",
        P,
        "tiny",
        {"spec": {"predictor": {"minReplicas": 4}}},
        field_manager="kubectl-edit",
    )
    live = fake_k8s.custom_object("llm", "tiny")
    assert live is not None
    edit = _fields(live, "kubectl-edit", "Update")
    assert edit == {"f:spec": {"f:predictor": {"f:minReplicas": {}}}}
    assert "f:minReplicas" not in _fields(live, "modelarium")["f:spec"]["f:predictor"]

    with pytest.raises(ApiException) as conflict:
        _apply(custom, body)
    assert conflict.value.status == 409
    status = _status(conflict)
    assert status["reason"] == "Conflict"
    assert status["message"] == (
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using '
        "serving.kserve.io/v1beta1: .spec.predictor.minReplicas"
    )
    assert status["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl-edit" using serving.kserve.io/v1beta1',
            "field": ".spec.predictor.minReplicas",
        }
    ]
    assert fake_k8s.custom_object("llm", "tiny")["spec"]["predictor"]["minReplicas"] == 4

    # applying the value the other manager set is shared ownership, not a conflict
    same = json.loads(json.dumps(body))
    same["spec"]["predictor"]["minReplicas"] = 4
    _apply(custom, same)

    # two managers, two fields: the multi-conflict wording, managers sorted
    custom.patch_namespaced_custom_object(
        G,
        V,
        "llm",
        P,
        "tiny",
        {"spec": {"predictor": {"maxReplicas": 9}}},
        field_manager="hpa-tuner",
    )
    custom.patch_namespaced_custom_object(
        G,
        V,
        "llm",
        P,
        "tiny",
        {"spec": {"predictor": {"minReplicas": 2}}},
        field_manager="kubectl-edit",
    )
    body["spec"]["predictor"]["maxReplicas"] = 3
    with pytest.raises(ApiException) as two:
        _apply(custom, body)
    assert _status(two)["message"] == (
        'Apply failed with 2 conflicts: conflicts with "hpa-tuner" using '
        "serving.kserve.io/v1beta1:\n- .spec.predictor.maxReplicas\n"
        'conflicts with "kubectl-edit" using serving.kserve.io/v1beta1:\n'
        "- .spec.predictor.minReplicas"
    )

    forced = _apply(custom, body, force=True)
    assert forced["spec"]["predictor"]["minReplicas"] == 1
    assert forced["spec"]["predictor"]["maxReplicas"] == 3
    managers = {e["manager"] for e in forced["metadata"]["managedFields"]}
    assert "kubectl-edit" not in managers  # it owned nothing else
    assert "hpa-tuner" not in managers


# -- watches --------------------------------------------------------------------------------
def test_watch_streams_changes(fake_k8s: FakeKubernetes, custom: client.CustomObjectsApi) -> None:
    from kubernetes import watch

    custom.create_namespaced_custom_object(G, V, "llm", P, _isvc("a"))
    listing = custom.list_namespaced_custom_object(G, V, "llm", P)
    start_rv = listing["metadata"]["resourceVersion"]

    def later() -> None:
        time.sleep(0.2)
        fake_k8s.put_custom_object("other", _isvc("elsewhere"))  # another namespace: not seen
        custom.patch_namespaced_custom_object(
            G, V, "llm", P, "a", {"spec": {"predictor": {"minReplicas": 2}}}
        )
        custom.create_namespaced_custom_object(G, V, "llm", P, _isvc("b"))
        custom.delete_namespaced_custom_object(G, V, "llm", P, "a")

    import threading

    threading.Thread(target=later, daemon=True).start()
    seen = []
    w = watch.Watch()
    for event in w.stream(
        custom.list_namespaced_custom_object,
        G,
        V,
        "llm",
        P,
        resource_version=start_rv,
        timeout_seconds=5,
    ):
        seen.append((event["type"], event["object"]["metadata"]["name"]))
        if len(seen) == 3:
            w.stop()
    assert seen == [("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")]
    assert sum("watch=true" in r.path for r in fake_k8s.requests) == 1

    # no resourceVersion: the current state first, as synthetic ADDED events; then the timeout
    started = time.monotonic()
    initial = [
        (e["type"], e["object"]["metadata"]["name"])
        for e in watch.Watch().stream(
            custom.list_namespaced_custom_object, G, V, "llm", P, timeout_seconds=1
        )
    ]
    assert initial == [("ADDED", "b")]
    assert 0.9 <= time.monotonic() - started < 5

    # after compaction an old resourceVersion is Gone
    fake_k8s.compact()
    with pytest.raises(ApiException) as gone:
        list(
            watch.Watch().stream(
                custom.list_namespaced_custom_object,
                G,
                V,
                "llm",
                P,
                resource_version=start_rv,
                timeout_seconds=1,
            )
        )
    assert gone.value.status == 410


def test_watch_one_object_and_raw_wire_format(fake_k8s: FakeKubernetes) -> None:
    fake_k8s.put_custom_object("llm", _isvc("a"))
    fake_k8s.put_custom_object("llm", _isvc("b"))
    url = (
        f"{fake_k8s.url}/apis/{G}/{V}/namespaces/llm/{P}?watch=1&timeoutSeconds=1"
        "&fieldSelector=metadata.name%3Db&allowWatchBookmarks=true"
    )
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {fake_k8s.token}"})
    with urllib.request.urlopen(req) as resp:
        assert resp.headers["Transfer-Encoding"] == "chunked"
        lines = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in lines] == [
        ("ADDED", "b"),
        ("BOOKMARK", None),
    ]
    assert lines[1]["object"]["metadata"]["resourceVersion"].isdigit()


def test_watch_pods(fake_k8s: FakeKubernetes, core: client.CoreV1Api) -> None:
    from kubernetes import watch

    rv = core.list_namespaced_pod("llm").metadata.resource_version

    def later() -> None:
        time.sleep(0.2)
        fake_k8s.add_pod("p", "llm", node="n1")
        fake_k8s.remove_pod("p", "llm")

    import threading

    threading.Thread(target=later, daemon=True).start()
    events = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            core.list_namespaced_pod, "llm", resource_version=rv, timeout_seconds=1
        )
    ]
    assert events == [("ADDED", "p"), ("DELETED", "p")]


# -- events ---------------------------------------------------------------------------------
def test_events_list_and_field_selectors(fake_k8s: FakeKubernetes, core: client.CoreV1Api) -> None:
    pod = fake_k8s.add_pod("p1", "llm", node="n1")
    fake_k8s.record_event("llm", pod, "Started", "Started container main")
    fake_k8s.record_event("llm", pod, "BackOff", "Back-off restarting", type="Warning")
    fake_k8s.record_event("llm", pod, "BackOff", "Back-off restarting", type="Warning")
    fake_k8s.record_event("llm", {"kind": "Pod", "name": "p2"}, "Failed", "x", type="Warning")

    mine = core.list_namespaced_event("llm", field_selector="involvedObject.name=p1").items
    assert [(e.reason, e.count) for e in mine] == [("Started", 1), ("BackOff", 2)]
    assert mine[1].involved_object.kind == "Pod"
    assert mine[1].involved_object.uid == pod["metadata"]["uid"]
    assert mine[1].source.component == "kubelet"
    warnings = core.list_namespaced_event(
        "llm", field_selector="involvedObject.name=p1,type=Warning"
    ).items
    assert [e.reason for e in warnings] == ["BackOff"]
    assert len(core.list_event_for_all_namespaces().items) == 3
    with pytest.raises(ApiException) as bad:
        core.list_namespaced_event("llm", field_selector="spec.nope=1")
    assert bad.value.status == 400


# -- admission and RBAC ---------------------------------------------------------------------
def test_admission_webhook_denies_with_its_message(
    fake_k8s: FakeKubernetes, custom: client.CustomObjectsApi
) -> None:
    seen: list[tuple[str, bool]] = []

    def check(operation: str, obj: dict, old: dict | None) -> str | None:
        seen.append((operation, old is not None))
        uri = obj["spec"]["predictor"]["model"]["storageUri"]
        return None if uri.startswith(("hf://", "pvc://")) else f"storageUri {uri} is not allowed"

    fake_k8s.add_admission_webhook(check, code=422)
    with pytest.raises(ApiException) as denied:
        custom.create_namespaced_custom_object(
            G, V, "llm", P, _isvc("x", "s3://bucket/m"), dry_run="All"
        )
    assert denied.value.status == 422
    assert _status(denied)["message"] == (
        'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the '
        "request: storageUri s3://bucket/m is not allowed"
    )
    custom.create_namespaced_custom_object(G, V, "llm", P, _isvc("x"))
    with pytest.raises(ApiException) as on_apply:
        _apply(custom, {**_isvc("x", "gs://b/m")}, force=True)
    assert on_apply.value.status == 422
    assert fake_k8s.custom_object("llm", "x")["spec"]["predictor"]["model"]["storageUri"] == (
        "hf://org/tiny"
    )
    assert seen == [("CREATE", False), ("CREATE", False), ("UPDATE", True)]

    fake_k8s.add_admission_webhook(lambda *_: "", name="deny-all.example.com", code=200)
    with pytest.raises(ApiException) as bare:
        custom.create_namespaced_custom_object(G, V, "llm", P, _isvc("y"))
    assert bare.value.status == 400
    assert _status(bare)["message"] == (
        'admission webhook "deny-all.example.com" denied the request without explanation'
    )


def test_rbac_denials_and_verbs_used(
    fake_k8s: FakeKubernetes, custom: client.CustomObjectsApi, core: client.CoreV1Api
) -> None:
    fake_k8s.deny("patch", "inferenceservices", namespace="prod")
    custom.create_namespaced_custom_object(G, V, "prod", P, _isvc("x"))
    with pytest.raises(ApiException) as forbidden:
        custom.patch_namespaced_custom_object(G, V, "prod", P, "x", {"spec": {}})
    assert forbidden.value.status == 403
    assert _status(forbidden)["message"] == (
        'inferenceservices.serving.kserve.io "x" is forbidden: User '
        '"system:serviceaccount:modelarium:modelarium" cannot patch resource '
        '"inferenceservices" in API group "serving.kserve.io" in the namespace "prod"'
    )
    fake_k8s.deny("list", "pods")
    with pytest.raises(ApiException) as pods:
        core.list_namespaced_pod("prod")
    assert _status(pods)["message"] == (
        'pods is forbidden: User "system:serviceaccount:modelarium:modelarium" cannot list '
        'resource "pods" in API group "" in the namespace "prod"'
    )
    custom.get_namespaced_custom_object(G, V, "prod", P, "x")
    assert fake_k8s.verbs_used() == {
        (G, P, "create"),
        (G, P, "patch"),
        (G, P, "get"),
        ("", "pods", "list"),
    }


# -- the KServe controller ------------------------------------------------------------------
def _gpu_isvc(name: str, gpus: int = 1, **predictor: Any) -> dict[str, Any]:
    body = _isvc(name)
    model = body["spec"]["predictor"]["model"]
    model["args"] = ["--max-model-len=4096"]
    model["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    body["spec"]["predictor"].update(predictor)
    return body


def _ready(obj: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")


def _wait(
    custom: client.CustomObjectsApi, name: str, done: Any, since: str | None = None
) -> list[dict]:
    """Watch one InferenceService until ``done(object)``; every object seen, in order."""
    from kubernetes import watch

    seen: list[dict] = []
    w = watch.Watch()
    extra = {"resource_version": since} if since else {}
    for event in w.stream(
        custom.list_namespaced_custom_object,
        G,
        V,
        "llm",
        P,
        field_selector=f"metadata.name={name}",
        timeout_seconds=5,
        **extra,
    ):
        seen.append(event["object"])
        if done(event["object"]):
            w.stop()
            return seen
    raise AssertionError(f"{name} never got there; last status {seen[-1].get('status')}")


def _settled(obj: dict[str, Any]) -> bool:
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] in ("True", "False") for c in conds)


def _revision_pods(core: client.CoreV1Api, name: str, revision: str | None = None):
    selector = f"serving.kserve.io/inferenceservice={name}"
    if revision:
        selector += f",serving.knative.dev/revision={revision}"
    return core.list_namespaced_pod("llm", label_selector=selector).items


def test_kserve_rollout_becomes_ready(
    fake_kserve: FakeKubernetes, custom: client.CustomObjectsApi, core: client.CoreV1Api
) -> None:
    created = custom.create_namespaced_custom_object(G, V, "llm", P, _gpu_isvc("tiny"))
    seen = _wait(custom, "tiny", _settled, since=created["metadata"]["resourceVersion"])
    states = [_ready(o)["status"] for o in seen if (o.get("status") or {}).get("conditions")]
    assert states[0] == "Unknown" and states[-1] == "True"
    final = seen[-1]
    status = final["status"]
    assert status["url"] == "http://tiny.llm.example.com"
    assert {c["type"] for c in status["conditions"]} >= {"PredictorReady", "IngressReady", "Ready"}
    assert all(c["status"] == "True" for c in status["conditions"])
    predictor = status["components"]["predictor"]
    assert predictor["latestCreatedRevision"] == predictor["latestReadyRevision"]
    assert predictor["latestReadyRevision"] == "tiny-predictor-00001"
    assert predictor["traffic"] == [
        {"latestRevision": True, "percent": 100, "revisionName": "tiny-predictor-00001"}
    ]
    assert status["observedGeneration"] == 1
    assert status["modelStatus"]["transitionStatus"] == "UpToDate"
    manager = [e for e in final["metadata"]["managedFields"] if e.get("subresource") == "status"]
    assert manager[0]["manager"] == "manager"

    pods = _revision_pods(core, "tiny")
    assert len(pods) == 1
    pod = pods[0]
    assert pod.status.phase == "Running"
    container = pod.spec.containers[0]
    assert (container.name, container.args) == ("kserve-container", ["--max-model-len=4096"])
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    assert pod.spec.node_name == "fake-node"  # no nodes registered: placed unchecked
    reasons = [
        e.reason
        for e in core.list_namespaced_event(
            "llm", field_selector=f"involvedObject.name={pod.metadata.name}"
        ).items
    ]
    assert reasons == ["Scheduled", "Pulled", "Created", "Started"]
    isvc_events = core.list_namespaced_event(
        "llm", field_selector="involvedObject.name=tiny,involvedObject.kind=InferenceService"
    ).items
    assert [(e.type, e.reason, e.message) for e in isvc_events] == [
        ("Normal", "InferenceServiceReady", "InferenceService [tiny] is Ready")
    ]

    # a spec change is a new revision; the old one's pods go once the new one is Ready
    custom.patch_namespaced_custom_object(
        G, V, "llm", P, "tiny", {"spec": {"predictor": {"minReplicas": 2}}}
    )
    final = _wait(
        custom,
        "tiny",
        lambda o: (
            o["status"]["components"]["predictor"].get("latestReadyRevision")
            == "tiny-predictor-00002"
        ),
    )[-1]
    predictor = final["status"]["components"]["predictor"]
    assert predictor["previousRolledoutRevision"] == "tiny-predictor-00001"
    assert final["status"]["observedGeneration"] == 2
    assert _revision_pods(core, "tiny", "tiny-predictor-00001") == []
    assert len(_revision_pods(core, "tiny", "tiny-predictor-00002")) == 2

    # a metadata-only change is no new revision
    custom.patch_namespaced_custom_object(
        G, V, "llm", P, "tiny", {"metadata": {"annotations": {"note": "x"}}}
    )
    assert fake_kserve.kserve.settle()
    got = custom.get_namespaced_custom_object(G, V, "llm", P, "tiny")
    assert got["status"]["components"]["predictor"]["latestCreatedRevision"] == (
        "tiny-predictor-00002"
    )

    custom.delete_namespaced_custom_object(G, V, "llm", P, "tiny")
    assert fake_kserve.kserve.settle()
    assert _revision_pods(core, "tiny") == []


@pytest.mark.parametrize(
    ("failure", "pod_reason", "event_reasons", "detail"),
    [
        ("image-pull", "ImagePullBackOff", {"Failed"}, 'Back-off pulling image "'),
        ("insufficient-gpus", "Unschedulable", {"FailedScheduling"}, "Insufficient nvidia.com/gpu"),
        ("oom", "CrashLoopBackOff", {"BackOff"}, "Container failed with: OOMKilled"),
        ("crash-loop", "CrashLoopBackOff", {"BackOff"}, "Container failed with: boom"),
    ],
)
def test_kserve_failures_keep_the_serving_revision(
    fake_kserve: FakeKubernetes,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    failure: str,
    pod_reason: str,
    event_reasons: set[str],
    detail: str,
) -> None:
    custom.create_namespaced_custom_object(G, V, "llm", P, _gpu_isvc("tiny"))
    _wait(custom, "tiny", lambda o: _settled(o) and _ready(o)["status"] == "True")
    fake_kserve.kserve.inject_failure("llm", "tiny", failure, message="boom")
    custom.patch_namespaced_custom_object(
        G, V, "llm", P, "tiny", {"spec": {"predictor": {"minReplicas": 1, "maxReplicas": 2}}}
    )
    final = _wait(custom, "tiny", lambda o: _settled(o) and _ready(o)["status"] == "False")[-1]
    ready = _ready(final)
    assert ready["reason"] == "RevisionFailed"
    assert ready["message"].startswith('Revision "tiny-predictor-00002" failed with message: ')
    assert detail in ready["message"]
    predictor_ready = next(
        c for c in final["status"]["conditions"] if c["type"] == "PredictorReady"
    )
    assert predictor_ready["status"] == "False"
    predictor = final["status"]["components"]["predictor"]
    assert predictor["latestCreatedRevision"] == "tiny-predictor-00002"
    assert predictor["latestReadyRevision"] == "tiny-predictor-00001"
    assert predictor["traffic"][0]["revisionName"] == "tiny-predictor-00001"
    assert final["status"]["url"]  # the old revision still serves
    assert final["status"]["modelStatus"]["transitionStatus"] == "BlockedByFailedLoad"
    assert len(_revision_pods(core, "tiny", "tiny-predictor-00001")) == 1

    (pod,) = _revision_pods(core, "tiny", "tiny-predictor-00002")
    if failure == "insufficient-gpus":
        scheduled = next(c for c in pod.status.conditions if c.type == "PodScheduled")
        assert (scheduled.status, scheduled.reason) == ("False", pod_reason)
    else:
        waiting = pod.status.container_statuses[0].state.waiting
        assert waiting.reason == pod_reason
    if failure == "oom":
        last = pod.status.container_statuses[0].last_state.terminated
        assert (last.reason, last.exit_code) == ("OOMKilled", 137)
        assert final["status"]["modelStatus"]["lastFailureInfo"]["exitCode"] == 137
    warnings = core.list_namespaced_event(
        "llm", field_selector=f"involvedObject.name={pod.metadata.name},type=Warning"
    ).items
    assert {e.reason for e in warnings} >= event_reasons
    not_ready = core.list_namespaced_event(
        "llm", field_selector="involvedObject.name=tiny,type=Warning"
    ).items
    assert [e.reason for e in not_ready] == ["InferenceServiceNotReady"]
    assert not_ready[0].message.startswith("InferenceService [tiny] is no longer Ready because of:")

    # the next spec change rolls out normally again
    custom.patch_namespaced_custom_object(
        G, V, "llm", P, "tiny", {"spec": {"predictor": {"maxReplicas": 3}}}
    )
    final = _wait(custom, "tiny", lambda o: _settled(o) and _ready(o)["status"] == "True")[-1]
    assert final["status"]["components"]["predictor"]["latestReadyRevision"] == (
        "tiny-predictor-00003"
    )
    assert [
        p.metadata.labels["serving.knative.dev/revision"] for p in _revision_pods(core, "tiny")
    ] == ["tiny-predictor-00003"]


def test_kserve_schedules_on_gpu_nodes(
    fake_kserve: FakeKubernetes, custom: client.CustomObjectsApi, core: client.CoreV1Api
) -> None:
    fake_kserve.add_gpu_node("a100-1", product="NVIDIA-A100-SXM4-80GB", count=2)
    fake_kserve.add_gpu_node("l4-1", product="NVIDIA-L4", count=4)
    a100 = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    custom.create_namespaced_custom_object(
        G, V, "llm", P, _gpu_isvc("fits", gpus=2, nodeSelector=a100)
    )
    final = _wait(custom, "fits", _settled)[-1]
    assert _ready(final)["status"] == "True"
    assert _revision_pods(core, "fits")[0].spec.node_name == "a100-1"

    custom.create_namespaced_custom_object(
        G, V, "llm", P, _gpu_isvc("too-big", gpus=2, nodeSelector=a100)
    )
    final = _wait(custom, "too-big", _settled)[-1]
    assert _ready(final)["status"] == "False"
    (pod,) = _revision_pods(core, "too-big")
    (event,) = core.list_namespaced_event(
        "llm", field_selector=f"involvedObject.name={pod.metadata.name},reason=FailedScheduling"
    ).items
    assert event.message == (
        "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) didn't match Pod's "
        "node affinity/selector. preemption: 0/2 nodes are available: 1 No preemption victims "
        "found for incoming pod, 1 Preemption is not helpful for scheduling."
    )
    assert event.source.component == "default-scheduler"


def test_kserve_stop_annotation(
    fake_kserve: FakeKubernetes, custom: client.CustomObjectsApi, core: client.CoreV1Api
) -> None:
    custom.create_namespaced_custom_object(G, V, "llm", P, _gpu_isvc("tiny"))
    _wait(custom, "tiny", lambda o: _settled(o) and _ready(o)["status"] == "True")
    stop = {"metadata": {"annotations": {"serving.kserve.io/stop": "true"}}}
    custom.patch_namespaced_custom_object(G, V, "llm", P, "tiny", stop)
    final = _wait(custom, "tiny", lambda o: _ready(o)["status"] == "False")[-1]
    conditions = {c["type"]: c for c in final["status"]["conditions"]}
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("False", "Stopped")
    assert conditions["Stopped"]["status"] == "True"
    assert "url" not in final["status"]
    assert _revision_pods(core, "tiny") == []

    start = {"metadata": {"annotations": {"serving.kserve.io/stop": None}}}
    custom.patch_namespaced_custom_object(G, V, "llm", P, "tiny", start)
    final = _wait(custom, "tiny", lambda o: _settled(o) and _ready(o)["status"] == "True")[-1]
    assert final["status"]["components"]["predictor"]["latestReadyRevision"] == (
        "tiny-predictor-00002"
    )
    assert len(_revision_pods(core, "tiny")) == 1


def test_kserve_paused_rollout_stays_in_progress(
    fake_kserve: FakeKubernetes, custom: client.CustomObjectsApi
) -> None:
    fake_kserve.kserve.paused = True
    custom.create_namespaced_custom_object(G, V, "llm", P, _gpu_isvc("tiny"))
    assert not fake_kserve.kserve.settle(timeout=0.3)
    got = custom.get_namespaced_custom_object(G, V, "llm", P, "tiny")
    assert _ready(got)["status"] == "Unknown"
    assert _ready(got)["reason"] == "RevisionMissing"
    fake_kserve.kserve.paused = False
    assert fake_kserve.kserve.settle()
    assert _ready(custom.get_namespaced_custom_object(G, V, "llm", P, "tiny"))["status"] == "True"


def test_an_apply_that_creates_needs_create(
    fake_k8s: FakeKubernetes, custom: client.CustomObjectsApi
) -> None:
    fake_k8s.deny("create", "inferenceservices", "llm")
    with pytest.raises(ApiException) as refused:
        _apply(custom, _isvc("tiny"))
    assert refused.value.status == 403
    assert "cannot create resource" in _status(refused)["message"]
    assert fake_k8s.verbs_used() == {(G, P, "patch"), (G, P, "create")}


def _predictor(custom: client.CustomObjectsApi, name: str) -> dict[str, Any]:
    return custom.get_namespaced_custom_object(G, V, "llm", P, name)["status"]["components"][
        "predictor"
    ]


def test_kserve_canary_splits_traffic_as_kserve_reports_it(
    fake_kserve: FakeKubernetes, custom: client.CustomObjectsApi, core: client.CoreV1Api
) -> None:
    custom.create_namespaced_custom_object(G, V, "llm", P, _gpu_isvc("tiny"))
    _wait(custom, "tiny", _settled)
    # a new model with canaryTrafficPercent: a second revision beside the first
    custom.patch_namespaced_custom_object(G, V, "llm", P, "tiny", {"spec": {"predictor": {
        "canaryTrafficPercent": 10, "model": {"storageUri": "hf://org/other"}}}})  # fmt: skip
    _wait(custom, "tiny", lambda o: _predictor(custom, "tiny").get("latestReadyRevision")
          == "tiny-predictor-00002")  # fmt: skip
    predictor = _predictor(custom, "tiny")
    assert [(t["revisionName"], t["percent"], t["tag"], t["latestRevision"])
            for t in predictor["traffic"]] == [
        ("tiny-predictor-00002", 10, "latest", True),
        ("tiny-predictor-00001", 90, "prev", False),
    ]  # fmt: skip
    assert all("url" not in t for t in predictor["traffic"])  # no tag routing asked for
    assert predictor["latestRolledoutRevision"] == "tiny-predictor-00001"
    assert _revision_pods(core, "tiny", "tiny-predictor-00001")  # both serve
    assert _revision_pods(core, "tiny", "tiny-predictor-00002")

    # only the percentage changes: no new revision, the split moves
    custom.patch_namespaced_custom_object(
        G, V, "llm", P, "tiny", {"spec": {"predictor": {"canaryTrafficPercent": 0}}}
    )
    assert fake_kserve.kserve.settle()
    predictor = _predictor(custom, "tiny")
    assert predictor["latestCreatedRevision"] == "tiny-predictor-00002"
    assert [(t["revisionName"], t["percent"]) for t in predictor["traffic"]] == [
        ("tiny-predictor-00002", 0),
        ("tiny-predictor-00001", 100),
    ]
    # removing it promotes the canary; the previous revision's pods go
    custom.patch_namespaced_custom_object(
        G, V, "llm", P, "tiny", {"spec": {"predictor": {"canaryTrafficPercent": None}}}
    )
    assert fake_kserve.kserve.settle()
    predictor = _predictor(custom, "tiny")
    assert predictor["traffic"] == [
        {"latestRevision": True, "percent": 100, "revisionName": "tiny-predictor-00002"}
    ]
    assert predictor["latestRolledoutRevision"] == "tiny-predictor-00002"
    assert _revision_pods(core, "tiny", "tiny-predictor-00001") == []
