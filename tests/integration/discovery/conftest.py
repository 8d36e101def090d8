"""Discovery end to end: the real Slack front and the terminal fronts against the fake Hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelarium.config import Settings
from tests.conftest import make_settings
from tests.fakes.hf_hub import FakeHub
from tests.fakes.slack import FakeSlack
from tests.integration.slack.conftest import (
    ADMIN_A,
    ADMIN_B,
    ADMIN_C,
    SECRET,
    _workspace_users,
    make_harness,
    slack,
)
from tests.unit.discovery.hubdata import populate

__all__ = ["_workspace_users", "make_harness", "slack"]  # fixtures for pytest


@pytest.fixture
def hub(fake_hub: FakeHub) -> FakeHub:
    populate(fake_hub)
    return fake_hub


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fake_slack: FakeSlack, hub: FakeHub) -> Settings:
    """Slack pointed at FakeSlack, Hugging Face at the fake Hub."""
    return make_settings(
        tmp_path,
        database_url,
        admins=[ADMIN_A, ADMIN_B, ADMIN_C],
        slack_bot_token=fake_slack.token,
        slack_signing_secret=SECRET,
        slack_api_url=fake_slack.api_url,
        host="127.0.0.1",
        port=0,
        slack_retry_attempts=2,
        hf_endpoint=hub.url,
        hub_timeout=2.0,
    )
