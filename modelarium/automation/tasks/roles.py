"""Role sync: roles mapped from Slack user groups (MODELARIUM_GROUP_ROLES) follow membership."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelarium.core.app import Core
from modelarium.core.scheduling import PeriodicTask, TaskResult

if TYPE_CHECKING:
    from modelarium.automation.tasks import Fronts


def register(core: Core, fronts: Fronts | None = None) -> None:
    settings = core.settings
    members_of = fronts.group_members if fronts is not None else None
    if not settings.group_roles or members_of is None:
        return

    def run() -> TaskResult:
        counts = core.rbac.sync_groups(members_of)
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
