"""How a command declares itself: path, arguments, flags, role, help and examples."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelarium.core.rbac import Role


@dataclass(frozen=True)
class Arg:
    name: str
    help: str = ""
    type: Callable[[str], Any] = str
    required: bool = True
    rest: bool = False
    """Swallow the remaining positional words (joined by spaces), e.g. search text."""
    choices: tuple[str, ...] | None = None

    @property
    def key(self) -> str:
        return self.name.replace("-", "_")


@dataclass(frozen=True)
class Flag:
    name: str
    help: str = ""
    type: Callable[[str], Any] | None = str
    """``None`` makes a switch (``--force``)."""
    default: Any = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    repeat: bool = False

    @property
    def key(self) -> str:
        return self.name.replace("-", "_")

    @property
    def is_switch(self) -> bool:
        return self.type is None


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]
    handler: Callable[..., Any]
    help: str
    role: Role = Role.VIEWER
    args: tuple[Arg, ...] = ()
    flags: tuple[Flag, ...] = ()
    examples: tuple[str, ...] = ()
    audit: bool = True
    """Record in the audit log; read-only listings may opt out to keep the log meaningful."""
    aliases: tuple[tuple[str, ...], ...] = field(default=())
    area: str = "Other"
    """The part of the product it belongs to: `/model help` and the README group by it."""

    @property
    def name(self) -> str:
        return " ".join(self.path)

    @property
    def example(self) -> str:
        """One example to show beside the command: its first with more than the bare name, else
        the command alone when it needs no argument ('' when it has neither: a test keeps that
        from happening)."""
        fuller = [e for e in self.examples if e.strip() != self.name]
        if fuller:
            return fuller[0]
        if self.examples or not any(a.required for a in self.args):
            return self.name
        return ""

    def usage(self, prefix: str = "/model") -> str:
        parts = [prefix, *self.path]
        for arg in self.args:
            label = f"<{arg.name}>" + ("..." if arg.rest else "")
            parts.append(label if arg.required else f"[{label}]")
        for flag in self.flags:
            if flag.is_switch:
                parts.append(f"[--{flag.name}]")
            else:
                meta = flag.metavar or (
                    "|".join(flag.choices) if flag.choices else flag.name.upper()
                )
                parts.append(f"[--{flag.name} {meta}]")
        return " ".join(parts)
