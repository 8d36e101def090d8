"""Settings: sources, precedence, one-line errors naming the variable, redacted display."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelarium.config import ConfigError, load_settings
from modelarium.entrypoints.cli import describe_settings, main


def test_defaults_are_the_embedded_setup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loaded = load_settings()
    settings = loaded.settings
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'var' / 'modelarium.db'}"
    assert [loc.name for loc in settings.locations] == ["default"]
    assert settings.locations[0].path == Path("var") / "weights"
    assert not settings.slack_enabled
    assert set(loaded.origins.values()) == {"default"}


def test_env_and_ecosystem_names(monkeypatch):
    monkeypatch.setenv("MODELARIUM_ADMINS", "U1, U2")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-123-abc")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/")
    monkeypatch.setenv("MODELARIUM_HUB_SEARCH_TTL", "15m")
    monkeypatch.setenv(
        "MODELARIUM_STORAGE_LOCATIONS",
        '[{"name": "venus", "path": "/mnt/venus", "capacity": "2TiB"}]',
    )
    loaded = load_settings()
    s = loaded.settings
    assert s.admins == ["U1", "U2"]
    assert s.slack_bot_token is not None
    assert s.slack_bot_token.get_secret_value() == "xoxb-123-abc"
    assert s.hub_search_ttl == 900
    assert s.locations[0].capacity == 2 * 1024**4
    assert loaded.origins["slack_bot_token"] == "env SLACK_BOT_TOKEN"
    assert loaded.origins["admins"] == "env MODELARIUM_ADMINS"


def test_config_file_toml_with_groups_and_env_wins(tmp_path, monkeypatch):
    path = tmp_path / "modelarium.toml"
    path.write_text(
        'log_level = "debug"\n[database]\nurl = "sqlite:////tmp/x.db"\n[hub]\nsearch_ttl = "2m"\n'
    )
    monkeypatch.setenv("MODELARIUM_CONFIG", str(path))
    monkeypatch.setenv("MODELARIUM_LOG_LEVEL", "warning")
    loaded = load_settings()
    assert loaded.settings.hub_search_ttl == 120
    assert loaded.settings.log_level == "warning"
    assert loaded.origins["log_level"].startswith("env")
    assert loaded.origins["hub_search_ttl"] == f"file {path}"
    assert loaded.origins["database_url"] == f"file {path}"


def test_yaml_config_file(tmp_path, monkeypatch):
    path = tmp_path / "m.yaml"
    path.write_text("slack:\n  command: /llm\nschedule:\n  health_checks: 30s\n")
    monkeypatch.setenv("MODELARIUM_CONFIG", str(path))
    settings = load_settings().settings
    assert settings.slack_command == "/llm"
    assert settings.schedule_health_checks == 30


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("MODELARIUM_DATABASE_URL", "nonsense", "MODELARIUM_DATABASE_URL: not a database URL"),
        (
            "MODELARIUM_HUB_SEARCH_TTL",
            "-5",
            "MODELARIUM_HUB_SEARCH_TTL: duration must not be negative",
        ),
        ("MODELARIUM_PORT", "99999", "MODELARIUM_PORT: "),
        ("MODELARIUM_DEFAULT_ROLE", "king", "MODELARIUM_DEFAULT_ROLE: "),
        ("HF_ENDPOINT", "ftp://x", "HF_ENDPOINT: must be an http:// or https:// URL"),
        ("MODELARIUM_STORAGE_LOCATIONS", "[{", "MODELARIUM_STORAGE_LOCATIONS: expected JSON"),
        (  # issue 13, item 8: a group would make admins without the two-person rule
            "MODELARIUM_GROUP_ROLES",
            '{"S0OPS": "operator", "S0ALL": "admin"}',
            "MODELARIUM_GROUP_ROLES: S0ALL may not be mapped to admin",
        ),
        (
            "MODELARIUM_ENDPOINT_ALLOWLIST",
            "10.0.0.0/33",
            "MODELARIUM_ENDPOINT_ALLOWLIST: '10.0.0.0/33' is not a CIDR range",
        ),
    ],
)
def test_bad_values_give_one_line_naming_the_variable(monkeypatch, env, value, expected):
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_bad_setting_exits_nonzero_with_one_line(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "MODELARIUM_DATABASE_URL": "nonsense",
        "MODELARIUM_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "modelarium", "config", "show"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=Path(__file__).parents[3],
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: MODELARIUM_DATABASE_URL: not a database URL")
    assert "Traceback" not in result.stderr


def test_config_show_redacts_secrets_and_names_sources(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MODELARIUM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-super-secret-token")
    monkeypatch.setenv("MODELARIUM_DATABASE_URL", "postgresql://app:hunter2@db:5432/m")
    monkeypatch.setenv(
        "MODELARIUM_WEBHOOKS",
        '[{"name": "pd", "url": "https://h.example/x", "secret": "s3cr3t-value"}]',
    )
    assert main(["config", "show", "--json"]) == 0
    out = capsys.readouterr().out
    assert "xoxb-super-secret-token" not in out
    assert "hunter2" not in out
    assert "s3cr3t-value" not in out
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["slack_bot_token"]["value"] == "********"
    assert rows["slack_bot_token"]["source"] == "env SLACK_BOT_TOKEN"
    assert rows["database_url"]["value"].startswith("postgresql://app:")
    assert rows["hub_search_ttl"]["source"] == "default"
    # every field is listed, each with its env variable
    from modelarium.config import Settings

    assert set(Settings.model_fields) <= set(rows)
    assert all(row["env"] for row in describe_settings(load_settings()))
