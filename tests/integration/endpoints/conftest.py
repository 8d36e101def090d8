"""Endpoint tests: a core with short health timeouts, and the fake Ollama/OpenAI servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelarium.config import Settings
from tests.conftest import make_settings

OWNER = "U_OWNER"
OTHER = "U_OTHER"
ADMIN = "U_ADMIN"
KEY = "sk-test-0123456789abcdef"

TIMEOUT = 1.0
"""Short, so tests of hanging endpoints are quick; a healthy local fake answers in milliseconds,
but a loaded CI machine has taken over 0.5 s."""


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        health_timeout=TIMEOUT,
        health_fail_threshold=3,
        health_recover_threshold=2,
        health_history=5,
        endpoint_cooldown=60.0,
        endpoint_allowlist=["127.0.0.0/8"],  # the fake servers listen on loopback
    )
