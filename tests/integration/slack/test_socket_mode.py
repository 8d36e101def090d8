"""Socket Mode: the real bolt SocketModeHandler (slack_sdk's builtin client) against FakeSlack's
``apps.connections.open`` and its WebSocket side, with no public HTTP endpoint involved.

Envelope payloads are built by the same FakeSlack builders as the HTTP tests, so a command or
click carries exactly the fields it would over HTTP (the form fields become a JSON object).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelarium.config import Settings
from modelarium.core.jobs import WorkerPool
from modelarium.core.rbac import Role
from tests.conftest import make_settings
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_socket import SocketModeServer
from tests.integration.slack.conftest import (
    ADMIN_A,
    ADMIN_B,
    ADMIN_C,
    BOB,
    CHANNEL,
    VIEWER,
    Harness,
    shown,
)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fake_slack: FakeSlack) -> Settings:
    """As the HTTP tests' settings, but an app-level token and no signing secret: the bot
    connects out, and Socket Mode requests are not signed."""
    return make_settings(
        tmp_path,
        database_url,
        admins=[ADMIN_A, ADMIN_B, ADMIN_C],
        slack_bot_token=fake_slack.token,
        slack_app_token=fake_slack.app_token,
        slack_api_url=fake_slack.api_url,
        host="127.0.0.1",
        port=0,
        slack_retry_attempts=2,
    )


@pytest.fixture
def link(fake_slack: FakeSlack) -> Iterator[SocketModeServer]:
    """The WebSocket side; fails the test on any protocol violation by the client."""
    server = fake_slack.enable_socket_mode()
    yield server
    assert server.errors == []


@pytest.fixture
def socket_bot(link: SocketModeServer, make_harness: Callable[..., Harness]) -> Harness:
    harness = make_harness()
    assert harness.bot.mode == "socket_mode"
    link.wait_connected()
    return harness


def _slack_health(bot: Harness) -> dict[str, object]:
    with urllib.request.urlopen(bot.bot.url + "/healthz", timeout=5) as response:
        return dict(json.load(response)["checks"]["slack"])


def test_a_slash_command_is_acked_on_the_socket_and_answered(
    socket_bot: Harness, link: SocketModeServer, fake_slack: FakeSlack
) -> None:
    (opened,) = fake_slack.calls("apps.connections.open")
    assert opened.ok and opened.headers["authorization"] == f"Bearer {fake_slack.app_token}"

    command = fake_slack.slash_command("/model", "help", user_id=VIEWER, channel_id=CHANNEL)
    envelope = link.send_envelope("slash_commands", dict(command.fields))
    assert link.wait_ack(envelope) == {"envelope_id": envelope}  # an empty ack, at once
    socket_bot.drain()
    (answer,) = fake_slack.responses(command.response_url)
    assert answer.status == 200 and answer.payload.get("response_type") == "ephemeral"
    assert "/model help" in shown(answer)
    assert "role grant" not in shown(answer)  # the viewer's own help

    # keep-alive both ways: the client pings on connect, and answers Slack's pings
    assert link.pings_received >= 1
    assert link.wait_for(lambda: link.pongs_received >= 1)
    assert _slack_health(socket_bot) == {"ok": True, "detail": "socket mode connected"}


def test_a_redelivered_command_runs_once(
    socket_bot: Harness, link: SocketModeServer, fake_slack: FakeSlack
) -> None:
    command = fake_slack.slash_command(
        "/model", "role grant <@U0BOB|bob> operator", user_id=ADMIN_A, channel_id=CHANNEL
    )
    for attempt in (0, 1, 2):  # Slack retries when it saw no ack in time
        envelope = link.send_envelope(
            "slash_commands",
            dict(command.fields),
            retry_attempt=attempt,
            retry_reason="timeout" if attempt else "",
        )
        assert link.wait_ack(envelope) == {"envelope_id": envelope}  # each delivery is acked
    socket_bot.drain()
    assert len(fake_slack.responses(command.response_url)) == 1
    assert len(socket_bot.core.audit.query(action="command.role.grant", limit=10)) == 1
    assert socket_bot.core.rbac.role_of(BOB) == Role.OPERATOR


def test_a_button_click_arrives_as_an_interactive_envelope(
    socket_bot: Harness, link: SocketModeServer, fake_slack: FakeSlack
) -> None:
    command = fake_slack.slash_command(
        "/model", "role grant <@U0BOB|bob> admin", user_id=ADMIN_A, channel_id=CHANNEL
    )
    link.wait_ack(link.send_envelope("slash_commands", dict(command.fields)))
    socket_bot.drain()
    socket_bot.deliver()
    card = socket_bot.card()
    click = fake_slack.block_actions(socket_bot.action_id(card, "Approve"), user_id=ADMIN_B)
    assert click.payload is not None
    envelope = link.send_envelope("interactive", click.payload)
    assert link.wait_ack(envelope) == {"envelope_id": envelope}
    socket_bot.drain()
    (answer,) = fake_slack.responses(click.response_url)
    assert answer.payload.get("replace_original") and "queued" in shown(answer)
    assert WorkerPool(socket_bot.core.jobs, size=0).run_one().status == "succeeded"
    assert socket_bot.core.rbac.role_of(BOB) == Role.ADMIN


def test_a_redelivered_event_runs_once(
    socket_bot: Harness, link: SocketModeServer, fake_slack: FakeSlack
) -> None:
    event = fake_slack.event(
        {
            "type": "app_mention",
            "user": ADMIN_A,
            "channel": CHANNEL,
            "ts": "1700000000.000100",
            "text": "<@U0BOT> role grant <@U0BOB|bob> operator",
        }
    )
    assert event.payload is not None
    for attempt in (0, 1):
        envelope = link.send_envelope(
            "events_api",
            event.payload,
            retry_attempt=attempt,
            retry_reason="timeout" if attempt else "",
        )
        assert link.wait_ack(envelope) == {"envelope_id": envelope}
    socket_bot.drain()
    assert len(socket_bot.core.audit.query(action="command.role.grant", limit=10)) == 1
    assert len(fake_slack.ephemerals(CHANNEL, ADMIN_A)) == 1


def test_refresh_requested_reconnects_and_commands_keep_working(
    socket_bot: Harness, link: SocketModeServer, fake_slack: FakeSlack
) -> None:
    link.disconnect("refresh_requested")
    link.wait_connected(count=2)
    opened = fake_slack.calls("apps.connections.open")
    assert [c.ok for c in opened] == [True, True]  # a fresh URL, not the old one reused
    assert opened[0].response["url"] != opened[1].response["url"]
    assert link.wait_for(lambda: link.connected == 1)  # Slack dropped the old link

    command = fake_slack.slash_command("/model", "help", user_id=VIEWER, channel_id=CHANNEL)
    envelope = link.send_envelope("slash_commands", dict(command.fields))
    assert link.wait_ack(envelope) == {"envelope_id": envelope}
    socket_bot.drain()
    assert len(fake_slack.responses(command.response_url)) == 1
    assert _slack_health(socket_bot)["detail"] == "socket mode connected"


def test_only_an_app_level_token_opens_a_connection(fake_slack: FakeSlack) -> None:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    fake_slack.enable_socket_mode()
    bot = WebClient(token=fake_slack.token, base_url=fake_slack.api_url)
    with pytest.raises(SlackApiError) as refused:
        bot.apps_connections_open(app_token=fake_slack.token)
    assert refused.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as wrong_type:  # and an app token is not a bot token
        WebClient(token=fake_slack.app_token, base_url=fake_slack.api_url).auth_test()
    assert wrong_type.value.response["error"] == "not_allowed_token_type"
    opened = bot.apps_connections_open(app_token=fake_slack.app_token)
    assert str(opened["url"]).startswith("ws://127.0.0.1:")
