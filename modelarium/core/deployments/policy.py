"""Per-namespace defaults and policy for deployments, from ``MODELARIUM_DEPLOY_NAMESPACES``.

With the setting unset, deployments may go to ``MODELARIUM_KUBE_NAMESPACE`` only, and every one
needs one approval from an admin other than the requester (the approval engine never lets a
requester approve their own change).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelarium.config.settings import DeployNamespace, Settings
from modelarium.core.errors import UsageError


@dataclass(frozen=True)
class NamespacePolicy:
    name: str
    runtime: str | None = None
    service_account: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    approvals: int = 1
    approver_role: str = "admin"
    configured: bool = False

    @property
    def approval_reason(self) -> str:
        """Why this namespace needs (or does not need) approvals, for the change card."""
        if not self.approvals:
            return f"namespace {self.name} needs no approval"
        whom = f"{self.approvals} {self.approver_role}{'s' if self.approvals > 1 else ''}"
        if not self.configured:
            return f"every deploy needs {whom} other than the requester (no namespace policy set)"
        return f"namespace {self.name} needs {whom}"


def allowed_namespaces(settings: Settings) -> list[str]:
    if settings.deploy_namespaces:
        return [ns.name for ns in settings.deploy_namespaces]
    return [settings.kube_namespace]


def namespace_policy(settings: Settings, namespace: str | None = None) -> NamespacePolicy:
    """The policy of ``namespace`` (default: the first allowed one); refuses others."""
    allowed = allowed_namespaces(settings)
    wanted = namespace or allowed[0]
    configured: DeployNamespace | None = next(
        (ns for ns in settings.deploy_namespaces if ns.name == wanted), None
    )
    if wanted not in allowed:
        raise UsageError(
            f"namespace {wanted!r} is not allowed for deployments; allowed: {', '.join(allowed)}"
        )
    if configured is None:
        return NamespacePolicy(wanted, runtime=settings.deploy_runtime)
    return NamespacePolicy(
        configured.name,
        runtime=configured.runtime or settings.deploy_runtime,
        service_account=configured.service_account,
        labels=dict(configured.labels),
        approvals=configured.approvals,
        approver_role=configured.approver_role,
        configured=True,
    )
