"""The endpoint registry: who owns which endpoint, how healthy it is, what it serves, and picks.

One façade over its parts: access (who may see and change what), registry, health checks,
routing (discovery and failover) and import/export.
"""

from __future__ import annotations

from modelarium.core.endpoints.health import Health
from modelarium.core.endpoints.registry import Registry
from modelarium.core.endpoints.routing import Routing
from modelarium.core.endpoints.transfer import ImportExport
from modelarium.core.endpoints.views import (
    DOWN_RULE,
    CheckOutcome,
    CheckRecord,
    CycleReport,
    EndpointView,
    PickCandidate,
    PickResult,
    ResolvedEndpoint,
    model_key,
)


class EndpointService(Registry, Health, Routing, ImportExport):
    """Endpoints: registry, health, routing and import/export, for one core."""


__all__ = [
    "DOWN_RULE",
    "CheckOutcome",
    "CheckRecord",
    "CycleReport",
    "EndpointService",
    "EndpointView",
    "PickCandidate",
    "PickResult",
    "ResolvedEndpoint",
    "model_key",
]
