"""Real daemon processes against one PostgreSQL schema (see ``daemon_entry.py``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from modelarium.core.secrets import generate_key
from tests.conftest import make_settings
from tests.integration.daemon.daemon_entry import PROBE_TABLES

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DaemonProcess:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def health(self) -> tuple[int, dict[str, Any]] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())
        except OSError:
            return None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval=0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def probe_db(postgres_url: str, tmp_path: Path, make_core) -> Iterator[sa.Engine]:  # type: ignore[no-untyped-def]
    """The migrated schema plus the probe tables; an engine for the test's own queries."""
    make_core(make_settings(tmp_path / "setup", postgres_url)).close()
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        for ddl in PROBE_TABLES:
            conn.execute(sa.text(ddl))
    yield engine
    engine.dispose()


@pytest.fixture
def spawn_daemon(postgres_url: str, tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Start ``daemon_entry`` processes; every one still running is SIGKILLed at teardown."""
    started: list[DaemonProcess] = []
    shared = {
        # Replicas share their keys, as in production (otherwise each would generate its own).
        "MODELARIUM_ENCRYPTION_KEYS": generate_key(),
        "MODELARIUM_AUDIT_HMAC_KEY": "probe-audit-key-0123456789",
    }

    def spawn(**env: str) -> DaemonProcess:
        index = len(started)
        port = free_port()
        log = tmp_path / f"daemon-{index}.log"
        full_env = {
            key: value for key, value in os.environ.items() if not key.startswith("MODELARIUM_")
        }
        full_env.update(shared)
        full_env.update(
            {
                "PYTHONPATH": str(REPO) + os.pathsep + full_env.get("PYTHONPATH", ""),
                "MODELARIUM_DATABASE_URL": postgres_url,
                "MODELARIUM_DATA_DIR": str(tmp_path / f"data-{index}"),
                "MODELARIUM_HOST": "127.0.0.1",
                "MODELARIUM_PORT": str(port),
                "MODELARIUM_LOG_FORMAT": "json",
                "MODELARIUM_LOG_LEVEL": "info",
                "MODELARIUM_DATABASE_POOL_SIZE": "4",
                "MODELARIUM_SCHEDULE_HOUSEKEEPING": "1h",
                **env,
            }
        )
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.integration.daemon.daemon_entry"],
                cwd=REPO,
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        daemon = DaemonProcess(proc, port, log)
        started.append(daemon)
        return daemon

    yield spawn
    for daemon in started:
        if daemon.alive():
            daemon.proc.send_signal(signal.SIGKILL)
            daemon.proc.wait(10)
