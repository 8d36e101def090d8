"""Reading the optional configuration file (``MODELARIUM_CONFIG``): TOML or YAML.

The file may use flat keys (``database_url = ...``) or one level of group tables
(``[database] url = ...``); both map to the same flat field names as the environment.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from modelarium.config.errors import ConfigError


class ConfigFileError(ConfigError):
    """The configuration file is missing or malformed."""


def read_config_file(
    path: Path, fields: Mapping[str, Any], field_group: Callable[[str], str]
) -> dict[str, Any]:
    """Flat setting values from a TOML/YAML file; ``[group]`` tables name a setting's group."""
    if not path.is_file():
        raise ConfigFileError(f"MODELARIUM_CONFIG: no such file: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in {".yaml", ".yml"}:
            raw = yaml.safe_load(text) or {}
        else:
            raw = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0]
        raise ConfigFileError(f"MODELARIUM_CONFIG: {path} is not valid: {first}") from None
    if not isinstance(raw, dict):
        raise ConfigFileError(f"MODELARIUM_CONFIG: {path} must hold a table of settings")

    flat: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_").lower()
        if name in fields:
            flat[name] = value
            continue
        if isinstance(value, dict):
            for sub_key, sub_value in value.items():
                sub = sub_key.replace("-", "_").lower()
                candidate = sub if sub in fields and field_group(sub) == name else f"{name}_{sub}"
                if candidate not in fields:
                    raise ConfigFileError(f"{path}: unknown setting [{key}] {sub_key}")
                flat[candidate] = sub_value
            continue
        raise ConfigFileError(f"{path}: unknown setting {key!r}")
    return flat
