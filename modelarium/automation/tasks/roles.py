"""Role sync: roles mapped from Slack user groups (MODELARIUM_GROUP_ROLES) follow membership."""

from __future__ import annotations

from modelarium.core.app import Core
from modelarium.core.scheduling import PeriodicTask, TaskResult


def register(core: Core) -> None:
    settings = core.settings
    if not settings.group_roles or not settings.slack_enabled:
        return
    from modelarium.bot.slack.client import web_client
    from modelarium.bot.slack.groups import members_of

    client = web_client(settings)

    def run() -> TaskResult:
        counts = core.rbac.sync_groups(lambda group: members_of(client, group))
        listed = ", ".join(f"{group}: {n}" for group, n in sorted(counts.items()))
        return TaskResult(summary=f"synced {len(counts)} group(s) ({listed})")

    core.tasks.register(
        PeriodicTask(
            "role_sync",
            settings.schedule_role_sync,
            run,
            "refresh roles granted through Slack user groups",
        )
    )
