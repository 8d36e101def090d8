"""One approvals engine for every risky action.

A request is bound to the exact change: the digest of its action and parameters is shown on the
card, carried by the Approve button, and recomputed before execution, so an approval can never run
something other than what the approver saw. Decisions take a row lock (``SELECT ... FOR UPDATE``
on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so two simultaneous clicks or a redelivered click
decide a request exactly once. The deciding vote runs the action's ``execute`` in that same
transaction: it must only record and enqueue (the change engine enqueues a job), never do the
work itself, so approved work runs in the daemon's workers and nothing is half-decided.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelarium.core.audit import AuditService
from modelarium.core.clock import Clock
from modelarium.core.db.models.approvals import ApprovalRequest, ApprovalVote
from modelarium.core.db.uow import Database
from modelarium.core.errors import (
    ConflictError,
    ModelariumError,
    NotFoundError,
    PermissionDeniedError,
    UsageError,
)
from modelarium.core.logging import get_logger
from modelarium.core.messages import Button, Form, FormField, Message, iso_time, timestamp
from modelarium.core.notify import NotifyService
from modelarium.core.rbac import RbacService, Role

log = get_logger(__name__)

Executor = Callable[[Session, dict[str, Any], "ApprovalOutcome"], str]
"""Called in the deciding transaction when enough approvals are in: records and enqueues what
the approval allows (never the work itself); returns a one-line result. Raise ModelariumError to
fail the request."""

Publisher = Callable[[Session, "ApprovalView"], None]
"""Shows the request's current state (in the same transaction); the default posts an approval card
under ``approval:<id>``, the change engine folds it into the change's one living message."""


@dataclass(frozen=True)
class ApprovalAction:
    """A kind of risky action that capabilities register with the engine."""

    name: str
    describe: Callable[[dict[str, Any]], str]
    execute: Executor
    approver_role: Role = Role.ADMIN
    required_approvals: int = 1
    publish: Publisher | None = None


@dataclass(frozen=True)
class ApprovalOutcome:
    request_id: int
    action: str
    requester: str
    approvers: tuple[str, ...]


@dataclass(frozen=True)
class ApprovalView:
    id: int
    action: str
    summary: str
    params: dict[str, Any]
    digest: str
    requester: str
    approver_role: str
    required_approvals: int
    status: str
    result: str | None
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    votes: tuple[tuple[str, str, str | None], ...] = field(default=())

    @property
    def short_digest(self) -> str:
        return self.digest[:12]

    @property
    def approvals(self) -> int:
        return sum(1 for _, decision, _ in self.votes if decision == "approve")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "summary": self.summary,
            "params": self.params,
            "digest": self.digest,
            "requester": self.requester,
            "approver_role": self.approver_role,
            "required_approvals": self.required_approvals,
            "approvals": self.approvals,
            "status": self.status,
            "result": self.result,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "votes": [{"user": u, "decision": d, "note": n} for u, d, n in self.votes],
        }


@dataclass(frozen=True)
class DecisionResult:
    view: ApprovalView
    decided: bool
    """True when this vote closed the request (approved+executed, failed, or rejected)."""


