"""Weights tests: a fake hub, and settings that point the core at it and at a small location."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelarium.config import Settings
from tests.conftest import make_settings
from tests.fakes.hf_hub import FakeHub
from tests.unit.weights.helpers import MiB, location_settings


@pytest.fixture
def hub(fake_hub: FakeHub) -> FakeHub:
    return fake_hub


@pytest.fixture
def weights_root(tmp_path: Path) -> Path:
    return tmp_path / "weights"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, hub: FakeHub, weights_root: Path) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        hf_endpoint=hub.url,
        storage_locations=location_settings(weights_root),
        install_approval_threshold=256 * MiB,
        purge_approval_threshold=64 * MiB,
        download_concurrency=2,
    )
