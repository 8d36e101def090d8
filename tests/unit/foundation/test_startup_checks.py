"""Server processes check their required settings before touching anything (issue 14, item 17).

`modelarium bot` on an empty data directory used to create the database and the secrets file
and print a dozen log lines before saying SLACK_BOT_TOKEN was missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelarium.entrypoints.cli import EXIT_USAGE, main


@pytest.mark.parametrize(
    ("command", "env", "says"),
    [
        ("bot", {}, "SLACK_BOT_TOKEN is not set"),
        ("bot", {"SLACK_SIGNING_SECRET": "s3cret"}, "SLACK_BOT_TOKEN is not set"),
        ("bot", {"SLACK_BOT_TOKEN": "xoxb-1-2-abc"}, "SLACK_SIGNING_SECRET is not set"),
        ("up", {"SLACK_BOT_TOKEN": "xoxb-1-2-abc"}, "SLACK_SIGNING_SECRET is not set"),
        ("up", {"SLACK_APP_TOKEN": "xapp-1-2"}, "SLACK_APP_TOKEN set but SLACK_BOT_TOKEN is not"),
        (
            "daemon",
            {"SLACK_SIGNING_SECRET": "s3cret"},
            "SLACK_SIGNING_SECRET set but SLACK_BOT_TOKEN is not",
        ),
    ],
)
def test_one_line_and_exit_2_before_the_data_dir_is_touched(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    command: str,
    env: dict[str, str],
    says: str,
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("MODELARIUM_DATA_DIR", str(data))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main([command, "--port", "0"]) == EXIT_USAGE
    out, err = capfd.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: {says}"), err
    assert not data.exists(), sorted(p.name for p in data.rglob("*"))
    for value in env.values():
        assert value not in err  # names the setting, never its value


def test_a_complete_slack_configuration_passes_the_check() -> None:
    from modelarium.config import Settings
    from modelarium.entrypoints.cli import missing_settings

    socket = Settings(slack_bot_token="xoxb-1", slack_app_token="xapp-1")  # type: ignore[arg-type]
    http = Settings(slack_bot_token="xoxb-1", slack_signing_secret="s")  # type: ignore[arg-type]
    for command in ("bot", "up", "daemon"):
        assert missing_settings(command, socket) is None
        assert missing_settings(command, http) is None
    assert missing_settings("up", Settings()) is None  # the terminal shell and the daemon
    assert missing_settings("daemon", Settings()) is None
