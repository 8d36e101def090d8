"""``core.endpoints``: the endpoint registry, its alert rule and its encrypted column."""

from __future__ import annotations

from typing import Any

from modelarium.core.alerts import AlertRule
from modelarium.core.endpoints.service import DOWN_RULE, EndpointService
from modelarium.core.kernel import Kernel
from modelarium.core.ports import Ports


def build(kernel: Kernel, ports: Ports) -> EndpointService:
    return EndpointService(
        kernel.db,
        kernel.clock,
        kernel.keyring,
        kernel.rbac,
        kernel.alerts,
        kernel.audit,
        kernel.settings,
    )


def register(kernel: Kernel, service: Any, ports: Ports) -> None:
    """The ``endpoint_down`` alert rule and the encrypted key column (for ``keys rotate``)."""
    from modelarium.core.db.models.endpoints import Endpoint

    kernel.alerts.register(
        AlertRule(
            name=DOWN_RULE,
            summary="Endpoint {endpoint} is down",
            op=">=",
            threshold=1.0,
            severity="warning",
            kind="endpoint",
        )
    )
    kernel.secret_columns.append(Endpoint.api_key_token)
