"""The HTTP API front (``/api/v1``): the same commands for scripts and CI, with API tokens."""

from modelarium.bot.api.app import PREFIX, ApiFront

__all__ = ["PREFIX", "ApiFront"]
