"""Shared fixtures: the real config.json files under tests/data/configs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.fit.data import read_config


@pytest.fixture
def load_config() -> Callable[[str], dict[str, Any]]:
    return read_config
