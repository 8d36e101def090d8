"""Discovery on the Hugging Face Hub: search, model details, vLLM support and fit.

``core.hub`` is a :class:`HubService`; ``core.hub.architectures`` the current vLLM
architectures table; ``core.gpus`` (``core/gpus``) the GPU inventory it sizes against.
"""

from __future__ import annotations

from modelarium.core.hub.compat import FIT_RULE, CompatReport, check_installed
from modelarium.core.hub.models import HubModel, ModelSummary, parse_repo_ref
from modelarium.core.hub.search import SearchAnswer, SearchQuery, SearchRow
from modelarium.core.hub.service import (
    FitReport,
    HubService,
    ModelReport,
    SizedGpu,
)

__all__ = [
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
]
