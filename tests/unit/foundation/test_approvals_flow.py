"""Granting admin goes through an approval: two-person rule, digest binding, audit trail."""

from __future__ import annotations

from modelarium.core.rbac import Role


def test_admin_grant_needs_a_second_admin(runner, core):
    reply = runner.execute("role grant <@U_BOB> admin", user="U_ADMIN")
    assert reply.ok, reply.text
    approval_id = reply.data["approval_id"]
    assert core.rbac.role_of("U_BOB") == Role.VIEWER

    own = runner.execute(f"approve {approval_id}", user="U_ADMIN")
    assert not own.ok
    assert "two-person rule" in own.data["error"]

    done = runner.execute(f"approve {approval_id}", user="U_ADMIN2")
    assert done.ok, done.text
    assert done.data["status"] == "executed"
    assert core.rbac.role_of("U_BOB") == Role.ADMIN

    again = runner.execute(f"approve {approval_id}", user="U_ADMIN2")
    assert not again.ok
    assert "already executed" in again.data["error"]
    actions = [r.action for r in core.audit.query(limit=50)]
    assert "approval.executed" in actions
    assert "command.role.grant" in actions
    assert core.audit.verify().ok
