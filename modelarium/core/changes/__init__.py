"""The change engine: every risky change planned, approved by policy, run as a job, revertible."""

from modelarium.core.changes.kinds import (
    ApprovalPolicy,
    ChangeContext,
    ChangeKind,
    ChangeView,
    Failed,
    Inverse,
    NotRevertible,
    Plan,
    Retryable,
)
from modelarium.core.changes.service import ChangeService, Proposal

__all__ = [
    "ApprovalPolicy",
    "ChangeContext",
    "ChangeKind",
    "ChangeService",
    "ChangeView",
    "Failed",
    "Inverse",
    "NotRevertible",
    "Plan",
    "Proposal",
    "Retryable",
]