def digest_of(action: str, params: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"action": action, "params": params}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class ApprovalService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        rbac: RbacService,
        audit: AuditService,
        notify: NotifyService,
        *,
        expiry: float = 86400.0,
        self_approval_actions: frozenset[str] = frozenset(),
        approvals_channel: str | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._rbac = rbac
        self._audit = audit
        self._notify = notify
        self.expiry = expiry
        self.self_approval_actions = self_approval_actions
        self.approvals_channel = approvals_channel
        self._actions: dict[str, ApprovalAction] = {}

    def register(self, action: ApprovalAction) -> None:
        if action.name in self._actions:
            raise ValueError(f"approval action {action.name!r} registered twice")
        self._actions[action.name] = action

    def action(self, name: str) -> ApprovalAction:
        try:
            return self._actions[name]
        except KeyError:
            raise NotFoundError(f"no approval action named {name!r}") from None

    # -- requesting -------------------------------------------------------------------------

    def request(
        self,
        action: str,
        params: dict[str, Any],
        requester: str,
        *,
        channel: str | None = None,
        summary: str | None = None,
        approver_role: Role | None = None,
        required_approvals: int | None = None,
        session: Session | None = None,
    ) -> ApprovalView:
        """Record a pending request; ``session`` joins the caller's transaction (a change and its
        approval are created together or not at all)."""
        if session is None:
            with self._db.transaction() as own:
                return self.request(
                    action,
                    params,
                    requester,
                    channel=channel,
                    summary=summary,
                    approver_role=approver_role,
                    required_approvals=required_approvals,
                    session=own,
                )
        spec = self.action(action)
        params = json.loads(json.dumps(params, default=str))  # what is stored is what is hashed
        now = self._clock.now()
        row = ApprovalRequest(
            action=action,
            params=params,
            summary=summary or spec.describe(params),
            digest=digest_of(action, params),
            requester=requester,
            approver_role=str(approver_role or spec.approver_role),
            required_approvals=required_approvals or spec.required_approvals,
            status="pending",
            channel=channel or self.approvals_channel,
            created_at=now,
            expires_at=now + timedelta(seconds=self.expiry),
        )
        session.add(row)
        session.flush()
        view = _view(row, [])
        self._audit.record(
            requester,
            "approval.request",
            target=f"approval:{row.id}",
            params={"action": action, "params": params, "digest": row.digest},
            session=session,
        )
        self._publish(session, row)
        return view

    def approvers(self, role: str | Role, session: Session | None = None) -> list[str]:
        """Who could decide a request needing ``role`` (explicit grants and bootstrap admins)."""
        needed = Role.parse(str(role))
        return sorted(a.user_id for a in self._rbac.assignments(session) if a.role >= needed)

    # -- deciding ---------------------------------------------------------------------------

    def decide(
        self,
        request_id: int,
        user: str,
        decision: str,
        *,
        note: str | None = None,
        digest: str | None = None,
    ) -> DecisionResult:
        if decision not in ("approve", "reject"):
            raise UsageError("decision must be approve or reject")
        role = self._rbac.role_of(user)
        with self._db.transaction() as session:
            row = self._locked(session, request_id)
            outcome = self._vote(session, row, user, role, decision, note, digest)
            if outcome == "execute":
                self._execute(session, row)
            view = _view(row, self._votes(session, row.id))
        # Raised only now: closing an expired or tampered request must be committed first.
        if isinstance(outcome, ModelariumError):
            raise outcome
        return DecisionResult(view, decided=view.status != "pending")

    def _vote(
        self,
        session: Session,
        row: ApprovalRequest,
        user: str,
        role: Role,
        decision: str,
        note: str | None,
        digest: str | None,
    ) -> str | ModelariumError:
        """Apply one vote under the row lock; returns "execute", "recorded" or a closing error."""
        now = self._clock.now()
        if row.status != "pending":
            raise ConflictError(_already(row, session))
        if now >= row.expires_at:
            self._close_expired(session, row)
            return ConflictError(f"approval #{row.id} expired at {iso_time(row.expires_at)}")
        if role < Role.parse(row.approver_role):
            raise PermissionDeniedError(
                f"deciding approval #{row.id} needs the {row.approver_role} role; you are {role}"
            )
        if (
            user == row.requester
            and decision == "approve"
            and row.action not in self.self_approval_actions
        ):
            raise PermissionDeniedError(
                f"you requested #{row.id}; someone else must approve it (two-person rule)"
            )
        if digest is not None and not row.digest.startswith(digest.lower()):
            raise ConflictError(
                f"approval #{row.id} does not match what you saw (digest {digest}); "
                "refresh and review it again"
            )
        if digest_of(row.action, row.params) != row.digest:
            row.status = "failed"
            row.result = "parameters changed after the request was made; refused"
            row.decided_at = now
            self._audit.record(
                user,
                "approval.tamper",
                target=f"approval:{row.id}",
                result="error",
                detail=row.result,
                session=session,
            )
            self._publish(session, row)
            return ConflictError(f"approval #{row.id}: {row.result}")
        existing = session.scalar(
            sa.select(ApprovalVote).where(
                ApprovalVote.request_id == row.id, ApprovalVote.user_id == user
            )
        )
        if existing is not None:
            raise ConflictError(f"you already voted {existing.decision} on #{row.id}")
        session.add(
            ApprovalVote(
                request_id=row.id, user_id=user, decision=decision, note=note, created_at=now
            )
        )
        session.flush()
        self._audit.record(
            user,
            f"approval.{decision}",
            target=f"approval:{row.id}",
            params={"action": row.action, "digest": row.digest, "note": note},
            session=session,
        )
        result = "recorded"
        if decision == "reject":
            row.status = "rejected"
            row.decided_at = now
            row.result = f"rejected by {user}" + (f": {note}" if note else "")
        elif self._approvals(session, row.id) >= row.required_approvals:
            row.decided_at = now
            return "execute"
        self._publish(session, row)
        return result

    def _execute(self, session: Session, row: ApprovalRequest) -> None:
        """The closing vote: hand the approved action over, in the deciding transaction.

        A failure to hand over (say the change's target moved on) fails the request but keeps
        the votes; the savepoint undoes whatever the executor had half-written.
        """
        approvers = tuple(u for u, d, _ in self._votes(session, row.id) if d == "approve")
        outcome = ApprovalOutcome(row.id, row.action, row.requester, approvers)
        try:
            with session.begin_nested():
                result = self.action(row.action).execute(session, dict(row.params), outcome)
            status, level = "approved", "ok"
        except ModelariumError as exc:
            result, status, level = str(exc), "failed", "error"
        except Exception as exc:
            log.exception("approval.execute_crashed", approval=row.id, action=row.action)
            result, status, level = f"internal error ({type(exc).__name__})", "failed", "error"
        row.status = status
        row.result = result
        self._audit.record(
            row.requester,
            f"approval.{status}",
            target=f"approval:{row.id}",
            params={"action": row.action, "approvers": list(approvers)},
            result=level,
            detail=result,
            session=session,
        )
        self._publish(session, row)

    # -- housekeeping and reading -------------------------------------------------------------

    def expire_stale(self) -> int:
        now = self._clock.now()
        with self._db.transaction() as session:
            rows = list(
                session.scalars(
                    sa.select(ApprovalRequest)
                    .where(ApprovalRequest.status == "pending", ApprovalRequest.expires_at <= now)
                    .with_for_update()
                )
            )
            for row in rows:
                self._close_expired(session, row)
        return len(rows)

    def get(self, request_id: int) -> ApprovalView:
        with self._db.transaction() as session:
            row = session.get(ApprovalRequest, request_id)
            if row is None:
                raise NotFoundError(f"no approval request #{request_id}")
            return _view(row, self._votes(session, row.id))

    def pending(self) -> list[ApprovalView]:
        now = self._clock.now()
        with self._db.transaction() as session:
            rows = session.scalars(
                sa.select(ApprovalRequest)
                .where(ApprovalRequest.status == "pending", ApprovalRequest.expires_at > now)
                .order_by(ApprovalRequest.id)
            ).all()
            return [_view(r, self._votes(session, r.id)) for r in rows]

    # -- internals ----------------------------------------------------------------------------

    def _locked(self, session: Session, request_id: int) -> ApprovalRequest:
        row = session.scalar(
            sa.select(ApprovalRequest).where(ApprovalRequest.id == request_id).with_for_update()
        )
        if row is None:
            raise NotFoundError(f"no approval request #{request_id}")
        return row

    def _close_expired(self, session: Session, row: ApprovalRequest) -> None:
        row.status = "expired"
        row.decided_at = self._clock.now()
        row.result = "expired before enough approvals"
        self._audit.record(
            "system",
            "approval.expired",
            target=f"approval:{row.id}",
            result="expired",
            session=session,
        )
        self._publish(session, row)

    def _publish(self, session: Session, row: ApprovalRequest) -> None:
        view = _view(row, self._votes(session, row.id))
        spec = self._actions.get(row.action)
        if spec is not None and spec.publish is not None:
            spec.publish(session, view)
            return
        self._notify.publish(
            f"approval:{row.id}",
            render_card(view),
            channel=row.channel,
            kind="approval",
            session=session,
        )

    @staticmethod
    def _votes(session: Session, request_id: int) -> list[tuple[str, str, str | None]]:
        return [
            (v.user_id, v.decision, v.note)
            for v in session.scalars(
                sa.select(ApprovalVote)
                .where(ApprovalVote.request_id == request_id)
                .order_by(ApprovalVote.id)
            )
        ]

    @staticmethod
    def _approvals(session: Session, request_id: int) -> int:
        return int(
            session.scalar(
                sa.select(sa.func.count())
                .select_from(ApprovalVote)
                .where(ApprovalVote.request_id == request_id, ApprovalVote.decision == "approve")
            )
            or 0
        )


