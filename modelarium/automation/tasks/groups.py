"""Model groups: ``group_guard`` judges running challengers (cut a worse one to 0%, say when one
is ready to promote) and ``group_retention`` drops inference records past each group's retention.
The logic is core's; this registers the schedule."""

from __future__ import annotations

from typing import Any

from modelarium.core.app import Core
from modelarium.core.groups.guard import observations, run_guard
from modelarium.core.scheduling import PeriodicTask, TaskResult


def register(core: Core, fronts: Any = None) -> None:
    def group_guard() -> TaskResult:
        report = run_guard(core.groups)
        return TaskResult(
            summary=report.summary()[:500], observations=observations(report), kind="groups"
        )

    def group_retention() -> TaskResult:
        removed = core.groups.purge()
        total = sum(removed.values())
        return TaskResult(summary=f"{total} record(s) past retention removed from "
                          f"{len(removed)} group(s)", kind="groups")  # fmt: skip

    core.tasks.register(
        PeriodicTask(
            "group_guard",
            core.settings.schedule_group_guard,
            group_guard,
            "judge every running challenger over MODELARIUM_GROUP_GUARD_WINDOW: cut a worse one "
            "to 0% (automatic change + alert), post 'ready to promote' when every rule passed",
        )
    )
    core.tasks.register(
        PeriodicTask(
            "group_retention",
            core.settings.schedule_group_retention,
            group_retention,
            "delete inference records older than each group's retention (default 30 days)",
        )
    )
