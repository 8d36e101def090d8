"""The real Slack front (the harness of tests/integration/slack) beside the fake OpenAI server."""

from __future__ import annotations

from tests.integration.slack.conftest import (  # noqa: F401  (fixtures, re-exported)
    _workspace_users,
    make_harness,
    settings,
    slack,
)
