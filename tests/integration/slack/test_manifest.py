"""The Slack app manifest asks for what the bot uses, at the one path the bot serves."""

from __future__ import annotations

from pathlib import Path

import yaml

from modelarium.bot.slack.server import EVENTS_PATH
from modelarium.config import Settings

MANIFEST = Path(__file__).resolve().parents[3] / "deploy" / "slack-app-manifest.yaml"


def test_manifest() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == Settings.model_fields["slack_command"].default
    assert command["should_escape"] is True
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "commands",
        "chat:write",
        "chat:write.public",
        "users:read",
        "usergroups:read",
        "im:write",
        "files:write",
    }
    settings = manifest["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == {"app_home_opened", "app_mention"}
    assert settings["interactivity"]["is_enabled"] is True
    urls = [
        command["url"],
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
    ]
    assert all(url == f"https://YOUR-HOST{EVENTS_PATH}" for url in urls)
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
