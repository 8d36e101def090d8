"""Endpoint registry: Ollama and OpenAI-compatible endpoints, health, discovery and failover.

``core.endpoints`` is an :class:`EndpointService` (built in ``wiring.py``); other capabilities
reach it through the ``endpoint_resolver`` port, never the service itself.
"""

from __future__ import annotations

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
