"""The change engine: propose -> (approve) -> job -> outcome, the same for every kind.

``propose`` plans the change, records it and, in the same transaction, either asks for an
approval bound to the change's digest or enqueues its job. The deciding vote enqueues the job in
its own transaction (see :mod:`modelarium.core.approvals`); the job runs the kind's stages in a
daemon worker, re-checking first that the world still matches what was approved. Approval and
job both report back here, and every state is shown in one living message, ``change:<id>``.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelarium.core.approvals import ApprovalAction, ApprovalOutcome, ApprovalService, ApprovalView
from modelarium.core.approvals.service import digest_of
from modelarium.core.audit import AuditService
from modelarium.core.changes.card import render_change, render_outcome_notice
from modelarium.core.changes.kinds import (
    ACTIVE,
    ChangeKind,
    ChangeView,
    NotRevertible,
    Plan,
)
from modelarium.core.clock import Clock
from modelarium.core.db.models.approvals import ApprovalRequest, ApprovalVote
from modelarium.core.db.models.changes import Change
from modelarium.core.db.models.jobs import Job
from modelarium.core.db.uow import Database
from modelarium.core.errors import ConflictError, NotFoundError, PermissionDeniedError
from modelarium.core.jobs import JobContext, JobKind, JobService, JobView, WorkerPool
from modelarium.core.logging import get_logger
from modelarium.core.messages import Button, Message
from modelarium.core.notify import NotifyService
from modelarium.core.rbac import RbacService, Role

log = get_logger(__name__)

_FROM_APPROVAL = {"rejected": "rejected", "expired": "expired", "failed": "failed"}
_FROM_JOB = {
    "queued": "queued",
    "running": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
}


class Proposal:
    """What ``propose`` returns: the recorded change and what it is waiting for."""

    def __init__(
        self, change: ChangeView, plan: Plan, approval: ApprovalView | None, job: JobView | None
    ) -> None:
        self.change = change
        self.plan = plan
        self.approval = approval
        self.job = job

    @property
    def digest(self) -> str:
        return self.change.digest

    def to_json(self) -> dict[str, Any]:
        return {
            "change": self.change.id,
            "approval": self.approval.id if self.approval else None,
            "job": self.job.id if self.job else None,
            "digest": self.change.digest,
            "status": self.change.status,
            "kind": self.change.kind,
            "target": self.change.target,
        }


class ChangeService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        rbac: RbacService,
        approvals: ApprovalService,
        jobs: JobService,
        notify: NotifyService,
        audit: AuditService,
        *,
        approver_groups: dict[str, str] | None = None,
        approval_dm: bool = False,
    ) -> None:
        self._db = db
        self._clock = clock
        self._rbac = rbac
        self._approvals = approvals
        self._jobs = jobs
        self._notify = notify
        self._audit = audit
        self._kinds: dict[str, ChangeKind] = {}
        self.approver_groups = {g: Role.parse(r) for g, r in (approver_groups or {}).items()}
        """Chat user groups to mention for approvals needing a role (else people by name)."""
        self.approval_dm = approval_dm

    # -- registry -------------------------------------------------------------------------

    def register(self, kind: ChangeKind) -> None:
        if kind.name in self._kinds:
            raise ValueError(f"change kind {kind.name!r} registered twice")
        self._kinds[kind.name] = kind
        self._approvals.register(
            ApprovalAction(
                kind.name,
                describe=kind.describe,
                execute=self._on_approved,
                approver_role=Role.ADMIN,
                publish=self._on_approval_update,
            )
        )
        self._jobs.register(
            JobKind(
                kind.name,
                kind.stages,
                self._run_stage,
                kind.describe,
                on_cancel=lambda ctx: self.kind(ctx.params["_kind"]).on_cancel(ctx),
                on_update=self._on_job_update,
                on_retry=self._on_job_retry,
            )
        )

    def kind(self, name: str) -> ChangeKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise NotFoundError(f"no change kind {name!r}") from None

    @property
    def kinds(self) -> list[str]:
        return sorted(self._kinds)

    # -- proposing ------------------------------------------------------------------------

    def plan(self, kind: str, params: dict[str, Any], user: str) -> Plan:
        """The plan alone (a dry run): nothing is recorded."""
        spec = self.kind(kind)
        self._check_role(spec, user)
        return spec.plan(params, user)

    def propose(
        self,
        kind: str,
        params: dict[str, Any],
        user: str,
        channel: str | None = None,
        *,
        reverts: int | None = None,
        plan: Plan | None = None,
        system: bool = False,
    ) -> Proposal:
        """``system`` marks a proposal of Modelarium's own (the daemon's purge policy): no role
        check, approvals as the plan says."""
        spec = self.kind(kind)
        if not system:
            self._check_role(spec, user)
        plan = plan or spec.plan(params, user)
        stored = json.loads(json.dumps(plan.params, default=str))  # what is stored is hashed
        digest = digest_of(kind, stored)
        now = self._clock.now()
        approval: ApprovalView | None = None
        job: JobView | None = None
        with self._db.transaction() as session:
            if spec.exclusive:
                busy = session.scalar(
                    sa.select(Change)
                    .where(Change.target == plan.target, Change.status.in_(ACTIVE))
                    .order_by(Change.id)
                    .limit(1)
                    .with_for_update()
                )
                if busy is not None:
                    raise ConflictError(
                        f"change #{busy.id} on {plan.target} is still {_label(busy.status)}; "
                        "wait for it or cancel it first"
                    )
            previous = session.scalar(
                sa.select(Change.id)
                .where(Change.target == plan.target, Change.status == "succeeded")
                .order_by(Change.id.desc())
                .limit(1)
            )
            row = Change(
                kind=kind,
                target=plan.target,
                summary=plan.summary,
                params=stored,
                digest=digest,
                plan=plan.to_json(),
                status="pending_approval" if plan.approval.needed else "queued",
                supersedes_id=previous,
                reverts_id=reverts,
                requested_by=user,
                channel=channel,
                result={},
                created_at=now,
            )
            session.add(row)
            session.flush()
            self._audit.record(
                user,
                "change.propose",
                target=f"change:{row.id}",
                params={"kind": kind, "target": plan.target, "digest": digest},
                session=session,
            )
            if plan.approval.needed:
                approval = self._approvals.request(
                    kind,
                    stored,
                    user,
                    channel=channel,
                    summary=plan.summary,
                    approver_role=plan.approval.role,
                    required_approvals=plan.approval.count,
                    session=session,
                )
                row.approval_id = approval.id
                self._publish(session, row)
                self._ask_approvers(session, row, approval)
            else:
                job = self._enqueue(session, row, user)
            change = _view(row)
        if job is not None and spec.inline:
            job = WorkerPool(self._jobs, size=0).run_one(job_id=job.id) or job
            change = self.get(change.id)
        return Proposal(change, plan, approval, job)

    def _check_role(self, spec: ChangeKind, user: str) -> None:
        role = self._rbac.role_of(user)
        if role < spec.role:
            raise PermissionDeniedError(
                f"proposing a {spec.name} change needs the {spec.role} role; you are {role}"
            )

    def _enqueue(self, session: Session, row: Change, user: str) -> JobView:
        spec = self.kind(row.kind)
        job = self._jobs.enqueue(
            row.kind,
            {
                **row.params,
                "change_id": row.id,
                "_kind": row.kind,
                "_requested_by": row.requested_by,
            },
            created_by=user,
            channel=row.channel,
            session=session,
        )
        extra = spec.start(session, _view(row), job)
        if extra:
            job = self._jobs.update_params(session, job.id, extra)
        row.job_id = job.id
        row.status = "queued"
        self._publish(session, row, job)
        return job

    # -- approvals and jobs report back -----------------------------------------------------

    def _on_approved(
        self, session: Session, params: dict[str, Any], outcome: ApprovalOutcome
    ) -> str:
        row = session.scalar(
            sa.select(Change).where(Change.approval_id == outcome.request_id).with_for_update()
        )
        if row is None:
            raise NotFoundError(f"approval #{outcome.request_id} belongs to no change")
        row.decided_at = self._clock.now()
        job = self._enqueue(session, row, row.requested_by)
        return f"change #{row.id} queued as job #{job.id}"

    def _on_approval_update(self, session: Session, view: ApprovalView) -> None:
        row = session.scalar(sa.select(Change).where(Change.approval_id == view.id))
        if row is None:  # the change row is added in the same transaction, just after
            return
        status = _FROM_APPROVAL.get(view.status)
        if status is not None and row.status == "pending_approval":
            row.status = status
            row.decided_at = view.decided_at or self._clock.now()
            row.finished_at = row.decided_at
            row.outcome = view.result
            self._tell_requester(session, row)
        self._publish(session, row)

    def _on_job_update(self, session: Session, view: JobView) -> None:
        row = session.get(Change, view.params.get("change_id"))
        if row is None:
            return
        status = _FROM_JOB.get(view.status, row.status)
        if view.status == "queued" and view.attempts:
            status = "queued"  # waiting for a retry
        finished = view.done and row.finished_at is None
        row.status = status
        if view.done:
            row.finished_at = row.finished_at or view.finished_at or self._clock.now()
            row.result = dict(view.state.get("result") or {})
            row.outcome = view.error if view.status != "succeeded" else _first(row.result)
            if view.status == "succeeded" and row.reverts_id is not None:
                original = session.get(Change, row.reverts_id)
                if original is not None:
                    original.reverted_by_id = row.id
                    self._publish(session, original)
        self._publish(session, row, view)
        if finished:
            self._audit.record(
                row.requested_by,
                f"change.{status}",
                target=f"change:{row.id}",
                params={"kind": row.kind, "target": row.target, "job": view.id},
                result="ok" if status == "succeeded" else "error",
                detail=row.outcome,
                session=session,
            )
            self._tell_requester(session, row)

    def _on_job_retry(self, session: Session, view: JobView) -> dict[str, Any]:
        """A failed change's job tried again (`jobs retry`): the same approved change resumes,
        so the change goes back from failed to queued and waits for its outcome again. Before
        any stage touched anything, the pre-flight check runs again: the world may have moved
        since the approval."""
        row = session.get(Change, view.params.get("change_id"))
        if row is None:
            return {}
        if row.status != "failed":
            raise ConflictError(f"change #{row.id} is {row.status}, not failed: nothing to retry")
        row.finished_at = None
        row.outcome = None
        return {} if view.completed_stages else {"checked": False}

    def _run_stage(self, ctx: JobContext, stage: str) -> None:
        spec = self.kind(ctx.params["_kind"])
        if not ctx.state.get("checked"):
            # Before anything is touched: the world must still match what was approved.
            spec.check(ctx.params)
            ctx.checkpoint(checked=True)
        spec.run_stage(ctx, stage)

    # -- showing ------------------------------------------------------------------------------

    def _publish(self, session: Session, row: Change, job: JobView | None = None) -> None:
        spec = self._kinds.get(row.kind)
        if spec is not None and spec.inline and row.approval_id is None:
            return  # an instant change answers in the reply; no card of its own
        approval = self._approval(session, row.approval_id)
        if job is None and row.job_id is not None:
            job = self._jobs.view_in(session, row.job_id)
        waiting = (
            self._waiting_for(session, row, approval.approver_role)
            if approval is not None and approval.status == "pending"
            else []
        )
        self._notify.publish(
            f"change:{row.id}",
            render_change(
                _view(row),
                approval,
                job,
                waiting=waiting,
                labels=spec.stage_labels if spec is not None else None,
            ),
            channel=row.channel or self._approvals.approvals_channel,
            kind="change",
            session=session,
        )

    def _waiting_for(self, session: Session, row: Change, role: str) -> list[str]:
        """Who must act, as mentions: the user groups of the role when configured, else every
        approver but the requester, by name."""
        needed = Role.parse(role)
        groups = [g for g, r in sorted(self.approver_groups.items()) if r >= needed]
        if groups:
            return [f"<!subteam^{g}>" for g in groups]
        people = self._approvals.approvers(needed, session)
        return [f"<@{u}>" for u in people if u != row.requested_by]

    def _ask_approvers(self, session: Session, row: Change, approval: ApprovalView) -> None:
        """With ``approval_dm``, each approver also gets a direct message pointing at the card."""
        if not self.approval_dm:
            return
        for user in self._approvals.approvers(approval.approver_role, session):
            if user == row.requested_by:
                continue
            text = (
                f"🔔 <@{row.requested_by}> asks for your approval: *{row.summary}* "
                f"(change #{row.id}, digest `{row.digest[:12]}`)"
            )
            self._notify.publish(
                f"change:{row.id}:ask:{user}",
                Message(fallback=text).text(text).buttons(Button("Review", f"change {row.id}")),
                channel=user,
                kind="approval",
                session=session,
            )

    def _tell_requester(self, session: Session, row: Change) -> None:
        """The outcome goes back to whoever asked, in the thread of the change's message."""
        spec = self._kinds.get(row.kind)
        if spec is not None and spec.inline and row.approval_id is None:
            return
        self._notify.publish(
            f"change:{row.id}:outcome",
            render_outcome_notice(_view(row)),
            channel=row.channel or self._approvals.approvals_channel,
            kind="change",
            thread_of=f"change:{row.id}",
            session=session,
        )

    @staticmethod
    def _approval(session: Session, approval_id: int | None) -> ApprovalView | None:
        if approval_id is None:
            return None
        from modelarium.core.approvals.service import _view as approval_view

        row = session.get(ApprovalRequest, approval_id)
        if row is None:
            return None
        votes = [
            (v.user_id, v.decision, v.note)
            for v in session.scalars(
                sa.select(ApprovalVote)
                .where(ApprovalVote.request_id == approval_id)
                .order_by(ApprovalVote.id)
            )
        ]
        return approval_view(row, votes)

    # -- reading ------------------------------------------------------------------------------

    def get(self, change_id: int) -> ChangeView:
        with self._db.transaction() as session:
            row = session.get(Change, change_id)
            if row is None:
                raise NotFoundError(f"no change #{change_id}")
            return _view(row)

    def finished(self, change_ids: list[int]) -> set[int]:
        """Which of ``change_ids`` are final (or do not exist): one query however many wait."""
        if not change_ids:
            return set()
        with self._db.transaction() as session:
            open_ = session.scalars(
                sa.select(Change.id).where(Change.id.in_(change_ids), Change.status.in_(ACTIVE))
            ).all()
        return set(change_ids) - set(open_)

    def details(self, change_id: int) -> tuple[ChangeView, ApprovalView | None, JobView | None]:
        with self._db.transaction() as session:
            row = session.get(Change, change_id)
            if row is None:
                raise NotFoundError(f"no change #{change_id}")
            approval = self._approval(session, row.approval_id)
            job = self._jobs.view_in(session, row.job_id) if row.job_id else None
            return _view(row), approval, job

    def for_approval(self, approval_id: int) -> ChangeView | None:
        with self._db.transaction() as session:
            row = session.scalar(sa.select(Change).where(Change.approval_id == approval_id))
            return _view(row) if row is not None else None

    def history(
        self,
        *,
        target: str | None = None,
        kind: str | None = None,
        user: str | None = None,
        status: str | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> tuple[list[ChangeView], int]:
        """Newest first; ``target`` matches any part of the target, case-insensitively."""
        where = []
        if target:
            escaped = target.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append(sa.func.lower(Change.target).like(f"%{escaped}%", escape="\\"))
        if kind:
            where.append(Change.kind == kind)
        if user:
            where.append(Change.requested_by == user)
        if status:
            where.append(Change.status == status)
        with self._db.transaction() as session:
            total = int(
                session.scalar(sa.select(sa.func.count()).select_from(Change).where(*where)) or 0
            )
            rows = session.scalars(
                sa.select(Change)
                .where(*where)
                .order_by(Change.id.desc())
                .offset(offset)
                .limit(limit)
            ).all()
            return [_view(r) for r in rows], total

    def active(self, target: str) -> ChangeView | None:
        with self._db.transaction() as session:
            row = session.scalar(
                sa.select(Change)
                .where(Change.target == target, Change.status.in_(ACTIVE))
                .order_by(Change.id)
                .limit(1)
            )
            return _view(row) if row is not None else None

    # -- the way back ---------------------------------------------------------------------------

    def revert(self, change_id: int, user: str, channel: str | None = None) -> Proposal:
        """Propose the inverse of a finished change; it is approved like any other change."""
        change = self.get(change_id)
        if change.status != "succeeded":
            raise ConflictError(
                f"change #{change.id} is {_label(change.status)}; only a change that succeeded "
                "can be reverted"
            )
        if change.reverted_by_id is not None:
            raise ConflictError(
                f"change #{change.id} was already reverted by change #{change.reverted_by_id}"
            )
        with self._db.transaction() as session:
            pending = session.scalar(
                sa.select(Change.id).where(
                    Change.reverts_id == change.id, Change.status.in_(ACTIVE)
                )
            )
        if pending is not None:
            raise ConflictError(f"change #{pending} already proposes to revert #{change.id}")
        try:
            inverse = self.kind(change.kind).revert(change)
        except NotRevertible as exc:
            raise NotRevertible(f"change #{change.id} cannot be reverted: {exc}") from None
        return self.propose(inverse.kind, inverse.params, user, channel, reverts=change.id)


def _first(result: dict[str, Any]) -> str | None:
    report = result.get("report") or []
    return str(report[0]) if report else None


def _label(status: str) -> str:
    return status.replace("_", " ")


def _view(row: Change) -> ChangeView:
    return ChangeView(
        id=row.id,
        kind=row.kind,
        target=row.target,
        summary=row.summary,
        params=dict(row.params or {}),
        digest=row.digest,
        plan=dict(row.plan or {}),
        status=row.status,
        approval_id=row.approval_id,
        job_id=row.job_id,
        supersedes_id=row.supersedes_id,
        reverts_id=row.reverts_id,
        reverted_by_id=row.reverted_by_id,
        requested_by=row.requested_by,
        channel=row.channel,
        outcome=row.outcome,
        result=dict(row.result or {}),
        created_at=row.created_at,
        decided_at=row.decided_at,
        finished_at=row.finished_at,
    )


__all__ = ["ChangeService", "Job", "Proposal"]
