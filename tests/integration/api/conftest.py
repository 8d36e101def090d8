"""The HTTP API on the bot's real port: BotServer (Slack front + /api/v1) on a free port,
FakeSlack for the Slack side, the fake Hugging Face Hub for installs, httpx as the client.

Everything runs on SQLite and PostgreSQL (the ``settings`` fixture is parametrized).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelarium.bot.api import ApiFront
from modelarium.bot.dispatch import CommandRunner
from modelarium.bot.slack.app import SlackFront
from modelarium.config import Settings
from modelarium.core.app import Core
from modelarium.entrypoints.web import BotServer
from tests.conftest import make_settings
from tests.fakes.hf_hub import FakeHub
from tests.fakes.slack import FakeSlack
from tests.integration.slack.conftest import (
    ADMIN_A,
    ADMIN_B,
    ADMIN_C,
    BOB,
    CHANNEL,
    SECRET,
    VIEWER,
    Harness,
    _workspace_users,
)
from tests.unit.weights.helpers import MiB, location_settings

__all__ = [
    "ADMIN_A",
    "ADMIN_B",
    "ADMIN_C",
    "BOB",
    "CHANNEL",
    "VIEWER",
    "_workspace_users",
]


@pytest.fixture
def settings(
    tmp_path: Path, database_url: str, fake_slack: FakeSlack, fake_hub: FakeHub
) -> Settings:
    """Slack enabled (pointed at the fake), the fake Hub, one small location, no rate limit."""
    return make_settings(
        tmp_path,
        database_url,
        admins=[ADMIN_A, ADMIN_B, ADMIN_C],
        slack_bot_token=fake_slack.token,
        slack_signing_secret=SECRET,
        slack_api_url=fake_slack.api_url,
        host="127.0.0.1",
        port=0,
        notify_default_channel=CHANNEL,
        hf_endpoint=fake_hub.url,
        storage_locations=location_settings(tmp_path / "weights"),
        install_approval_threshold=4 * MiB,
        download_concurrency=2,
        api_rate_limit=0,
    )


class Api:
    """The running bot (``slack``: the Slack side) plus an httpx client for ``/api/v1``."""

    def __init__(self, slack: Harness, runner: CommandRunner) -> None:
        self.slack = slack
        self.core = slack.core
        self.runner = runner
        self.url = slack.bot.api_url
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def token(self, user: str = ADMIN_A, scopes: str = "admin", name: str | None = None) -> str:
        """A new API token of ``user`` (created the way a person would, with the command)."""
        name = name or f"t{len(self.core.tokens.list(None, include_revoked=True)) + 1}"
        reply = self.runner.execute(f"token create {name} --scope {scopes}", user=user)
        assert reply.ok, reply.text
        return str(reply.data["token"])

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def command(self, token: str, text: str, **body: Any) -> httpx.Response:
        return self.http.post("/commands", json={"text": text, **body}, headers=self.auth(token))

    def get(self, path: str, token: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params, headers=self.auth(token))

    def post(self, path: str, token: str, json: Any = None) -> httpx.Response:
        return self.http.post(path, json=json, headers=self.auth(token))


@pytest.fixture
def make_api(core: Core, fake_slack: FakeSlack) -> Iterator[Callable[..., Api]]:
    """Start a BotServer; keyword arguments override settings the API reads at start."""
    started: list[tuple[BotServer, Api]] = []

    def make(**overrides: Any) -> Api:
        if overrides:
            core.settings = core.settings.model_copy(update=overrides)
        runner = CommandRunner(core)
        bot = BotServer(
            core, front=SlackFront(core, runner=runner), api=ApiFront(core), deliver_outbox=False
        )
        bot.start()
        api = Api(Harness(bot, fake_slack, core), runner)
        started.append((bot, api))
        return api

    yield make
    for bot, api in started:
        api.http.close()
        bot.stop()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()
