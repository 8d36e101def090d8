"""Socket Mode: the real bolt SocketModeHandler (slack_sdk's builtin client) against FakeSlack's
``apps.connections.open`` and its WebSocket side, with no public HTTP endpoint involved."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelarium.config import Settings
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
    """As the HTTP tests' settings, plus an app-level token: the bot connects out instead."""
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
def link(fake_slack: FakeSlack) -> SocketModeServer:
    return fake_slack.enable_socket_mode()


@pytest.fixture
def socket_bot(link: SocketModeServer, make_harness) -> Harness:  # type: ignore[no-untyped-def]
    harness = make_harness()
    assert harness.bot.mode == "socket_mode"
    link.wait_connected()
    return harness


def test_a_slash_command_is_acked_on_the_socket_and_answered_once(
    socket_bot: Harness, link: SocketModeServer, fake_slack: FakeSlack
) -> None:
    (opened,) = fake_slack.calls("apps.connections.open")
    assert opened.ok and opened.headers["authorization"] == f"Bearer {fake_slack.app_token}"

    command = fake_slack.slash_command("/model", "help", user_id=VIEWER, channel_id=CHANNEL)
    envelope = link.send_envelope("slash_commands", dict(command.fields))
    assert link.wait_ack(envelope) == {"envelope_id": envelope}
    socket_bot.drain()
    (answer,) = fake_slack.responses(command.response_url)
    assert answer.status == 200 and answer.response_type == "ephemeral"
    assert "/model help" in shown(answer)
    assert "role grant" not in shown(answer)  # the viewer's own help

    # Slack redelivers the same envelope (no ack seen in time): acked again, not run again
    link.send_envelope(
        "slash_commands",
        dict(command.fields),
        envelope_id=envelope,
        retry_attempt=1,
        retry_reason="timeout",
    )
    link.wait_ack(envelope)
    socket_bot.drain()
    assert len(fake_slack.responses(command.response_url)) == 1


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
    link.wait_ack(link.send_envelope("interactive", click.payload))
    socket_bot.drain()
    assert socket_bot.core.rbac.role_of(BOB) == Role.ADMIN
    assert socket_bot.last_response().replace_original


def test_refresh_requested_reconnects_and_commands_keep_working(
    socket_bot: Harness, link: SocketModeServer, fake_slack: FakeSlack
) -> None:
    link.disconnect("refresh_requested")
    link.wait_connected(count=2)
    assert len([c for c in fake_slack.calls("apps.connections.open") if c.ok]) == 2

    command = fake_slack.slash_command("/model", "help", user_id=VIEWER, channel_id=CHANNEL)
    link.wait_ack(link.send_envelope("slash_commands", dict(command.fields)))
    socket_bot.drain()
    assert len(fake_slack.responses(command.response_url)) == 1


def test_only_an_app_level_token_opens_a_connection(fake_slack: FakeSlack) -> None:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    fake_slack.enable_socket_mode()
    bot = WebClient(token=fake_slack.token, base_url=fake_slack.api_url)
    with pytest.raises(SlackApiError) as refused:
        bot.apps_connections_open(app_token=fake_slack.token)
    assert refused.value.response["error"] == "not_allowed_token_type"
    opened = bot.apps_connections_open(app_token=fake_slack.app_token)
    assert str(opened["url"]).startswith("ws://127.0.0.1:")
