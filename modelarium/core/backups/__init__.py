"""Verified backups of Modelarium's database: SQLite's online backup API or pg_dump/pg_restore,
each checked (it opens, the audit chain in it verifies) and checksummed in a manifest beside it."""

from modelarium.core.backups.model import BackupError, BackupInfo
from modelarium.core.backups.retention import Retention, plan_retention
from modelarium.core.backups.service import BackupService, RestoreReport

__all__ = [
    "BackupError",
    "BackupInfo",
    "BackupService",
    "RestoreReport",
    "Retention",
    "plan_retention",
]
