"""Backups: create (verified, checksummed, atomic), list, restore (refusing a non-empty database
without --force), retention, and the faults: a writer during the backup, a tampered audit log, a
corrupt file, another audit key, missing PostgreSQL tools. Every test runs on both databases."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelarium.config import Settings
from modelarium.core.app import Core
from modelarium.core.backups import BackupError
from modelarium.core.clock import FakeClock
from modelarium.core.db.models.audit import AuditEntry
from modelarium.entrypoints.cli import main
from tests.conftest import make_settings
from tests.unit.backups.helpers import (
    AuditWriter,
    can_mount_tmpfs,
    cli_env,
    fill_audit,
    run_on_small_tmpfs,
)


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _audit_count(core: Core) -> int:
    with core.db.transaction() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) or 0)


def test_create_writes_a_verified_backup_and_its_manifest(core: Core, tmp_path: Path) -> None:
    fill_audit(core, 25)
    target = tmp_path / "backups"
    info = core.backups.create("U_ADMIN", to=str(target))

    data = target / info.file
    manifest = json.loads((target / f"{info.name}.json").read_text())
    assert _files(target) == sorted([info.file, f"{info.name}.json"])  # no partial left
    assert manifest["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest() == info.sha256
    assert manifest["size"] == data.stat().st_size == info.size
    assert manifest["audit_entries"] == info.audit_entries == 25
    assert manifest["dialect"] == core.db.dialect
    assert manifest["format"] == ("sqlite3" if core.db.dialect == "sqlite" else "pg_dump-custom")
    assert manifest["revisions"] and manifest["kind"] == "manual"
    assert stat.S_IMODE(data.stat().st_mode) == 0o600  # it holds the whole database
    # The backup itself is in the audit log, after the entries it contains.
    assert core.audit.query(action="backup.create")[0].target == info.name
    assert [b.name for b in core.backups.list(str(target))] == [info.name]


def test_names_are_unique_within_a_second(core: Core, tmp_path: Path) -> None:
    first = core.backups.create("U_ADMIN", to=str(tmp_path))
    second = core.backups.create("U_ADMIN", to=str(tmp_path))
    assert second.name == f"{first.name}-2"
    assert [b.name for b in core.backups.list(str(tmp_path))] == [second.name, first.name]


def test_backup_is_consistent_while_a_writer_appends(core: Core, tmp_path: Path) -> None:
    fill_audit(core, 300)
    with AuditWriter(core) as writer:
        infos = [core.backups.create("U_ADMIN", to=str(tmp_path)) for _ in range(2)]
        written_during = writer.written
    assert writer.error is None
    assert written_during > 0, "the writer never got a turn during the backups"
    # Each backup verified its own chain (create raises otherwise) and saw a growing prefix.
    counts = [i.audit_entries for i in infos]
    assert counts == sorted(counts) and counts[0] >= 300
    assert counts[-1] > 300
    # Restoring the last one gives exactly its entries (+ the restore's own record).
    report = core.backups.restore(infos[-1].name, "U_ADMIN", where=str(tmp_path), force=True)
    assert report.audit_entries == counts[-1]
    assert _audit_count(core) == counts[-1] + 1
    assert core.audit.verify().ok


def test_restore_refuses_a_non_empty_database_without_force(core: Core, tmp_path: Path) -> None:
    fill_audit(core, 5)
    info = core.backups.create("U_ADMIN", to=str(tmp_path))
    fill_audit(core, 7)  # written after the backup: a restore loses these
    before = _audit_count(core)
    with pytest.raises(BackupError, match=r"not empty \(\d+ rows\); add --force"):
        core.backups.restore(info.name, "U_ADMIN", where=str(tmp_path))
    assert _audit_count(core) == before  # untouched

    report = core.backups.restore(info.name, "U_ADMIN", where=str(tmp_path), force=True)
    assert report.replaced > 0
    assert report.audit_entries == 5  # what the backup holds (its own record comes after it)
    assert _audit_count(core) == 6  # ... + backup.restore
    assert core.audit.query(limit=1)[0].action == "backup.restore"
    assert core.audit.verify().ok


def test_restore_into_an_empty_database(
    core: Core, settings: Settings, tmp_path: Path, clock: FakeClock, make_core
) -> None:
    fill_audit(core, 3)
    info = core.backups.create("U_ADMIN", to=str(tmp_path / "b"))
    _empty_the_database(core)
    fresh = make_core(settings, clock=clock, migrate=False)  # the restore brings the schema
    assert fresh.backups.rows() == 0
    report = fresh.backups.restore(info.name, "U_ADMIN", where=str(tmp_path / "b"))
    assert report.replaced == 0
    assert report.revisions_after == sorted(info.revisions)
    assert _audit_count(fresh) == 4 and fresh.audit.verify().ok


def _empty_the_database(core: Core) -> None:
    engine = core.db.engine
    if core.db.dialect == "sqlite":
        path = Path(engine.url.database or "")
        engine.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    with engine.begin() as conn:
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()


def test_a_tampered_audit_log_fails_the_backup_and_leaves_nothing(
    core: Core, tmp_path: Path
) -> None:
    fill_audit(core, 10)
    with core.db.transaction() as session:
        session.execute(sa.update(AuditEntry).where(AuditEntry.id == 4).values(actor="U_MALLORY"))
    target = tmp_path / "backups"
    with pytest.raises(BackupError) as raised:
        core.backups.create("U_ADMIN", to=str(target))
    assert str(raised.value) == "the audit log in the backup does not verify: entry 4 was modified"
    assert _files(target) == []


def test_a_corrupt_backup_is_refused_before_anything_is_touched(core: Core, tmp_path: Path) -> None:
    fill_audit(core, 3)
    info = core.backups.create("U_ADMIN", to=str(tmp_path))
    data = tmp_path / info.file
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    before = _audit_count(core)
    with pytest.raises(BackupError, match=f"backup {info.name} is corrupt: its checksum"):
        core.backups.restore(info.name, "U_ADMIN", where=str(tmp_path), force=True)
    assert _audit_count(core) == before


def test_a_backup_signed_with_another_audit_key_is_refused(
    core: Core, tmp_path: Path, database_url: str, clock: FakeClock, make_core
) -> None:
    fill_audit(core, 3)
    info = core.backups.create("U_ADMIN", to=str(tmp_path / "b"))
    other_secrets = make_settings(tmp_path / "other", database_url)
    other = make_core(other_secrets, clock=clock, migrate=False)
    with pytest.raises(BackupError, match="signed with another audit key"):
        other.backups.restore(info.name, "U_ADMIN", where=str(tmp_path / "b"), force=True)
    assert core.audit.verify().ok and _audit_count(core) == 4  # 3 + backup.create


def test_a_backup_from_a_newer_schema_is_refused(core: Core, tmp_path: Path) -> None:
    with core.db.transaction() as session:
        session.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES ('9999')"))
    info = core.backups.create("U_ADMIN", to=str(tmp_path))
    assert "9999" in info.revisions
    with pytest.raises(BackupError, match=r"made by a newer Modelarium \(schema revision 9999\)"):
        core.backups.restore(info.name, "U_ADMIN", where=str(tmp_path), force=True)


def test_unknown_backup_and_unknown_location(core: Core, tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"no backup 'nope' in .*backup list"):
        core.backups.restore("nope", "U_ADMIN", where=str(tmp_path))
    with pytest.raises(Exception, match=r"no storage location 'elsewhere' \(locations: default\)"):
        core.backups.create("U_ADMIN", to="elsewhere")


def test_default_location_and_storage_location_names(core: Core, settings: Settings) -> None:
    info = core.backups.create("U_ADMIN")
    assert (settings.data_dir / "backups" / info.file).is_file()
    named = core.backups.create("U_ADMIN", to="default")
    assert (settings.data_dir / "weights" / "backups" / named.file).is_file()


def test_scheduled_backups_keep_n_daily_and_m_weekly(
    settings: Settings, clock: FakeClock, tmp_path: Path, make_core
) -> None:
    from modelarium.automation.tasks import backups as backup_tasks

    tuned = settings.model_copy(
        update={
            "backup_keep_daily": 2,
            "backup_keep_weekly": 2,
            "backup_location": str(tmp_path / "b"),
        }
    )
    core = make_core(tuned, clock=clock)
    backup_tasks.register(core)
    manual = core.backups.create("U_ADMIN")
    made = []
    for _ in range(5):  # one a day for 5 days: Fri..Tue spans two ISO weeks at most
        outcome = core.tasks.run_tick("backup", None, None, manual=True)
        assert outcome.status == "ok", outcome.summary
        made.append(core.backups.list()[0])
        clock.advance(86400)
    names = [b.name for b in core.backups.list()]
    plan = core.backups.retention()
    # The newest two days, plus the newest backup of each of the two newest weeks.
    expected = {made[-1].name, made[-2].name}
    weeks: dict[tuple[int, int], str] = {}
    for b in made:
        weeks[b.created_at.isocalendar()[:2]] = b.name
    expected |= {name for _, name in sorted(weeks.items())[-2:]}
    assert set(names) == expected | {manual.name}
    assert plan.keep[manual.name] == ["manual"]
    assert "removed" in outcome.summary
    assert len(_files(tmp_path / "b")) == 2 * len(names)


def test_missing_postgres_tools_are_one_line(
    settings: Settings, clock: FakeClock, tmp_path: Path, make_core
) -> None:
    empty = tmp_path / "no-tools"
    empty.mkdir()
    core = make_core(settings.model_copy(update={"pg_bin_dir": empty}), clock=clock)
    if core.db.dialect == "sqlite":
        core.backups.create("U_ADMIN", to=str(tmp_path / "b"))  # needs no tools
        return
    with pytest.raises(BackupError) as raised:
        core.backups.create("U_ADMIN", to=str(tmp_path / "b"))
    assert str(raised.value) == (
        f"pg_dump is not installed in {empty}: install the PostgreSQL client tools "
        "(postgresql-client, at least the server's version) or set MODELARIUM_PG_BIN_DIR"
    )
    assert _files(tmp_path / "b") == []


# -- the command line and chat ---------------------------------------------------------------


def test_cli_create_list_restore(
    core: Core,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli_env(monkeypatch, settings)
    fill_audit(core, 4)
    target = str(tmp_path / "cli")
    assert main(["backup", "create", "--to", target, "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["audit_entries"] == 4
    assert main(["backup", "list", "--from", target]) == 0
    listed = capsys.readouterr().out
    assert f"1 backup(s) in {target}:" in listed and created["name"] in listed

    assert main(["backup", "restore", created["name"], "--from", target]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the database is not empty (") and err.endswith(
        f"add --force to replace it with backup {created['name']}"
    )
    assert len(err.splitlines()) == 1
    assert main(["backup", "restore", created["name"], "--from", target, "--force"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"restored {created['name']} (") and "4 audit entries verified" in out


def test_chat_lists_backups_for_admins_only(core: Core, runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    info = core.backups.create("U_ADMIN")
    reply = runner.execute("backups", user="U_ADMIN")
    assert reply.ok, reply.text
    assert reply.data["backups"][0]["name"] == info.name
    assert reply.data["backups"][0]["sha256"] == info.sha256
    assert reply.data["backups"][0]["kept"] == ["manual"]
    assert info.name in reply.text
    denied = runner.execute("backups", user="U_VIEWER")
    assert not denied.ok and "admin" in denied.text.lower()


def test_backup_files_never_include_partials(core: Core, tmp_path: Path) -> None:
    """A killed backup leaves a .partial file: never listed, removed by the next prune once old."""
    (tmp_path / ".modelarium-20200101-000000.sqlite3.partial").write_bytes(b"half")
    old = 1_000_000_000
    os.utime(tmp_path / ".modelarium-20200101-000000.sqlite3.partial", (old, old))
    info = core.backups.create("U_ADMIN", to=str(tmp_path))
    assert [b.name for b in core.backups.list(str(tmp_path))] == [info.name]
    _, removed = core.backups.prune(str(tmp_path))
    assert removed == [".modelarium-20200101-000000.sqlite3.partial"]


# -- a full target: a real tmpfs too small for the backup, in a private mount namespace ---------


@pytest.mark.skipif(not can_mount_tmpfs(), reason="needs unshare -rm (user + mount namespaces)")
def test_a_full_target_is_one_line_and_nothing_is_half_written(
    core: Core, settings: Settings, tmp_path: Path
) -> None:
    fill_audit(core, 20)
    mount = tmp_path / "small"
    env = {
        "MODELARIUM_DATABASE_URL": settings.database_url.get_secret_value(),  # type: ignore[union-attr]
        "MODELARIUM_DATA_DIR": str(settings.data_dir),
    }
    binary = str(Path(sys.executable).with_name("modelarium"))
    done = run_on_small_tmpfs([binary, "backup", "create", "--to", str(mount)], "16k", env, mount)
    assert done.returncode == 1, done
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1, done.stderr
    # SQLite's size is known up front (checked before writing); pg_dump's compressed archive is
    # not, so it runs out of room mid-write: the same line either way.
    assert re.fullmatch(
        rf"error: backup target {re.escape(str(mount))} is full \(\d+\.\d KiB free"
        r"(, about [\d.]+ KiB needed)?\): nothing was written",
        errors[0],
    ), errors[0]
    left = done.stdout.split("--- left:\n", 1)[1].split()
    assert left == []  # no partial file, no manifest
    assert _audit_count(core) == 20  # and nothing recorded as backed up
