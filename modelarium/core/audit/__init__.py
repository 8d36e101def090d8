"""Tamper-evident audit log of every command, decision and outcome."""

from modelarium.core.audit.service import (
    AuditRecord,
    AuditService,
    VerifyReport,
    check_head,
    verify_chain,
)

__all__ = ["AuditRecord", "AuditService", "VerifyReport", "check_head", "verify_chain"]
