"""Settings: every tunable in one typed place (env ``MODELARIUM_*``, optional config file)."""

from modelarium.config.loader import ConfigError, LoadedSettings, env_name, load_settings
from modelarium.config.settings import Settings, StorageLocation

__all__ = [
    "ConfigError",
    "LoadedSettings",
    "Settings",
    "StorageLocation",
    "env_name",
    "load_settings",
]
