"""Backups: a verified backup on schedule (``MODELARIUM_SCHEDULE_BACKUP``), then retention
(keep the newest of N days and M weeks). Off when the interval is 0."""

from __future__ import annotations

from modelarium.config.units import format_size
from modelarium.core.app import Core
from modelarium.core.scheduling import PeriodicTask, TaskResult


def register(core: Core, fronts: object = None) -> None:
    settings = core.settings
    if settings.schedule_backup <= 0:
        return

    def backup() -> TaskResult:
        info, plan = core.backups.scheduled()
        summary = (
            f"backup {info.name}: {format_size(info.size)}, {info.audit_entries} audit entries "
            f"verified, sha256 {info.sha256[:12]}; {len(plan.keep)} kept"
        )
        if plan.remove:
            summary += f", removed {', '.join(b.name for b in plan.remove)}"
        return TaskResult(summary=summary[:500], kind="backup")

    core.tasks.register(
        PeriodicTask(
            "backup",
            settings.schedule_backup,
            backup,
            "back up the database (verified, checksummed); keep "
            f"{settings.backup_keep_daily} daily and {settings.backup_keep_weekly} weekly",
        )
    )
