"""Secrets in database URLs and files on disk (issue 13, item 11).

A password containing ``@`` was half shown by ``config show`` and in the connection error (the
URL parser took the rest for the host), ``?password=`` was shown in clear, and the SQLite
database and audit exports were created readable by everyone (0644).
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelarium.config import Settings, load_settings
from modelarium.core.errors import ModelariumError
from modelarium.entrypoints.cli import build_core, main
from tests.conftest import POSTGRES_URL

PASSWORD = "p@ss/w0rd@x"


def test_config_show_redacts_a_password_with_at_signs_whole(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MODELARIUM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MODELARIUM_DATABASE_URL", f"postgresql://app:{PASSWORD}@db.internal:5432/m")
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "w0rd" not in out and "ss/" not in out and "@x" not in out
    assert "postgresql://app:[REDACTED]@db.internal:5432/m" in out


def test_config_show_redacts_a_password_in_the_query(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MODELARIUM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(
        "MODELARIUM_DATABASE_URL",
        "postgresql://app@db/m?sslmode=require&password=hunter2&sslpassword=hunter3",
    )
    assert main(["config", "show", "--json"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "hunter3" not in out
    assert "sslmode=require" in out


def test_a_password_with_at_signs_connects_and_never_shows_in_errors(tmp_path):
    """The raw ``@`` is read as part of the password (the host is what follows the last one)."""
    settings = Settings(
        data_dir=tmp_path, database_url=f"postgresql://app:{PASSWORD}@127.0.0.1:1/none"
    )  # type: ignore[call-arg]
    url = sa.engine.make_url(settings.effective_database_url)
    assert (url.username, url.password, url.host, url.port) == ("app", PASSWORD, "127.0.0.1", 1)
    with pytest.raises(ModelariumError) as error:
        build_core(settings)
    message = str(error.value)
    assert message.startswith("cannot open the database")
    assert "w0rd" not in message and "ss/" not in message and "@x" not in message
    # A server that takes any password (the test PostgreSQL trusts local users) is reached:
    # before, the host was taken to be "ss/w0rd@x@127.0.0.1".
    user_host = POSTGRES_URL.split("://", 1)[1].split("/", 1)[0]
    user, host = user_host.split("@", 1)
    trusting = Settings(
        data_dir=tmp_path, database_url=f"postgresql://{user}:{PASSWORD}@{host}/test"
    )  # type: ignore[call-arg]
    engine = sa.create_engine(trusting.effective_database_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    previous = os.umask(0o022)  # the usual default: files 0644 unless created otherwise
    yield
    os.umask(previous)


def test_the_sqlite_database_and_audit_exports_are_private(tmp_path, monkeypatch, open_umask):
    from modelarium.bot.dispatch import CommandRunner
    from modelarium.bot.shell.oneshot import run_once

    monkeypatch.setenv("MODELARIUM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MODELARIUM_ADMINS", "U_ADMIN")
    core = build_core(load_settings().settings)
    try:
        core.audit.record("U_ADMIN", "test.write", params={"x": 1})
        db = tmp_path / "data" / "modelarium.db"
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: oct(_mode(f)) for f in files} == {f.name: "0o600" for f in files}
        assert _mode(tmp_path / "data") & 0o077 == 0
        out = io.StringIO()
        assert (
            run_once(CommandRunner(core), "audit export", user="U_ADMIN", as_json=False, out=out)
            == 0
        )
        (saved,) = (tmp_path / "data" / "exports").iterdir()
        assert saved.name.startswith("modelarium-audit-")
        assert oct(_mode(saved)) == "0o600"
        assert _mode(saved.parent) & 0o077 == 0
    finally:
        core.close()


def test_an_existing_world_readable_database_is_made_private(tmp_path, open_umask, make_core):

    db = tmp_path / "old.db"
    db.write_bytes(b"")
    db.chmod(0o644)
    core = make_core(Settings(data_dir=tmp_path, database_url=f"sqlite:///{db}"), migrate=False)  # type: ignore[call-arg]
    core.migrate()
    assert oct(_mode(db)) == "0o600"
