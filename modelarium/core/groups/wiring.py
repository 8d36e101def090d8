"""``core.groups`` and what it registers: its change kinds and the guard's alert rule.

It needs, through ports, the endpoint registry (resolve ``<endpoint>`` of a member for eval,
its health for ``pick`` and readiness) and, for canary groups, deployments
(``deployment_canary``: a challenger is a new revision of the champion's InferenceService).
"""

from __future__ import annotations

from modelarium.core.alerts import AlertRule
from modelarium.core.groups.canary import CanaryChange
from modelarium.core.groups.changes import KINDS
from modelarium.core.groups.guard import BREACH_RULE
from modelarium.core.groups.service import GroupService
from modelarium.core.kernel import Kernel
from modelarium.core.ports import Ports


def build(kernel: Kernel, ports: Ports) -> GroupService:
    return GroupService(kernel, ports)


def register(kernel: Kernel, service: GroupService, ports: Ports) -> None:
    from modelarium.core.db.models.groups import ModelGroup

    kernel.secret_columns.append(ModelGroup.token)
    for kind in (*KINDS, CanaryChange):
        kernel.changes.register(kind(kernel, service))
    kernel.alerts.register(
        AlertRule(
            name=BREACH_RULE,
            summary="Group {group}: challenger {member} breached a promotion rule; its traffic "
            "was cut to 0%",
            op=">=",
            threshold=1.0,
            severity="warning",
            kind="groups",
        )
    )
