"""Deployments: serve installed models on Kubernetes with KServe (vLLM, Hugging Face runtime)."""

from modelarium.core.deployments.diff import changes, comparable, unified
from modelarium.core.deployments.manifest import (
    ANN_CHANGE,
    ANN_COMMIT,
    ANN_LOCATION,
    ANN_MODEL,
    ANN_REVISION,
    MANAGED_SELECTOR,
    STOP_ANNOTATION,
    ModelSource,
    Replicas,
    is_managed,
    render,
    to_yaml,
    with_change,
)
from modelarium.core.deployments.names import check_name, default_name
from modelarium.core.deployments.policy import NamespacePolicy, allowed_namespaces, namespace_policy
from modelarium.core.deployments.service import (
    DeploymentService,
    DeployPlan,
    DeployRequest,
    DryRun,
    Preview,
)

__all__ = [
    "ANN_CHANGE",
    "ANN_COMMIT",
    "ANN_LOCATION",
    "ANN_MODEL",
    "ANN_REVISION",
    "MANAGED_SELECTOR",
    "STOP_ANNOTATION",
    "DeployPlan",
    "DeployRequest",
    "DeploymentService",
    "DryRun",
    "ModelSource",
    "NamespacePolicy",
    "Preview",
    "Replicas",
    "allowed_namespaces",
    "changes",
    "check_name",
    "comparable",
    "default_name",
    "is_managed",
    "namespace_policy",
    "render",
    "to_yaml",
    "unified",
    "with_change",
]
