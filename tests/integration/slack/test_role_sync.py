"""Roles follow Slack user-group membership through the daemon's role_sync task."""

from __future__ import annotations

from modelarium.automation.tasks import register_all
from modelarium.core.app import Core
from modelarium.core.rbac import Role
from tests.fakes.slack import FakeSlack


def test_role_sync_follows_group_membership(settings, fake_slack: FakeSlack, clock):
    settings = settings.model_copy(update={"group_roles": {"S0OPS": Role.OPERATOR.name.lower()}})
    core = Core(settings, clock=clock)
    core.migrate()
    try:
        register_all(core)
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
    finally:
        core.close()
