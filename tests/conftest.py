"""Shared fixtures: every database test runs on SQLite *and* PostgreSQL.

PostgreSQL is required, not optional: a test run that cannot reach it fails (a skipped
Postgres suite is not a pass). Each test gets its own migrated database (a copy of a template,
see tests/plugins/databases.py), so tests stay independent and can run in any order and in
parallel.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from modelarium.config import Settings
from modelarium.core.app import Core
from modelarium.core.clock import Clock, FakeClock

# Fixtures every directory may use without importing them: databases, and the fakes.
pytest_plugins = [
    "tests.plugins.databases",
    "tests.plugins.offline_dns",
    "tests.fakes.slack",
    "tests.fakes.kubernetes",
    "tests.fakes.s3",
    "tests.fakes.hf_hub",
    "tests.fakes.github",
    "tests.fakes.ollama",
]


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: three workers per two CPUs. A third of the suite's time is spent waiting
    (subprocesses starting, fake servers, PostgreSQL, lease and heartbeat timers): with one
    worker per CPU the CPUs were idle 40% of the run."""
    return max(2, (os.cpu_count() or 1) * 3 // 2)


POSTGRES_URL = os.environ.get(
    "MODELARIUM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

# Environment variables that must not leak from a developer's shell into tests.
_ISOLATED_ENV = [
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "HF_TOKEN",
    "HF_ENDPOINT",
    "GITHUB_TOKEN",
    "KUBECONFIG",
    "MODELARIUM_CONFIG",
]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """A test that runs the CLI configures logging onto its captured stderr; once pytest closes
    that stream, every later log line in the worker was a "Logging error" on a closed file."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("MODELARIUM_") and name != "MODELARIUM_TEST_POSTGRES_URL":
            monkeypatch.delenv(name, raising=False)
    for name in _ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "admins": ["U_ADMIN", "U_ADMIN2"],
        "message_update_interval": 0.0,
        # Retries are tested, their pauses are not: a failing part or transfer retries at once.
        "s3_retry_backoff": 0.01,
        "download_retry_backoff": 0.01,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


class MakeCore(Protocol):
    def __call__(
        self, settings: Settings, *, clock: Clock | None = None, migrate: bool = True
    ) -> Core: ...


@pytest.fixture
def make_core() -> Iterator[MakeCore]:
    """Build cores as a process does (``Core(settings, clock=clock)``, SystemClock by default),
    migrated unless ``migrate=False``; each one is closed when the test ends, newest first.

    Databases from ``database_url`` are already migrated, so migrating costs one query.
    """
    built: list[Core] = []

    def make(settings: Settings, *, clock: Clock | None = None, migrate: bool = True) -> Core:
        instance = Core(settings, clock=clock)
        built.append(instance)
        if migrate:
            instance.migrate()
        return instance

    yield make
    for instance in reversed(built):
        instance.close()


@pytest.fixture
def core(make_core: MakeCore, settings: Settings, clock: FakeClock) -> Core:
    """A migrated core on the parametrized backend, with a hand-moved clock."""
    return make_core(settings, clock=clock)


@pytest.fixture
def runner(core: Core):
    from modelarium.bot.dispatch import CommandRunner

    return CommandRunner(core)
