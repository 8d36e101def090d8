"""The real Slack front (the harness of tests/integration/slack) beside the fake OpenAI server."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelarium.config import Settings
from tests.fakes.slack import FakeSlack
from tests.integration.slack.conftest import (  # noqa: F401  (fixtures, re-exported)
    _workspace_users,
    make_harness,
    slack,
    slack_settings,
)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fake_slack: FakeSlack) -> Settings:
    """The Slack harness's settings; the fake OpenAI server listens on loopback (allowed here)."""
    return slack_settings(tmp_path, database_url, fake_slack, endpoint_allowlist=["127.0.0.0/8"])
