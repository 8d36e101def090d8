"""``core.backups``: verified backups of the database (no change kinds: a backup changes nothing
in the fleet, and a restore runs offline from the ``modelarium`` command)."""

from __future__ import annotations

from modelarium.core.backups.service import BackupService
from modelarium.core.kernel import Kernel
from modelarium.core.ports import Ports


def build(kernel: Kernel, ports: Ports) -> BackupService:
    return BackupService(
        kernel.settings, kernel.db, kernel.clock, kernel.audit, kernel.keyring.audit_key
    )
