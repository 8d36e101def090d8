"""The one error the configuration raises; config imports nothing else of Modelarium."""

from __future__ import annotations


class ConfigError(Exception):
    """A setting has a wrong value, or the config file is unreadable; the message names the
    variable or file in one line, and the process stops before starting anything."""

    def __init__(self, message: str) -> None:
        super().__init__(message.splitlines()[0] if message else message)
