"""Health checks of every active endpoint, concurrently; status changes go to the alert engine."""

from __future__ import annotations

from modelarium.core.app import Core
from modelarium.core.endpoints import DOWN_RULE
from modelarium.core.scheduling import PeriodicTask, TaskResult


def register(core: Core, fronts: object = None) -> None:
    def run() -> TaskResult:
        report = core.endpoints.check_all()
        return TaskResult(summary=report.summary, observations={DOWN_RULE: report.observations})

    core.tasks.register(
        PeriodicTask(
            "health_checks",
            core.settings.schedule_health_checks,
            run,
            "check every active endpoint's health and refresh the models it serves",
        )
    )