def _already(row: ApprovalRequest, session: Session) -> str:
    deciders = [u for u, _, _ in ApprovalService._votes(session, row.id)]
    who = f" by {', '.join(f'<@{u}>' for u in deciders)}" if deciders else ""
    return f"approval #{row.id} is already {row.status}{who}"


def _view(row: ApprovalRequest, votes: list[tuple[str, str, str | None]]) -> ApprovalView:
    return ApprovalView(
        id=row.id,
        action=row.action,
        summary=row.summary,
        params=dict(row.params),
        digest=row.digest,
        requester=row.requester,
        approver_role=row.approver_role,
        required_approvals=row.required_approvals,
        status=row.status,
        result=row.result,
        created_at=row.created_at,
        expires_at=row.expires_at,
        decided_at=row.decided_at,
        votes=tuple(votes),
    )


_STATUS_ICON = {
    "pending": "⏳",
    "approved": "✅",
    "rejected": "⛔",
    "expired": "⌛",
    "failed": "❌",
}


def render_card(view: ApprovalView) -> Message:
    """The approval card: what will run, its digest, who may decide; buttons while pending."""
    icon = _STATUS_ICON.get(view.status, "")
    message = Message(fallback=f"{icon} Approval #{view.id} ({view.status}): {view.summary}")
    message.header(f"{icon} Approval #{view.id}: {view.status}")
    message.text(f"*{view.summary}*")
    message.fields(
        ("Action", f"`{view.action}`"),
        ("Requested by", f"<@{view.requester}>"),
        ("Needs", f"{view.required_approvals} approval(s) from an {view.approver_role}"),
        ("Digest", f"`{view.short_digest}`"),
        ("Expires", timestamp(view.expires_at)),
        ("Approvals", f"{view.approvals}/{view.required_approvals}"),
    )
    if view.params:
        params = ", ".join(f"{k}={v}" for k, v in sorted(view.params.items()))
        message.context(f"Parameters: {params[:1500]}")
    if view.status == "pending":
        message.buttons(
            Button(
                "Approve",
                f"approve {view.id} --digest {view.short_digest}",
                style="primary",
                confirm=f"Approve: {view.summary[:200]}?",
            ),
            Button(
                "Reject",
                f"reject {view.id}",
                style="danger",
                form=Form(
                    title="Reject request",
                    command=f"reject {view.id}",
                    fields=(FormField("note", "Reason", multiline=True, optional=True),),
                    submit="Reject",
                ),
            ),
        )
    for user, decision, note in view.votes:
        verb = "approved" if decision == "approve" else "rejected"
        message.context(f"{verb} by <@{user}>" + (f": {note}" if note else ""))
    if view.result and view.status != "pending":
        message.text(f"Result: {view.result}")
    return message
