"""Roles follow Slack user-group membership through the daemon's role_sync task."""

from __future__ import annotations

from modelarium.automation.tasks import register_all
from modelarium.core.rbac import Role
from modelarium.entrypoints.processes import daemon_fronts
from tests.fakes.slack import FakeSlack


def test_role_sync_follows_group_membership(settings, fake_slack: FakeSlack, clock, make_core):
    settings = settings.model_copy(update={"group_roles": {"S0OPS": Role.OPERATOR.name.lower()}})
    core = make_core(settings, clock=clock)
    register_all(core, daemon_fronts(core))
    fake_slack.set_usergroup("S0OPS", ["U0DANA", "U0EVE"])
    outcome = core.tasks.run_tick("role_sync", None, None, manual=True)
    assert outcome.status == "ok", outcome.summary
    assert core.rbac.role_of("U0DANA") == Role.OPERATOR

    fake_slack.set_usergroup("S0OPS", ["U0EVE"])
    clock.advance(1)
    core.tasks.run_tick("role_sync", None, None, manual=True)
    assert core.rbac.role_of("U0DANA") == Role.VIEWER
    assert core.rbac.role_of("U0EVE") == Role.OPERATOR

    # a Slack failure keeps the last known members instead of stripping everyone
    fake_slack.fail_next("usergroups.users.list", status=500, count=5)
    clock.advance(1)
    failed = core.tasks.run_tick("role_sync", None, None, manual=True)
    assert failed.status == "error"
    assert core.rbac.role_of("U0EVE") == Role.OPERATOR


def test_every_role_change_made_by_the_sync_is_audited(
    settings, fake_slack: FakeSlack, clock, make_core
):
    """Issue 13, item 8: the sync changes roles; each change is in the (verifiable) audit log."""
    settings = settings.model_copy(update={"group_roles": {"S0OPS": "operator", "S0SEE": "viewer"}})
    core = make_core(settings, clock=clock)
    register_all(core, daemon_fronts(core))
    fake_slack.set_usergroup("S0OPS", ["U0DANA", "U0EVE"])
    fake_slack.set_usergroup("S0SEE", ["U0FAY"])
    assert core.tasks.run_tick("role_sync", None, None, manual=True).status == "ok"
    fake_slack.set_usergroup("S0OPS", ["U0EVE", "U0GUS"])
    clock.advance(1)
    assert core.tasks.run_tick("role_sync", None, None, manual=True).status == "ok"
    clock.advance(1)
    assert core.tasks.run_tick("role_sync", None, None, manual=True).status == "ok"
    entries = [e for e in reversed(core.audit.query(limit=100)) if e.action.startswith("role")]
    changes = [(e.action, e.target, e.params["group"], e.params["role"]) for e in entries]
    assert changes == [
        ("role.group_added", "U0DANA", "S0OPS", "operator"),
        ("role.group_added", "U0EVE", "S0OPS", "operator"),
        ("role.group_added", "U0FAY", "S0SEE", "viewer"),
        ("role.group_added", "U0GUS", "S0OPS", "operator"),
        ("role.group_removed", "U0DANA", "S0OPS", "operator"),
    ]
    assert {e.actor for e in entries} == {"role_sync"}
    assert core.audit.verify().ok


def test_a_group_is_never_mapped_to_admin(settings, clock):
    """Admins are made one at a time with a second admin's approval, never by a group."""
    import pytest
    from pydantic import ValidationError

    from modelarium.core.rbac import RbacService

    with pytest.raises(ValidationError) as error:
        settings.model_validate({**settings.model_dump(), "group_roles": {"S0ALL": "admin"}})
    assert "S0ALL may not be mapped to admin" in str(error.value)
    with pytest.raises(ValueError, match="may not be mapped to admin"):
        RbacService(None, clock, group_roles={"S0ALL": "admin"})  # type: ignore[arg-type]
