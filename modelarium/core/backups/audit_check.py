"""Checking the audit chain inside a backup with the same code that checks the live log."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelarium.core.audit import VerifyReport, check_head, verify_chain
from modelarium.core.backups.model import BackupError
from modelarium.core.db.models.audit import AuditEntry, AuditHead


def verify_orm(engine: sa.Engine, key: bytes) -> VerifyReport:
    """The audit chain of the database behind ``engine`` (a backup opened read-only)."""
    tables = set(sa.inspect(engine).get_table_names())
    if "audit_log" not in tables:
        raise BackupError("the backup has no audit log: it is not a Modelarium database")
    with Session(engine) as session:
        entries = session.scalars(
            sa.select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=1000)
        )
        report = verify_chain(entries, None, key, head_checked=False)
        head = session.get(AuditHead, 1) if "audit_head" in tables else None
    return _with_head(report, head.last_id if head else None, head.last_hash if head else None)


def verify_rows(
    entries: list[dict[str, Any]], head: tuple[int, str] | None, key: bytes
) -> VerifyReport:
    report = verify_chain(entries, None, key, head_checked=False)
    return _with_head(report, *(head or (None, None)))


def _with_head(report: VerifyReport, last_id: int | None, last_hash: str | None) -> VerifyReport:
    return check_head(report, last_id, last_hash) if report.ok else report


def audit_failure(report: VerifyReport) -> BackupError:
    if report.problem and "bad signature" in report.problem:
        return BackupError(
            f"the audit log in the backup does not verify ({report.problem}): it was signed with "
            "another audit key, or tampered with; use the MODELARIUM_AUDIT_HMAC_KEY (or "
            "secrets.json) of the installation that made it"
        )
    return BackupError(f"the audit log in the backup does not verify: {report.problem}")
