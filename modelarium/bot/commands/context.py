"""What a handler knows about the call: who, where, through which front, and the core."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from modelarium.bot.commands.spec import Command
from modelarium.core.app import Core
from modelarium.core.rbac import Role

Front = Literal["slack", "shell", "cmd", "api"]


@dataclass(frozen=True)
class FrontTraits:
    """What a front can do, so handlers ask about abilities instead of naming fronts."""

    remote: bool
    """The caller is not on the bot's machine: ``--file`` would name *our* files."""
    forms: bool
    """It can show a form with multi-line and secret fields (a Slack modal)."""
    where: str
    """How to say where the caller is, in a sentence ("in Slack")."""


TRAITS: dict[str, FrontTraits] = {
    "slack": FrontTraits(remote=True, forms=True, where="in Slack"),
    "api": FrontTraits(remote=True, forms=False, where="over the HTTP API"),
    "shell": FrontTraits(remote=False, forms=False, where="in the shell"),
    "cmd": FrontTraits(remote=False, forms=False, where="in `modelarium cmd`"),
}


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

    @property
    def traits(self) -> FrontTraits:
        return TRAITS[self.front]

    @property
    def remote(self) -> bool:
        """The caller is elsewhere (Slack, the HTTP API): paths name files on *our* machine."""
        return self.traits.remote
