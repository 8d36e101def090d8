"""Weights: measure storage locations (alert above the watermark) and apply purge policies."""

from __future__ import annotations

from modelarium.core.app import Core
from modelarium.core.messages import Message
from modelarium.core.scheduling import PeriodicTask, TaskResult
from modelarium.core.weights.service import DISK_USAGE_RULE


def _report(title: str, lines: list[str]) -> Message | None:
    if not lines:
        return None
    return Message(fallback=f"{title}: " + "; ".join(lines)).text(
        f"🧹 *{title}*\n" + "\n".join(f"• {line}" for line in lines)
    )


def register(core: Core, fronts: object = None) -> None:
    settings = core.settings

    def disk_usage() -> TaskResult:
        observations, usages = core.weights.observations()
        core.weights.refresh_access()
        # Above a high watermark: purge now if small enough, else post the proposed purge with
        # its approval buttons (once; a pending proposal is not repeated).
        lines = core.weights.enforce("daemon", above_watermark_only=True)
        summary = ", ".join(f"{u.location} {u.fraction:.0%} used" for u in usages)
        if lines:
            summary += "; " + "; ".join(lines)
        return TaskResult(
            summary=summary[:500],
            observations={DISK_USAGE_RULE: observations},
            message=_report("Weights above the high watermark", lines),
            kind="storage",
        )

    def purge() -> TaskResult:
        lines = core.weights.enforce("daemon") + core.weights.abort_stale_uploads()
        return TaskResult(
            summary=("; ".join(lines) or "nothing to purge")[:500],
            message=_report("Weights purge policies", lines),
            kind="storage",
        )

    core.tasks.register(
        PeriodicTask(
            "disk_usage",
            settings.schedule_disk_usage,
            disk_usage,
            "measure weights locations; alert and purge above the high watermark",
        )
    )
    core.tasks.register(
        PeriodicTask(
            "purge",
            settings.schedule_purge,
            purge,
            "apply weights purge policies (LRU above the high watermark, max age); abort "
            "multipart uploads left in buckets for a day",
        )
    )
