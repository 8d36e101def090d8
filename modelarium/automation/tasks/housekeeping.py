"""Housekeeping: expire stale approvals, prune old task runs and expired cache entries."""

from __future__ import annotations

from modelarium.core.app import Core
from modelarium.core.notify.inbound import InboundDeliveries
from modelarium.core.scheduling import PeriodicTask, TaskResult


def register(core: Core, fronts: object = None) -> None:
    def run() -> TaskResult:
        expired = core.approvals.expire_stale()
        pruned = core.tasks.prune_runs()
        purged = core.cache.purge_expired(core.settings.hub_stale_ttl)
        forgotten = InboundDeliveries(core.db, core.clock).prune()
        return TaskResult(
            summary=f"expired {expired} approval(s), pruned {pruned} run(s), "
            f"purged {purged} cache entr{'y' if purged == 1 else 'ies'}, "
            f"forgot {forgotten} delivery key(s)"
        )

    core.tasks.register(
        PeriodicTask(
            "housekeeping",
            core.settings.schedule_housekeeping,
            run,
            "expire stale approvals; prune old task runs, cache entries and delivery keys",
        )
    )
