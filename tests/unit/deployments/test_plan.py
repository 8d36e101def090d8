"""Planning and previewing deployments against the fake Hub and the fake cluster, on both
databases (installed weights are database records)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from modelarium.core.app import Core
from modelarium.core.clients.kubernetes import KubernetesUnreachableError
from modelarium.core.deployments import DeployRequest
from modelarium.core.errors import UsageError, ValidationError
from modelarium.core.fit import estimate, get_gpu
from tests.fakes.hf_hub import FakeHub
from tests.fakes.kubernetes import KSERVE, FakeKubernetes
from tests.unit.deployments.conftest import A100, L4, install
from tests.unit.discovery.hubdata import LLAMA_8B, LLAMA_70B, config

COMMIT = "c0ffee" + "0" * 34


def _args(plan) -> list[str]:
    return plan.manifest["spec"]["predictor"]["model"]["args"]


def test_installed_weights_on_a_pvc(core: Core, hub: FakeHub) -> None:
    install(core, LLAMA_8B)
    hub.clear_requests()
    plan = core.deployments.plan(DeployRequest(LLAMA_8B))
    assert (plan.name, plan.namespace) == ("llama-3-1-8b-instruct", "dev")
    assert plan.source.verified and plan.source.commit == COMMIT
    model = plan.manifest["spec"]["predictor"]["model"]
    assert model["storageUri"] == (
        f"pvc://models-venus/hub/models--meta-llama--Llama-3.1-8B-Instruct/snapshots/{COMMIT}"
    )
    expected = estimate(config("llama-3.1-8b-instruct"), get_gpu("A100-80GB").with_count(8))
    assert plan.gpus == expected.tensor_parallel_size == 1
    assert _args(plan) == [
        f"--max-model-len={expected.recommended_max_model_len}",
        "--gpu-memory-utilization=0.9",
    ]
    assert model["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert plan.manifest["spec"]["predictor"]["nodeSelector"] == {"nvidia.com/gpu.product": A100}
    assert plan.manifest["metadata"]["annotations"]["modelarium.io/commit"] == COMMIT
    assert plan.warnings == ()
    assert hub.requests == []  # config.json came from the installed snapshot, offline
    params = plan.params()
    assert json.loads(json.dumps(params)) == params
    assert plan.target == "deployment:dev/llama-3-1-8b-instruct"


def test_not_installed_deploys_from_the_hub_pinned(core: Core, hub: FakeHub) -> None:
    sha = hub.repo(LLAMA_70B).resolve("main").sha
    plan = core.deployments.plan(DeployRequest(LLAMA_70B, name="big"))
    model = plan.manifest["spec"]["predictor"]["model"]
    assert model["storageUri"] == f"hf://{LLAMA_70B}:{sha}"
    assert not plan.source.verified
    assert any("not verified those bytes" in w for w in plan.warnings)
    expected = estimate(
        config("llama-3.1-70b-instruct"),
        get_gpu("A100-80GB").with_count(8),
        safetensors={"parameters": {"BF16": 70_553_706_496}, "total": 70_553_706_496},
    )
    assert plan.gpus == expected.tensor_parallel_size > 1
    assert f"--tensor-parallel-size={plan.gpus}" in _args(plan)
    assert model["resources"]["limits"] == {"nvidia.com/gpu": str(plan.gpus)}


def test_installed_without_a_pvc_warns_and_uses_the_hub(core: Core) -> None:
    install(core, LLAMA_8B, location="scratch")
    plan = core.deployments.plan(DeployRequest(LLAMA_8B))
    assert plan.manifest["spec"]["predictor"]["model"]["storageUri"] == (
        f"hf://{LLAMA_8B}:{COMMIT}"
    )
    assert any("names no PersistentVolumeClaim" in w for w in plan.warnings)
    install(core, LLAMA_8B, location="venus")  # the same commit on the PVC wins
    assert core.deployments.plan(DeployRequest(LLAMA_8B)).source.verified


def test_flags_and_namespace_policy(core: Core) -> None:
    install(core, LLAMA_8B)
    plan = core.deployments.plan(
        DeployRequest(
            LLAMA_8B,
            name="chat",
            namespace="prod",
            gpu="L4",
            context="8k",
            replicas="1..2",
            sets=("max-num-seqs=32", "enable-prefix-caching"),
        )
    )
    predictor = plan.manifest["spec"]["predictor"]
    assert predictor["nodeSelector"] == {"nvidia.com/gpu.product": L4}
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 2)
    assert predictor["serviceAccountName"] == "vllm"
    assert predictor["model"]["runtime"] == "kserve-vllm"
    assert plan.manifest["metadata"]["labels"] == {
        "team": "ml",
        "app.kubernetes.io/managed-by": "modelarium",
    }
    assert _args(plan) == [
        "--max-model-len=8192",
        "--gpu-memory-utilization=0.9",
        "--max-num-seqs=32",
        "--enable-prefix-caching",
    ]
    assert plan.policy.approvals == 2
    assert plan.policy.approval_reason == "namespace prod needs 2 admins"

    two = core.deployments.plan(DeployRequest(LLAMA_8B, gpus=2))
    assert two.gpus == 2
    assert "--tensor-parallel-size=2" in _args(two)
    fp8 = core.deployments.plan(DeployRequest(LLAMA_8B, sets=("kv-cache-dtype=fp8",)))
    assert "--kv-cache-dtype=fp8" in _args(fp8)
    same = core.deployments.plan(DeployRequest(LLAMA_8B, sets=("max-model-len=16384",)))
    assert "--max-model-len=16384" in _args(same)


@pytest.mark.parametrize(
    ("request_", "error", "message"),
    [
        (DeployRequest(LLAMA_8B, name="Bad_Name"), UsageError, "is not a valid deployment name"),
        (
            DeployRequest(LLAMA_8B, namespace="staging"),
            UsageError,
            "namespace 'staging' is not allowed for deployments; allowed: dev, prod",
        ),
        (
            DeployRequest(LLAMA_8B, gpus=16),
            ValidationError,
            "--gpus 16 is more than any node has: the widest A100-80GB node has 8",
        ),
        (
            DeployRequest(LLAMA_70B, gpu="L4", gpus=1),
            ValidationError,
            "fits none of the GPU types here (1× L4)",
        ),
        (
            DeployRequest(LLAMA_8B, gpu="H100"),
            ValidationError,
            "no node in the cluster has H100 GPUs; GPU types here: A100-80GB, L4",
        ),
        (
            DeployRequest(LLAMA_8B, gpus=4, sets=("tensor-parallel-size=2",)),
            UsageError,
            "--gpus 4 and --set tensor-parallel-size=2 disagree",
        ),
        (DeployRequest(LLAMA_8B, gpus=3), UsageError, "vLLM cannot split this model over 3"),
        (DeployRequest(LLAMA_8B, replicas="many"), UsageError, "--replicas expects MIN"),
        (DeployRequest("not a model"), UsageError, "not a model id"),
    ],
)
def test_bad_input_is_one_line(
    core: Core, request_: DeployRequest, error: type[Exception], message: str
) -> None:
    install(core, LLAMA_8B)
    with pytest.raises(error) as exc:
        core.deployments.plan(request_)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_deprecated_models_are_refused(core: Core) -> None:
    install(core, LLAMA_8B)
    core.deployments.deprecation = lambda repo, commit: (
        "superseded by Llama-3.3" if repo == LLAMA_8B else None
    )
    with pytest.raises(ValidationError) as exc:
        core.deployments.plan(DeployRequest(LLAMA_8B))
    assert str(exc.value) == f"{LLAMA_8B}@{COMMIT[:12]} is deprecated: superseded by Llama-3.3"


def test_preview_diff_and_dry_run(core: Core, cluster: FakeKubernetes) -> None:
    install(core, LLAMA_8B)
    plan = core.deployments.plan(DeployRequest(LLAMA_8B, name="chat", context="8k"))
    preview = core.deployments.preview(plan)
    assert preview.live is None
    assert preview.dry_run.ok
    assert preview.diff.startswith("--- live\n+++ desired\n")
    assert all(line.startswith("+ ") for line in preview.changes)
    assert cluster.custom_objects() == []  # a dry run stores nothing

    client = core.deployments.client()
    client.apply_inference_service(plan.manifest)
    longer = core.deployments.plan(DeployRequest(LLAMA_8B, name="chat", context="16k"))
    preview = core.deployments.preview(longer)
    assert preview.dry_run.ok
    assert preview.changes == [
        '~ spec.predictor.model.args: ["--max-model-len=8192", "--gpu-memory-utilization=0.9"]'
        ' -> ["--max-model-len=16384", "--gpu-memory-utilization=0.9"]'
    ]

    # someone edits it with kubectl: the dry run names them, and --force takes it over
    req = urllib.request.Request(
        f"{cluster.url}/apis/{KSERVE.api_version}/namespaces/dev/{KSERVE.plural}/chat"
        "?fieldManager=kubectl-edit",
        data=json.dumps({"spec": {"predictor": {"model": {"args": ["--x"]}}}}).encode(),
        method="PATCH",
        headers={
            "Authorization": f"Bearer {cluster.token}",
            "Content-Type": "application/merge-patch+json",
        },
    )
    urllib.request.urlopen(req).close()
    preview = core.deployments.preview(longer)
    assert not preview.dry_run.ok
    assert [(c.manager, c.field) for c in preview.dry_run.conflicts] == [
        ('"kubectl-edit" using serving.kserve.io/v1beta1', ".spec.predictor.model.args")
    ]
    forced = core.deployments.plan(DeployRequest(LLAMA_8B, name="chat", context="16k", force=True))
    assert core.deployments.preview(forced).dry_run.ok

    cluster.add_admission_webhook(lambda op, obj, old: "GPU quota for dev exceeded")
    verdict = core.deployments.preview(forced).dry_run
    assert not verdict.ok
    assert verdict.messages == (
        'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the '
        "request: GPU quota for dev exceeded",
    )
    client.close()


def test_preview_refuses_to_take_over_an_unmanaged_service(
    core: Core, cluster: FakeKubernetes
) -> None:
    install(core, LLAMA_8B)
    cluster.put_custom_object(
        "dev",
        {
            "apiVersion": KSERVE.api_version,
            "kind": KSERVE.kind,
            "metadata": {"name": "chat"},
            "spec": {"predictor": {}},
        },
    )
    plan = core.deployments.plan(DeployRequest(LLAMA_8B, name="chat"))
    verdict = core.deployments.preview(plan).dry_run
    assert not verdict.ok
    assert verdict.messages == (
        "dev/chat exists and is not managed by Modelarium; choose another --name, or --force "
        "to take it over",
    )


def test_preview_with_the_cluster_down_is_one_line(core: Core, cluster: FakeKubernetes) -> None:
    install(core, LLAMA_8B)
    plan = core.deployments.plan(DeployRequest(LLAMA_8B))
    cluster.stop()
    with pytest.raises(KubernetesUnreachableError) as exc:
        core.deployments.preview(plan)
    assert str(exc.value).startswith("Kubernetes is unreachable (")


def test_a_model_the_catalog_deprecates_is_refused(core: Core) -> None:
    from modelarium.core.db.models.catalog import CatalogEntryRow
    from tests.unit.catalog.helpers import entry_json

    install(core, LLAMA_8B)
    data = entry_json(
        "llama-3.1-8b",
        huggingface={"repo": LLAMA_8B, "commit": COMMIT},
        status="deprecated",
        status_reason="superseded by Llama 3.3",
    )
    with core.db.transaction() as session:
        session.add(
            CatalogEntryRow(
                entry_id="llama-3.1-8b", path="models/llama-3.1-8b.json", blob_sha="0" * 40,
                data=data, status="deprecated", repo_id=LLAMA_8B, commit=COMMIT,
                git_commit="1" * 40,
            )
        )  # fmt: skip
    with pytest.raises(ValidationError) as exc:
        core.deployments.plan(DeployRequest(LLAMA_8B))
    assert str(exc.value) == (
        f"{LLAMA_8B}@{COMMIT[:12]} is deprecated: catalog entry llama-3.1-8b is deprecated: "
        "superseded by Llama 3.3"
    )
