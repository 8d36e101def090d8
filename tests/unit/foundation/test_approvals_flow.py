"""Granting admin goes through an approval: two-person rule, digest binding, audit trail."""

from __future__ import annotations

from modelarium.core.jobs import WorkerPool
from modelarium.core.rbac import Role


def _grant_admin(core, user: str):
    proposal = core.changes.propose("role.grant", {"user": user, "role": "admin"}, "U_ADMIN")
    assert proposal.approval is not None
    return proposal


def test_admin_grant_needs_a_second_admin(runner, core):
    reply = runner.execute("role grant <@U_BOB> admin", user="U_ADMIN")
    assert reply.ok, reply.text
    approval_id = reply.data["approval"]
    assert reply.data["job"] is None and reply.data["digest"]
    assert core.rbac.role_of("U_BOB") == Role.VIEWER

    own = runner.execute(f"approve {approval_id}", user="U_ADMIN")
    assert not own.ok
    assert "two-person rule" in own.data["error"]

    done = runner.execute(f"approve {approval_id}", user="U_ADMIN2")
    assert done.ok, done.text
    assert done.data["status"] == "approved"
    # Approved work runs as a job in a worker, never in the process that took the click.
    assert core.rbac.role_of("U_BOB") == Role.VIEWER
    assert WorkerPool(core.jobs, size=0).run_one().status == "succeeded"
    assert core.rbac.role_of("U_BOB") == Role.ADMIN
    assert core.changes.get(reply.data["change"]).status == "succeeded"

    again = runner.execute(f"approve {approval_id}", user="U_ADMIN2")
    assert not again.ok
    assert "already approved" in again.data["error"]
    actions = [r.action for r in core.audit.query(limit=50)]
    assert "approval.approved" in actions
    assert "change.succeeded" in actions
    assert "command.role.grant" in actions
    assert core.audit.verify().ok


def test_expired_requests_close_and_say_so(runner, core, clock):
    proposal = _grant_admin(core, "U_X")
    clock.advance(core.settings.approval_expiry + 1)
    late = runner.execute(f"approve {proposal.approval.id}", user="U_ADMIN2")
    assert not late.ok and "expired" in late.data["error"]
    assert core.approvals.get(proposal.approval.id).status == "expired"
    assert core.changes.get(proposal.change.id).status == "expired"
    assert runner.execute("approvals", user="U_ADMIN").data["pending"] == []
    card = core.notify.get(f"change:{proposal.change.id}")[0].plain_text()
    assert "expired" in card


def test_housekeeping_expires_stale_requests(core, clock):
    view = _grant_admin(core, "U_Y").approval
    clock.advance(core.settings.approval_expiry + 1)
    assert core.approvals.expire_stale() == 1
    assert core.approvals.get(view.id).status == "expired"


def test_n_of_m_and_digest_binding(core):
    from modelarium.core.approvals import ApprovalAction
    from modelarium.core.errors import ConflictError

    ran: list[dict] = []
    core.approvals.register(
        ApprovalAction(
            "test.two_keys",
            describe=lambda p: f"launch {p['what']}",
            execute=lambda s, p, outcome: ran.append(p) or f"launched by {len(outcome.approvers)}",
            approver_role=Role.OPERATOR,
            required_approvals=2,
        )
    )
    core.rbac.grant("U_OP1", Role.OPERATOR, "t")
    core.rbac.grant("U_OP2", Role.OPERATOR, "t")
    view = core.approvals.request("test.two_keys", {"what": "rocket"}, "U_ADMIN")

    import pytest

    with pytest.raises(ConflictError, match="does not match what you saw"):
        core.approvals.decide(view.id, "U_OP1", "approve", digest="deadbeef0000")
    first = core.approvals.decide(view.id, "U_OP1", "approve", digest=view.short_digest)
    assert first.view.status == "pending" and ran == []
    second = core.approvals.decide(view.id, "U_OP2", "approve")
    assert second.view.status == "approved"
    assert second.view.result == "launched by 2"
    assert ran == [{"what": "rocket"}]


def test_parameters_changed_after_the_request_are_refused(core):
    import sqlalchemy as sa

    from modelarium.core.db.models.approvals import ApprovalRequest
    from modelarium.core.errors import ConflictError

    core.rbac.grant("U_Z", Role.ADMIN, "t")  # demoting an admin needs an approval
    view = core.changes.propose(
        "role.grant", {"user": "U_Z", "role": "operator"}, "U_ADMIN"
    ).approval
    with core.db.transaction() as session:
        session.execute(
            sa.update(ApprovalRequest)
            .where(ApprovalRequest.id == view.id)
            .values(params={"user": "U_MALLORY", "role": "admin"})
        )
    import pytest

    with pytest.raises(ConflictError, match="parameters changed"):
        core.approvals.decide(view.id, "U_ADMIN2", "approve")
    assert core.rbac.role_of("U_MALLORY") == Role.VIEWER
    assert core.approvals.get(view.id).status == "failed"


def test_concurrent_approvals_decide_exactly_once(database_url, tmp_path, make_core):
    """Two approvers clicking at the same moment: one vote executes, the other is told."""
    import threading

    from tests.conftest import make_settings

    settings = make_settings(tmp_path, database_url, admins=["A", "B", "C"])
    core = make_core(settings)
    executions: list[int] = []
    from modelarium.core.approvals import ApprovalAction

    core.approvals.register(
        ApprovalAction(
            "test.once",
            describe=lambda p: "once",
            execute=lambda s, p, o: executions.append(o.request_id) or "done",
        )
    )
    for _ in range(5):
        view = core.approvals.request("test.once", {}, "A")
        barrier = threading.Barrier(2)
        results: list[str] = []

        def click(
            user: str,
            request_id: int = view.id,
            barrier: threading.Barrier = barrier,
            results: list[str] = results,
        ) -> None:
            barrier.wait()
            try:
                core.approvals.decide(request_id, user, "approve")
                results.append("ok")
            except Exception as exc:
                results.append(type(exc).__name__)

        threads = [threading.Thread(target=click, args=(u,)) for u in ("B", "C")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == ["ConflictError", "ok"]
    assert len(executions) == 5 and len(set(executions)) == 5
