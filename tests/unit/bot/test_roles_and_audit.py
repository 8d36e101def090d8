"""Role commands as a new user meets them: bootstrap admins, one row per person, the single-admin
dead end, and an audit view that says what each command touched and why it failed."""

from __future__ import annotations

from datetime import UTC, datetime

from modelarium.core.db.models.rbac import GroupMembership
from modelarium.core.rbac import Role
from tests.conftest import make_settings


def test_granting_a_role_to_a_bootstrap_admin_is_refused(runner, core):
    reply = runner.execute("role grant U_ADMIN viewer", user="U_ADMIN2")
    assert not reply.ok
    assert "U_ADMIN> is an admin through MODELARIUM_ADMINS" in reply.text
    assert core.rbac.role_of("U_ADMIN") == Role.ADMIN
    assert core.changes.history()[1] == 0, "nothing was recorded"
    revoke = runner.execute("role revoke U_ADMIN", user="U_ADMIN2")
    assert not revoke.ok and "MODELARIUM_ADMINS" in revoke.text


def test_role_list_shows_each_person_once(runner, core):
    runner.execute("role grant carol operator", user="U_ADMIN")
    with core.db.transaction() as session:
        session.add(
            GroupMembership(
                group_id="S0OPS", user_id="carol", role="operator", synced_at=datetime.now(UTC)
            )
        )
    rows = runner.execute("role list", user="U_ADMIN").data["assignments"]
    carol = [r for r in rows if r["user"] == "carol"]
    assert len(carol) == 1
    assert carol[0]["role"] == "operator"
    assert "granted by U_ADMIN" in carol[0]["source"] and "group S0OPS" in carol[0]["source"]
    assert [r["user"] for r in rows].count("U_ADMIN") == 1


def test_with_a_single_admin_an_admin_grant_says_it_can_never_be_approved(
    tmp_path, database_url, make_core
):
    core = make_core(make_settings(tmp_path, database_url, admins=["U_SOLO"]))
    from modelarium.bot.dispatch import CommandRunner

    reply = CommandRunner(core).execute("role grant bob admin", user="U_SOLO")
    assert not reply.ok
    assert "you are the only admin" in reply.text and "MODELARIUM_ADMINS" in reply.text
    assert core.approvals.pending() == []


def test_audit_view_names_the_target_the_reason_and_pending_requests(runner, core):
    runner.execute("role grant carol operator", user="U_ADMIN")
    runner.execute("role revoke carol", user="U_ADMIN")
    runner.execute("role grant bob admin", user="U_ADMIN")
    runner.execute("approve 999", user="U_ADMIN2")
    entries = runner.execute("audit", user="U_ADMIN").data["entries"]
    by_action = {}
    for entry in entries:
        by_action.setdefault(entry["action"], entry)
    revoke = by_action["command.role.revoke"]
    assert revoke["result"] == "ok" and revoke["target"].startswith("carol (change #")
    grant_admin = next(
        e for e in entries if e["action"] == "command.role.grant" and "bob" in (e["target"] or "")
    )
    assert grant_admin["result"] == "pending", "an approval request is not a done grant"
    approve = by_action["command.approve"]
    assert approve["result"] == "error" and approve["detail"] == "no approval request #999"
    text = runner.execute("audit", user="U_ADMIN").text
    assert "command.approve 999" in text and "error: no approval request #999" in text
