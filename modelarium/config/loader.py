"""Building :class:`Settings` with one-line errors and a record of where each value came from."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
from pydantic import SecretStr
from pydantic_settings import EnvSettingsSource

from modelarium.config.errors import ConfigError
from modelarium.config.files import read_config_file
from modelarium.config.settings import Settings, field_group

_ECOSYSTEM_NAMES = {
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_app_token": "SLACK_APP_TOKEN",
    "hf_endpoint": "HF_ENDPOINT",
    "hf_token": "HF_TOKEN",
    "kubeconfig": "KUBECONFIG",
    "github_token": "GITHUB_TOKEN",
}


def env_name(field: str) -> str:
    """The environment variable an operator sets for ``field``."""
    return _ECOSYSTEM_NAMES.get(field, f"MODELARIUM_{field.upper()}")


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    origins: dict[str, str]
    """field -> "default" | "file <path>" | "env <NAME>"."""


def load_settings(**overrides: Any) -> LoadedSettings:
    """Settings from defaults < file < env < ``overrides``; raise :class:`ConfigError` if wrong."""
    config_path = os.environ.get("MODELARIUM_CONFIG")
    try:
        settings = Settings(**overrides)
    except pydantic.ValidationError as exc:
        raise ConfigError(_first_error_line(exc, config_path)) from None
    return LoadedSettings(settings, _origins(config_path, overrides))


def _origins(config_path: str | None, overrides: dict[str, Any]) -> dict[str, str]:
    env_values = EnvSettingsSource(Settings)()
    file_values = (
        read_config_file(Path(config_path), Settings.model_fields, field_group)
        if config_path
        else {}
    )
    origins: dict[str, str] = {}
    for name in Settings.model_fields:
        if name in overrides:
            origins[name] = "argument"
        elif name in env_values:
            origins[name] = f"env {_present_env_name(name)}"
        elif name in file_values:
            origins[name] = f"file {config_path}"
        else:
            origins[name] = "default"
    return origins


def _present_env_name(field: str) -> str:
    candidates = [f"MODELARIUM_{field.upper()}"]
    if field in _ECOSYSTEM_NAMES:
        candidates.insert(0, _ECOSYSTEM_NAMES[field])
    upper_env = {key.upper() for key in os.environ}
    return next((c for c in candidates if c in upper_env), candidates[0])


def _first_error_line(exc: pydantic.ValidationError, config_path: str | None) -> str:
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    field = loc[0] if loc else "?"
    if field not in Settings.model_fields:
        # An alias was reported (e.g. "slack_bot_token" arrives as itself); map back if we can.
        field = next((n for n in Settings.model_fields if n == field.lower()), field)
    where = env_name(field) if field in Settings.model_fields else field.upper()
    if (
        field in Settings.model_fields
        and field not in EnvSettingsSource(Settings)()
        and config_path
    ):
        where = f"{field} (in {config_path})"
    detail = ".".join(loc[1:])
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    shown = "" if field_group(field) == "security" or _looks_secret(field) else _short(value)
    return f"{where}{'.' + detail if detail else ''}: {message}{shown}"


def _looks_secret(field: str) -> bool:
    info = Settings.model_fields.get(field)
    return info is not None and "SecretStr" in str(info.annotation)


def _short(value: Any) -> str:
    if value is None or isinstance(value, dict | list | SecretStr):
        return ""
    text = str(value)
    return f" (got {text[:60]!r})"
