"""The approvals engine every risky action goes through."""

from modelarium.core.approvals.service import (
    ApprovalAction,
    ApprovalOutcome,
    ApprovalService,
    ApprovalView,
    DecisionResult,
    digest_of,
    render_card,
)

__all__ = [
    "ApprovalAction",
    "ApprovalOutcome",
    "ApprovalService",
    "ApprovalView",
    "DecisionResult",
    "digest_of",
    "render_card",
]
