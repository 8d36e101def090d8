"""Tamper-evident audit log of every command, decision and outcome."""

from modelarium.core.audit.service import AuditRecord, AuditService, VerifyReport

__all__ = ["AuditRecord", "AuditService", "VerifyReport"]
