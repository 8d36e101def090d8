"""``core.deployments`` and what it registers: its change kinds and alert rules.

It needs, through ports: the GPU inventory (what to size against and where to schedule), the
installed weights (verified snapshots on PVCs), the Hub (a model pinned to a commit, its
config.json) and vLLM's architecture catalog; it provides ``weights_in_use`` so that the weights
inventory can say "deployed by" and purges keep what serves, and ``deployment_canary`` so that a
canary model group's challenger is a new revision of the same InferenceService.
"""

from __future__ import annotations

from modelarium.core.deployments.canary import DeploymentCanary
from modelarium.core.deployments.changes import (
    ApplyChange,
    DeleteChange,
    RollbackChange,
    StartChange,
    StopChange,
)
from modelarium.core.deployments.reconcile import RULES
from modelarium.core.deployments.service import DeploymentService
from modelarium.core.kernel import Kernel
from modelarium.core.ports import Ports


def build(kernel: Kernel, ports: Ports) -> DeploymentService:
    service = DeploymentService(kernel, ports)
    service.canary = DeploymentCanary(kernel, service)
    return service


def register(kernel: Kernel, service: DeploymentService, ports: Ports) -> None:
    for kind in (ApplyChange, RollbackChange, StopChange, StartChange, DeleteChange):
        kernel.changes.register(kind(kernel, service))
    for rule in RULES:
        kernel.alerts.register(rule)
