"""Deployments: read every managed InferenceService, record readiness, alert on not-Ready and
drift, notice deletions made outside Modelarium (the logic is core's; this posts the results)."""

from __future__ import annotations

from typing import Any

from modelarium.core.app import Core
from modelarium.core.scheduling import PeriodicTask, TaskResult


def register(core: Core, fronts: Any = None) -> None:
    def deployments_reconcile() -> TaskResult:
        report = core.deployments.reconcile()
        for key, message in report.notices:
            # Keyed: the same drift or deletion is posted once, not on every pass.
            core.notify.notify("deployments", message, severity="warning", key=key)
        return TaskResult(
            summary=report.summary()[:500],
            observations=report.observations,
            kind="deployments",
        )

    core.tasks.register(
        PeriodicTask(
            "deployments_reconcile",
            core.settings.schedule_deployments_reconcile,
            deployments_reconcile,
            "read every managed InferenceService (one list call per namespace): readiness, "
            "not-Ready and drift alerts, deletions outside Modelarium",
        )
    )
