"""deploy/kubernetes: a Kustomize base and a dev overlay, and RBAC that grants exactly what the
code asks the API server for.

What is checked, plainly:
- always, structurally: every file a kustomization names exists and is valid YAML; the overlay's
  patches target objects the base defines and replace paths that exist; the RoleBindings'
  subjects are the service account the processes run as;
- always, against the fake API server: a deployment's whole life through the client (GPU
  inventory, preview with a dry run, apply, wait for Ready, pods and events, stop, delete, the
  per-namespace list) asks for exactly the (group, resource, verb) triples the RBAC rules grant;
- when ``kubectl`` is on the PATH: ``kubectl kustomize`` renders the base and the dev overlay,
  and the rendered objects are checked (skipped, and said so, when it is not).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelarium.core.app import Core
from tests.fakes.kubernetes import FakeKubernetes
from tests.unit.deployments.conftest import install, run_jobs
from tests.unit.discovery.hubdata import LLAMA_8B

ROOT = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes"
BASE, DEV = ROOT / "base", ROOT / "overlays" / "dev"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _base_objects() -> list[dict[str, Any]]:
    kustomization = _docs(BASE / "kustomization.yaml")[0]
    return [obj for name in kustomization["resources"] for obj in _docs(BASE / name)]


def _rules() -> dict[tuple[str, str], set[str]]:
    """(group, resource) -> verbs, over every ClusterRole the base binds."""
    out: dict[tuple[str, str], set[str]] = {}
    for obj in _base_objects():
        if obj["kind"] != "ClusterRole":
            continue
        for rule in obj["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def test_kustomizations_are_complete() -> None:
    for directory in (BASE, DEV):
        kustomization = _docs(directory / "kustomization.yaml")[0]
        assert kustomization["kind"] == "Kustomization"
        for name in [*kustomization.get("resources", []), *kustomization.get("transformers", [])]:
            target = (directory / name).resolve()
            assert target.exists(), f"{directory.name}: {name} is missing"
            if target.is_file():
                assert _docs(target)
    objects = {(o["kind"], o["metadata"]["name"]): o for o in _base_objects()}
    dev = _docs(DEV / "kustomization.yaml")[0]
    for patch in dev["patches"]:
        key = (patch["target"]["kind"], patch["target"]["name"])
        assert key in objects, f"the dev overlay patches {key}, which the base does not define"
        for op in yaml.safe_load(patch["patch"]):
            parts = op["path"].strip("/").split("/")
            node: Any = objects[key]
            for part in parts[:-1]:
                node = node[part]
            if op["op"] == "replace":
                assert parts[-1] in node, f"{key}: {op['path']} does not exist"
    accounts = {
        o["spec"]["template"]["spec"].get("serviceAccountName")
        for o in objects.values()
        if o["kind"] == "Deployment"
    }
    assert accounts == {"modelarium"}
    for obj in objects.values():
        if obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            assert [s["name"] for s in obj["subjects"]] == ["modelarium"]


def test_rbac_grants_exactly_the_verbs_a_deployment_uses(
    core: Core, runner, cluster: FakeKubernetes
) -> None:
    """A deployment's whole life through the commands and the daemon's jobs and reconcile."""
    install(core, LLAMA_8B)
    core.gpus.refresh()

    def run(text: str) -> None:
        reply = runner.execute(text, user="U_ADMIN", channel="C1")
        assert reply.ok, reply.text
        if reply.data.get("approval"):
            assert runner.execute(f"approve {reply.data['approval']}", user="U_ADMIN2").ok
        for job in run_jobs(core):
            assert job.status == "succeeded", job.error

    run(f"deploy {LLAMA_8B} --name chat --dry-run")
    run(f"deploy {LLAMA_8B} --name chat --context 8k")
    run(f"deploy {LLAMA_8B} --name chat --context 16k")
    run("deployments")
    run("deployment show chat")
    run("deployment diff chat")
    run("deployment stop chat")
    run("deployment start chat")
    run("deployment rollback chat")
    core.deployments.reconcile()
    run("deployment delete chat")
    used: dict[tuple[str, str], set[str]] = {}
    for group, resource, verb in cluster.verbs_used():
        used.setdefault((group, resource), set()).add(verb)
    assert used == _rules()


def _kustomize(directory: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: only the structural checks ran")
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def test_kubectl_kustomize_renders_the_base_and_the_dev_overlay() -> None:
    base = _kustomize(BASE)
    assert {o["kind"] for o in base} == {
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "RoleBinding",
        "ConfigMap",
        "Service",
        "Deployment",
    }
    dev = {(o["kind"], o["metadata"]["name"]): o for o in _kustomize(DEV)}
    binding = dev[("RoleBinding", "modelarium-deployer")]
    assert binding["metadata"]["namespace"] == "dev"
    account = dev[("ServiceAccount", "modelarium")]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": "modelarium",
            "namespace": account["metadata"]["namespace"],
        }
    ]
    inventory = dev[("ClusterRoleBinding", "modelarium-gpu-inventory")]
    assert inventory["subjects"][0]["namespace"] == account["metadata"]["namespace"]
    for key in (("Deployment", "modelarium-bot"), ("Deployment", "modelarium-daemon")):
        assert dev[key]["spec"]["replicas"] == 1
        assert dev[key]["metadata"]["namespace"] == "modelarium"
        assert dev[key]["spec"]["template"]["spec"]["containers"][0]["image"] == "modelarium:dev"
    data = dev[("ConfigMap", "modelarium")]["data"]
    assert data["MODELARIUM_DEPLOY_NAMESPACES"] == '[{"name": "dev", "approvals": 0}]'
    assert all(
        o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "modelarium" for o in dev.values()
    )
