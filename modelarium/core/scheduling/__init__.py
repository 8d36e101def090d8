"""Leader election and the ledger of periodic tasks (the scheduler itself lives in automation/)."""

from modelarium.core.scheduling.lease import Leadership, LeaseManager
from modelarium.core.scheduling.tasks import (
    TASK_FAILURE_RULE,
    PeriodicTask,
    RunOutcome,
    TaskLedger,
    TaskResult,
    TaskStatus,
    tick_of,
)

__all__ = [
    "TASK_FAILURE_RULE",
    "Leadership",
    "LeaseManager",
    "PeriodicTask",
    "RunOutcome",
    "TaskLedger",
    "TaskResult",
    "TaskStatus",
    "tick_of",
]
