"""The real Slack front (bolt + Starlette + uvicorn) on a free port, talking to FakeSlack.

Tests act as Slack: they sign requests with :class:`SlackRequestSigner` and POST them to the
running server; the bot answers through the real ``slack_sdk`` clients pointed at the fake.
Everything runs on SQLite and PostgreSQL (the ``settings`` fixture is parametrized).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from modelarium.bot.dispatch import CommandRunner
from modelarium.bot.slack.app import SlackFront
from modelarium.config import Settings
from modelarium.core.app import Core
from modelarium.entrypoints.web import BotServer
from tests.conftest import make_settings
from tests.fakes.slack import FakeSlack, HttpReply, SlackInbound, SlackRequestSigner

SECRET = "integration-signing-secret"
CHANNEL = "C0GENERAL"
ADMIN_A = "U0ADMINA"
ADMIN_B = "U0ADMINB"
ADMIN_C = "U0ADMINC"
VIEWER = "U0VIEWER"
BOB = "U0BOB"


def slack_settings(
    tmp_path: Path, database_url: str, fake_slack: FakeSlack, **overrides: Any
) -> Settings:
    """Slack enabled, pointed at the fake; three bootstrap admins."""
    values: dict[str, Any] = {
        "admins": [ADMIN_A, ADMIN_B, ADMIN_C],
        "slack_bot_token": fake_slack.token,
        "slack_signing_secret": SECRET,
        "slack_api_url": fake_slack.api_url,
        "host": "127.0.0.1",
        "port": 0,
        "slack_retry_attempts": 2,
    }
    return make_settings(tmp_path, database_url, **{**values, **overrides})


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fake_slack: FakeSlack) -> Settings:
    """Slack enabled, pointed at the fake; three bootstrap admins."""
    return slack_settings(tmp_path, database_url, fake_slack)


@pytest.fixture(autouse=True)
def _workspace_users(fake_slack: FakeSlack) -> None:
    for user, name in (
        (ADMIN_A, "alice"),
        (ADMIN_B, "bea"),
        (ADMIN_C, "carl"),
        (VIEWER, "vic"),
        (BOB, "bob"),
    ):
        fake_slack.add_user(user, name)


class Harness:
    """The running bot plus helpers to act as Slack and wait for the bot's answers."""

    def __init__(self, bot: BotServer, fake: FakeSlack, core: Core) -> None:
        self.bot = bot
        self.fake = fake
        self.core = core
        self.signer = SlackRequestSigner(SECRET)

    @property
    def url(self) -> str:
        return self.bot.events_url

    def post(
        self,
        request: SlackInbound | bytes,
        *,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
        wait: bool = True,
    ) -> HttpReply:
        reply = self.signer.post(self.url, request, timestamp=timestamp, headers=headers)
        if wait:
            self.drain()
        return reply

    def drain(self) -> None:
        assert self.bot.front.drain(15), "background work did not finish"

    def command(self, text: str, user: str = ADMIN_A, channel: str = CHANNEL) -> HttpReply:
        return self.post(self.fake.slash_command("/model", text, user_id=user, channel_id=channel))

    def click(self, action_id: str, user: str, **kwargs: Any) -> HttpReply:
        return self.post(self.fake.block_actions(action_id, user_id=user, **kwargs))

    def deliver(self) -> None:
        self.bot.deliver_once()

    def last_response(self) -> Any:
        responses = self.fake.responses()
        assert responses, "the bot answered nothing on a response_url"
        return responses[-1]

    def card(self, channel: str = CHANNEL) -> Any:
        """The newest message in ``channel`` that has buttons."""
        for message in reversed(self.fake.messages(channel)):
            if any(b.get("type") == "actions" for b in message.blocks or []):
                return message
        raise AssertionError(f"no card with buttons in {channel}")

    def action_id(self, message: Any, label: str) -> str:
        for block in message.blocks or []:
            for element in block.get("elements") or []:
                if element.get("type") == "button" and element["text"]["text"] == label:
                    return str(element["action_id"])
        raise AssertionError(f"no button {label!r}")


@pytest.fixture
def make_harness(core: Core, fake_slack: FakeSlack) -> Iterator[Callable[..., Harness]]:
    started: list[BotServer] = []

    def make(runner: CommandRunner | None = None) -> Harness:
        # No "looking up" notes unless a test asks for them (slow_answer): a loaded CI machine
        # must not add messages to tests that count them.
        front = SlackFront(core, runner=runner, slow_answer=30.0)
        bot = BotServer(core, front=front, deliver_outbox=False)
        bot.start()
        started.append(bot)
        return Harness(bot, fake_slack, core)

    yield make
    for bot in started:
        bot.stop()


@pytest.fixture
def slack(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()


def payload_of(request: SlackInbound) -> dict[str, Any]:
    return json.loads(parse_qs(request.body.decode())["payload"][0])


def shown(item: Any) -> str:
    """Everything a person would read in a message/response (blocks and text), unescaped."""
    blocks = getattr(item, "blocks", None)
    if blocks is None and isinstance(item, dict):
        blocks = item.get("blocks")
    parts = [str(getattr(item, "text", "") or "")]
    for block in blocks or []:
        texts = [block.get("text"), *(block.get("fields") or [])]
        texts += [
            e for e in block.get("elements") or [] if e.get("type") in ("mrkdwn", "plain_text")
        ]
        texts += [e.get("text") for e in block.get("elements") or [] if e.get("type") == "button"]
        parts += [t["text"] for t in texts if isinstance(t, dict) and "text" in t]
    return html.unescape("\n".join(parts))
