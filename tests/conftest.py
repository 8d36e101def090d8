"""Shared fixtures: every database test runs on SQLite *and* PostgreSQL.

PostgreSQL is required, not optional: a test run that cannot reach it fails (a skipped
Postgres suite is not a pass). Each test gets its own schema, so tests stay independent and can
run in any order.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from modelarium.config import Settings
from modelarium.core.app import Core
from modelarium.core.clock import FakeClock

pytest_plugins = ["tests.fakes.slack", "tests.fakes.kubernetes"]

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
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("MODELARIUM_") and name != "MODELARIUM_TEST_POSTGRES_URL":
            monkeypatch.delenv(name, raising=False)
    for name in _ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


def _postgres_schema_url() -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required for the test suite and is unreachable: {exc}")
    base = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options=-csearch_path%3D{schema}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'modelarium.db'}"
    else:
        yield from _postgres_schema_url()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema, for tests that only make sense there (SKIP LOCKED races)."""
    yield from _postgres_schema_url()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "admins": ["U_ADMIN", "U_ADMIN2"],
        "message_update_interval": 0.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
def core(settings: Settings, clock: FakeClock) -> Iterator[Core]:
    """A migrated core on the parametrized backend, with a hand-moved clock."""
    instance = Core(settings, clock=clock)
    instance.migrate()
    yield instance
    instance.close()


@pytest.fixture
def runner(core: Core):
    from modelarium.bot.dispatch import CommandRunner

    return CommandRunner(core)
