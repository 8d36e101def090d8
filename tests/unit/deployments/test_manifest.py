"""Rendering an InferenceService, engine arguments, names and the live/desired diff (pure)."""

from __future__ import annotations

import pytest

from modelarium.core.deployments import check_name, default_name, unified

# `changes` from its module: the package's attribute of that name becomes the change-kinds
# submodule once anything imports it (every command module does), whatever the test order.
from modelarium.core.deployments.diff import changes
from modelarium.core.deployments.manifest import (
    ModelSource,
    Replicas,
    engine_args,
    hub_uri,
    parse_replicas,
    parse_sets,
    pvc_uri,
    render,
    to_yaml,
    with_change,
)
from modelarium.core.deployments.policy import NamespacePolicy
from modelarium.core.errors import UsageError

COMMIT = "a" * 40
SOURCE = ModelSource(
    "meta-llama/Llama-3.1-8B-Instruct",
    "main",
    COMMIT,
    pvc_uri("models-venus", "hub", "models--meta-llama--Llama-3.1-8B-Instruct", COMMIT),
    True,
    "venus",
)


@pytest.mark.parametrize("name", ["llama", "llama-3-8b", "a", "a" * 63])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["Llama", "3llama", "llama-", "llama_3", "llama.3", "a" * 64, ""])
def test_invalid_names_say_why_in_one_line(name: str) -> None:
    with pytest.raises(UsageError) as exc:
        check_name(name)
    assert "is not a valid deployment name" in str(exc.value)
    assert "DNS-1035" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_default_names() -> None:
    assert default_name("meta-llama/Llama-3.1-8B-Instruct") == "llama-3-1-8b-instruct"
    assert default_name("org/7B_model") == "m-7b-model"
    long = default_name("org/" + "x" * 80)
    assert len(long) == 45
    assert check_name(long)


def test_replicas() -> None:
    assert parse_replicas(None) == Replicas(1, 1)
    assert parse_replicas("2") == Replicas(2, 2)
    assert parse_replicas("0..3") == Replicas(0, 3)
    assert str(Replicas(1, 3)) == "1..3"
    for bad in ("x", "3..1", "0", "1..", "-1"):
        with pytest.raises(UsageError):
            parse_replicas(bad)


def test_sets_and_engine_args() -> None:
    sets = parse_sets(["max_num_seqs=64", "--enforce-eager", "trust-remote-code=false"])
    assert sets == {"max-num-seqs": "64", "enforce-eager": None, "trust-remote-code": "false"}
    with pytest.raises(UsageError):
        parse_sets(["=3"])
    with pytest.raises(UsageError):
        parse_sets(["bad key=1"])
    fit = [
        "--tensor-parallel-size",
        "2",
        "--max-model-len",
        "8192",
        "--gpu-memory-utilization",
        "0.9",
        "--trust-remote-code",
    ]
    arch = {"trust_remote_code": True, "hf_overrides": {"architectures": ["X"]}}
    args = engine_args(
        fit, arch, {"max-num-seqs": "64", "enforce-eager": None, "max-model-len": "999"}
    )
    assert args == [
        "--tensor-parallel-size=2",
        "--max-model-len=8192",  # the fit's, which was sized with the asked-for value
        "--gpu-memory-utilization=0.9",
        "--trust-remote-code",  # once, although both the fit and the architecture want it
        '--hf-overrides={"architectures":["X"]}',
        "--max-num-seqs=64",
        "--enforce-eager",
    ]
    assert "--trust-remote-code" not in engine_args(fit, arch, {"trust-remote-code": "false"})


def test_render_shape() -> None:
    policy = NamespacePolicy(
        "prod",
        runtime="kserve-vllm",
        service_account="vllm",
        labels={"team": "ml"},
        approvals=2,
        configured=True,
    )
    obj = render(
        name="llama",
        namespace="prod",
        source=SOURCE,
        args=["--max-model-len=8192"],
        gpus=2,
        product="NVIDIA-A100-SXM4-80GB",
        replicas=Replicas(1, 3),
        policy=policy,
    )
    assert obj["apiVersion"] == "serving.kserve.io/v1beta1"
    assert obj["kind"] == "InferenceService"
    meta = obj["metadata"]
    assert (meta["name"], meta["namespace"]) == ("llama", "prod")
    assert meta["labels"] == {"team": "ml", "app.kubernetes.io/managed-by": "modelarium"}
    assert meta["annotations"] == {
        "modelarium.io/model": "meta-llama/Llama-3.1-8B-Instruct",
        "modelarium.io/revision": "main",
        "modelarium.io/commit": COMMIT,
        "modelarium.io/location": "venus",
    }
    predictor = obj["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 3)
    assert predictor["serviceAccountName"] == "vllm"
    assert predictor["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    model = predictor["model"]
    assert model["modelFormat"] == {"name": "huggingface"}
    assert model["runtime"] == "kserve-vllm"
    assert model["storageUri"] == (
        f"pvc://models-venus/hub/models--meta-llama--Llama-3.1-8B-Instruct/snapshots/{COMMIT}"
    )
    assert model["resources"] == {
        "limits": {"nvidia.com/gpu": "2"},
        "requests": {"nvidia.com/gpu": "2"},
    }
    changed = with_change(obj, 42)
    assert changed["metadata"]["annotations"]["modelarium.io/change"] == "42"
    assert "modelarium.io/change" not in obj["metadata"]["annotations"]
    assert to_yaml(obj).startswith(
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
    )
    assert hub_uri("org/name", COMMIT) == f"hf://org/name:{COMMIT}"
    assert pvc_uri("c", "", "models--o--n", COMMIT) == f"pvc://c/models--o--n/snapshots/{COMMIT}"


def test_diff_ignores_what_the_server_fills_in() -> None:
    policy = NamespacePolicy("dev", approvals=0)
    desired = render(
        name="llama",
        namespace="dev",
        source=SOURCE,
        args=["--max-model-len=8192"],
        gpus=1,
        product=None,
        replicas=Replicas(),
        policy=policy,
    )
    live = with_change(desired, 7)
    live["metadata"].update(
        uid="u",
        resourceVersion="12",
        generation=3,
        creationTimestamp="2024-01-01T00:00:00Z",
        managedFields=[{"manager": "modelarium"}],
    )
    live["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    assert unified(live, desired) == ""
    assert changes(live, desired) == []

    live["spec"]["predictor"]["model"]["args"] = ["--max-model-len=4096"]
    live["spec"]["predictor"]["minReplicas"] = 2
    live["metadata"]["labels"]["edited-by"] = "kubectl"
    text = unified(live, desired)
    assert text.startswith("--- live\n+++ desired\n")
    assert "-      - --max-model-len=4096\n+      - --max-model-len=8192\n" in text
    assert changes(live, desired) == [
        '- metadata.labels.edited-by: "kubectl"',
        "~ spec.predictor.minReplicas: 2 -> 1",
        '~ spec.predictor.model.args: ["--max-model-len=4096"] -> ["--max-model-len=8192"]',
    ]
    assert changes(None, desired)[0].startswith("+ apiVersion: ")
