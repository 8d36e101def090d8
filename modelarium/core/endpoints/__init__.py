"""Endpoint registry: Ollama and OpenAI-compatible endpoints, health, discovery and failover.

``core.endpoints`` is an :class:`EndpointService`; other capabilities use
``core.endpoints.resolve(name, user)`` to call an endpoint and ``core.endpoints.pick(model)``
to choose one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelarium.core.alerts import AlertRule
from modelarium.core.endpoints.service import (
    DOWN_RULE,
    CheckOutcome,
    CheckRecord,
    CycleReport,
    EndpointService,
    EndpointView,
    PickCandidate,
    PickResult,
    ResolvedEndpoint,
    model_key,
)
from modelarium.core.endpoints.validation import SHARED_WITH, TYPES

if TYPE_CHECKING:
    from modelarium.core.app import Core


def register(core: Core) -> None:
    """The ``endpoint_down`` alert rule and the encrypted key column (for ``keys rotate``)."""
    from modelarium.core.db.models.endpoints import Endpoint

    core.alerts.register(
        AlertRule(
            name=DOWN_RULE,
            summary="Endpoint {endpoint} is down",
            op=">=",
            threshold=1.0,
            severity="warning",
            kind="endpoint",
        )
    )
    core.secret_columns.append(Endpoint.api_key_token)


__all__ = [
    "DOWN_RULE",
    "SHARED_WITH",
    "TYPES",
    "CheckOutcome",
    "CheckRecord",
    "CycleReport",
    "EndpointService",
    "EndpointView",
    "PickCandidate",
    "PickResult",
    "ResolvedEndpoint",
    "model_key",
    "register",
]
