"""Helpers for backup tests: the environment the ``modelarium`` command reads, and a writer."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from modelarium.config import Settings
from modelarium.core.app import Core


def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Point ``modelarium ...`` (run in-process through ``main``) at the test's database."""
    assert settings.database_url is not None
    monkeypatch.setenv("MODELARIUM_DATABASE_URL", settings.database_url.get_secret_value())
    monkeypatch.setenv("MODELARIUM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MODELARIUM_ADMINS", "U_ADMIN")


class AuditWriter(threading.Thread):
    """Appends audit entries as fast as the database lets it, like a busy daemon."""

    def __init__(self, core: Core) -> None:
        super().__init__(daemon=True)
        self.core = core
        self.stop = threading.Event()
        self.written = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.core.audit.record("U_WRITER", "test.write", params={"n": self.written})
                self.written += 1
                self.stop.wait(0.002)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def __enter__(self) -> AuditWriter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(30)


def fill_audit(core: Core, count: int) -> None:
    with core.db.transaction() as session:
        for n in range(count):
            core.audit.record(
                "U_SEED", "test.seed", params={"n": n, "pad": "x" * 200}, session=session
            )


def can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def run_on_small_tmpfs(
    command: list[str], size: str, env: dict[str, str], mount: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in a private mount namespace where ``mount`` is a tmpfs of ``size``,
    then print what is left in it (after a marker line)."""
    mount.mkdir(parents=True, exist_ok=True)
    script = (
        f'mount -t tmpfs -o size={size} tmpfs "{mount}" || exit 99; '
        '"$@"; rc=$?; echo "--- left:"; ls -A "' + str(mount) + '"; exit $rc'
    )
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", *command],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
        timeout=120,
    )
