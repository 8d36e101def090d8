"""What a capability declares for each kind of risky change: plan, policy, stages, way back.

A kind is a small class. The engine (:mod:`modelarium.core.changes.service`) does everything
else the same way for every kind: records the change, binds an approval to its digest, runs the
stages as a durable job in the daemon's workers, keeps one living message and the history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from modelarium.core.errors import ModelariumError
from modelarium.core.jobs import JobContext, JobFailed, JobView
from modelarium.core.rbac import Role

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

ChangeContext = JobContext
"""What a stage gets: ``params`` (the change's params plus ``change_id``), durable ``state``,
``checkpoint()``, ``progress()``, ``check_cancelled()``, and ``record(*report, **facts)`` for
what history, revert and the final message need."""


class Retryable(JobFailed):
    """A transient failure: the job is retried with backoff, up to its attempt limit."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retry=True)


class Failed(JobFailed):
    """A failure trying again cannot fix: the change fails at once."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retry=False)


class NotRevertible(ModelariumError):
    """This change has no way back; the message says why (and what to do instead)."""


@dataclass(frozen=True)
class ApprovalPolicy:
    """Whether a planned change needs approval, why, and from whom."""

    needed: bool
    reasons: tuple[str, ...] = ()
    role: Role = Role.ADMIN
    count: int = 1

    @classmethod
    def none(cls, why: str = "") -> ApprovalPolicy:
        return cls(False, (why,) if why else ())

    @classmethod
    def required(cls, *reasons: str, role: Role = Role.ADMIN, count: int = 1) -> ApprovalPolicy:
        return cls(True, tuple(r for r in reasons if r), role, count)


@dataclass(frozen=True)
class Plan:
    """What a change will do, resolved before anyone decides on it.

    ``params`` are what the job runs and what the digest covers: put in everything the change
    touches (the commit, not the branch; the endpoint's URL and revision, not only its name), so
    an approval can never run something other than what the approver saw.
    """

    target: str
    summary: str
    params: dict[str, Any]
    approval: ApprovalPolicy
    diff: tuple[str, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "diff": list(self.diff),
            "facts": self.facts,
            "warnings": list(self.warnings),
            "approval_needed": self.approval.needed,
            "reasons": list(self.approval.reasons),
            "approver_role": str(self.approval.role),
            "approvals_required": self.approval.count,
        }


@dataclass(frozen=True)
class Inverse:
    """The change that undoes another: a kind and its params, proposed like any change."""

    kind: str
    params: dict[str, Any]


@dataclass(frozen=True)
class ChangeView:
    id: int
    kind: str
    target: str
    summary: str
    params: dict[str, Any]
    digest: str
    plan: dict[str, Any]
    status: str
    approval_id: int | None
    job_id: int | None
    supersedes_id: int | None
    reverts_id: int | None
    reverted_by_id: int | None
    requested_by: str
    channel: str | None
    outcome: str | None
    result: dict[str, Any]
    created_at: datetime
    decided_at: datetime | None
    finished_at: datetime | None

    @property
    def short_digest(self) -> str:
        return self.digest[:12]

    @property
    def done(self) -> bool:
        return self.status in FINAL

    @property
    def diff(self) -> list[str]:
        return list(self.plan.get("diff") or [])

    @property
    def warnings(self) -> list[str]:
        return list(self.plan.get("warnings") or [])

    @property
    def reasons(self) -> list[str]:
        return list(self.plan.get("reasons") or [])

    @property
    def report(self) -> list[str]:
        """Lines the job left for the final message (what was removed, the URL...)."""
        return [str(line) for line in self.result.get("report") or []]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "summary": self.summary,
            "params": self.params,
            "digest": self.digest,
            "status": self.status,
            "approval": self.approval_id,
            "job": self.job_id,
            "supersedes": self.supersedes_id,
            "reverts": self.reverts_id,
            "reverted_by": self.reverted_by_id,
            "requested_by": self.requested_by,
            "outcome": self.outcome,
            "result": self.result,
            "created_at": self.created_at.isoformat(),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            **self.plan,
        }


FINAL = frozenset({"succeeded", "failed", "rejected", "expired", "cancelled"})
ACTIVE = frozenset({"pending_approval", "queued", "running"})


class ChangeKind:
    """Subclass per kind of change; register an instance with ``ChangeService.register``."""

    name: ClassVar[str]
    """Unique, dotted: ``<capability>.<verb>`` (also the name of its job kind)."""
    stages: ClassVar[tuple[str, ...]] = ("apply",)
    role: ClassVar[Role] = Role.OPERATOR
    """The least role that may propose it (also checked for reverts, which skip the command)."""
    inline: ClassVar[bool] = False
    """Instant, database-only changes: when no approval is needed the proposer's process runs
    the job at once (still a job, still in history). Approved work always goes to the daemon."""
    exclusive: ClassVar[bool] = True
    """At most one unfinished change per target: a second proposal is refused, naming the first."""

    def plan(self, params: dict[str, Any], user: str) -> Plan:
        """Resolve and validate; raise one-line errors on bad input. Changes nothing."""
        raise NotImplementedError

    def start(self, session: Session, change: ChangeView, job: JobView) -> dict[str, Any]:
        """In the transaction that enqueues the job: reserve what the job needs (a record linked
        to the job). Returns extra job params."""
        return {}

    def check(self, params: dict[str, Any]) -> None:
        """In the worker, before the first stage: raise ConflictError when the world moved so
        that the approved params no longer describe what would be touched."""

    def run_stage(self, ctx: ChangeContext, stage: str) -> None:
        raise NotImplementedError

    def on_cancel(self, ctx: ChangeContext) -> None:
        """Clean up what a cancelled job left behind."""

    def revert(self, change: ChangeView) -> Inverse:
        raise NotRevertible(f"a {self.name} change cannot be reverted")

    def describe(self, params: dict[str, Any]) -> str:
        """A one-line summary of a job of this kind (the job list shows it)."""
        return self.name

    stage_labels: ClassVar[dict[str, str]] = {}
    """Friendlier names for stages on the card (``download`` -> ``download + verify``)."""
