"""What a handler knows about the call: who, where, through which front, and the core."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from modelarium.bot.commands.spec import Command
from modelarium.core.app import Core
from modelarium.core.rbac import Role

Front = Literal["slack", "shell", "cmd"]


@dataclass
class CommandContext:
    core: Core
    user: str
    role: Role
    command: Command
    front: Front = "cmd"
    channel: str | None = None
    read_secret: Callable[[str], str] | None = field(default=None, repr=False)
    """Reads a secret without echo (shell prompt, or stdin for ``--api-key -``); None in Slack."""
    command_prefix: str = "/model"

    def usage(self) -> str:
        return self.command.usage(self.command_prefix)
