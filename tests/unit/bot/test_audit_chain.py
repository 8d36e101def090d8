"""The audit log detects edits, deletions and forged hashes."""

from __future__ import annotations

import sqlalchemy as sa

from modelarium.core.db.models.audit import AuditEntry


def _fill(core, n: int = 5) -> None:
    for i in range(n):
        core.audit.record(f"U{i}", "command.test", params={"i": i})


def test_intact_chain_verifies(core):
    _fill(core)
    report = core.audit.verify()
    assert report.ok and report.checked == 5


def test_edit_is_detected(core):
    _fill(core)
    with core.db.transaction() as session:
        session.execute(sa.update(AuditEntry).where(AuditEntry.id == 3).values(actor="U_EVIL"))
    report = core.audit.verify()
    assert not report.ok and report.bad_id == 3 and "modified" in report.problem


def test_deletion_is_detected(core):
    _fill(core)
    with core.db.transaction() as session:
        session.execute(sa.delete(AuditEntry).where(AuditEntry.id == 5))
    assert not core.audit.verify().ok
    with core.db.transaction() as session:
        session.execute(sa.delete(AuditEntry).where(AuditEntry.id == 2))
    report = core.audit.verify()
    assert not report.ok and "entry 2 is missing" in report.problem


def test_recomputed_hash_without_the_key_fails_the_signature(core):
    import hashlib

    from modelarium.core.audit.service import _canonical

    _fill(core, 2)
    with core.db.transaction() as session:
        entry = session.get(AuditEntry, 2)
        entry.detail = "rewritten history"
        session.flush()
        entry.hash = hashlib.sha256(_canonical(entry)).hexdigest()
    report = core.audit.verify()
    assert not report.ok and "bad signature" in report.problem


def test_verify_command(runner):
    runner.execute("role grant U7 operator", user="U_ADMIN")
    reply = runner.execute("audit verify", user="U_ADMIN")
    assert reply.ok and reply.data["checked"] >= 1
