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


def test_redaction_runs_outside_the_audit_head_lock(core, monkeypatch):
    """Redacting a big entry must not hold the lock every audited write waits for."""
    import modelarium.core.audit.service as audit_service
    from modelarium.core.db.models.audit import AuditHead

    core.audit.record("U0", "command.test", params={"i": 0})  # the head row exists
    original = audit_service.redact
    probes: list[bool] = []

    def probing_redact(value, key=None):
        probes.append(_audit_head_lockable(core))
        return original(value, key)

    monkeypatch.setattr(audit_service, "redact", probing_redact)
    core.audit.record("U1", "command.test", params={"text": "x" * 5000}, detail="denied")
    assert probes and all(probes), "redaction ran while the audit head was locked"
    with core.db.transaction() as session:
        assert session.get(AuditHead, 1).last_id == 2
    assert core.audit.verify().ok


def _audit_head_lockable(core) -> bool:
    """Whether another connection could take the audit head's lock right now, without waiting."""
    engine = sa.create_engine(core.db.engine.url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA busy_timeout=0")
                try:
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                except sa.exc.OperationalError:
                    return False
                connection.exec_driver_sql("ROLLBACK")
                return True
            try:
                connection.execute(
                    sa.text("SELECT id FROM audit_head WHERE id = 1 FOR UPDATE NOWAIT")
                )
            except sa.exc.OperationalError:
                return False
            connection.rollback()
            return True
    finally:
        engine.dispose()


# -- the first writes to a fresh database (issue 13, item 12) ----------------------------------


def _fresh_core(tmp_path, database_url):
    from modelarium.core.app import Core
    from tests.conftest import make_settings

    core = Core(make_settings(tmp_path, database_url, admins=["U_ADMIN"]))
    core.migrate()
    return core


def test_the_audit_head_exists_from_the_migration(database_url, tmp_path):
    from modelarium.core.audit.service import GENESIS
    from modelarium.core.db.models.audit import AuditHead

    core = _fresh_core(tmp_path, database_url)
    try:
        with core.db.transaction() as session:
            head = session.get(AuditHead, 1)
            assert head is not None and (head.last_id, head.last_hash) == (0, GENESIS)
        assert core.audit.verify().ok
    finally:
        core.close()


def test_concurrent_first_audit_writes_on_postgresql_do_not_collide(postgres_url, tmp_path):
    """Every writer of a fresh database saw no head row and inserted one: all but one failed."""
    import threading

    core = _fresh_core(tmp_path, postgres_url)
    try:
        writers = 8
        barrier = threading.Barrier(writers)
        errors: list[str] = []

        def write(n: int) -> None:
            barrier.wait()
            try:
                core.audit.record(f"U{n}", "command.test", params={"n": n})
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")

        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        report = core.audit.verify()
        assert report.ok and report.checked == writers
    finally:
        core.close()


def test_concurrent_first_commands_on_postgresql_are_audited_as_they_ended(postgres_url, tmp_path):
    """A command that succeeded must not be told 'Something went wrong' nor audited 'error'."""
    import threading

    from modelarium.bot.dispatch import CommandRunner

    core = _fresh_core(tmp_path, postgres_url)
    try:
        runner = CommandRunner(core)
        users = [f"U_NEW{n}" for n in range(6)]
        barrier = threading.Barrier(len(users))
        replies = {}

        def run(user: str) -> None:
            barrier.wait()
            replies[user] = runner.execute(f"role grant <@{user}X> operator", user="U_ADMIN")

        threads = [threading.Thread(target=run, args=(u,)) for u in users]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert all(reply.ok for reply in replies.values()), [r.text for r in replies.values()]
        results = [e.result for e in core.audit.query(action="command.role.grant", limit=50)]
        assert results == ["ok"] * len(users)
        assert core.audit.verify().ok
    finally:
        core.close()
