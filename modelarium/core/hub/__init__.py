"""Discovery on the Hugging Face Hub: search, model details, vLLM support and fit.

``core.hub`` is a :class:`HubService`; ``core.hub.architectures`` the current vLLM
architectures table; ``core.gpus`` (``core/gpus``) the GPU inventory it sizes against.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelarium.core.hub.compat import FIT_RULE, RULE, CompatReport, check_installed
from modelarium.core.hub.models import HubModel, ModelSummary, parse_repo_ref
from modelarium.core.hub.search import SearchAnswer, SearchQuery, SearchRow
from modelarium.core.hub.service import (
    CATALOG_NOTE,
    FitReport,
    HubService,
    ModelReport,
    SizedGpu,
)

if TYPE_CHECKING:
    from modelarium.core.app import Core


def register(core: Core) -> None:
    """The GPU compatibility alert rule (the bot renders its alerts, the daemon raises them)."""
    core.alerts.register(RULE)


__all__ = [
    "CATALOG_NOTE",
    "FIT_RULE",
    "CompatReport",
    "FitReport",
    "HubModel",
    "HubService",
    "ModelReport",
    "ModelSummary",
    "SearchAnswer",
    "SearchQuery",
    "SearchRow",
    "SizedGpu",
    "check_installed",
    "parse_repo_ref",
    "register",
]
