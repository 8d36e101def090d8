"""The command table. Adding a command is one decorated function in bot/commands/<area>.py."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any

from modelarium.bot.commands.spec import Arg, Command, Flag
from modelarium.core.rbac import Role

AREAS: dict[str, str] = {
    "discovery": "Models and GPUs",
    "weights": "Weights",
    "objects": "Weights",
    "deployments": "Deployments",
    "groups": "Groups",
    "catalog": "Catalog",
    "endpoints": "Endpoints",
    "ollama": "Ollama",
    "modelfiles": "Modelfiles",
    "changes": "Changes and approvals",
    "approvals": "Changes and approvals",
    "system": "Jobs and the daemon",
    "alerts": "Alerts",
    "roles": "People, roles and audit",
    "audit": "People, roles and audit",
    "tokens": "API tokens",
    "backups": "Backups",
    "help": "Help",
}
"""The area of each command module (``bot/commands/<module>.py``), in the order help shows
them; a command may name another with ``area=``."""


def _area_of(module: str) -> str:
    name = module.rsplit(".", 1)[-1]
    return AREAS.get(name, name.replace("_", " ").capitalize())


class Registry:
    def __init__(self) -> None:
        self._commands: dict[tuple[str, ...], Command] = {}

    def command(
        self,
        name: str,
        *,
        help: str,
        role: Role = Role.VIEWER,
        args: Iterable[Arg] = (),
        flags: Iterable[Flag] = (),
        examples: Iterable[str] = (),
        audit: bool = True,
        aliases: Iterable[str] = (),
        area: str | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
            command = Command(
                path=tuple(name.split()),
                handler=handler,
                help=help,
                role=role,
                args=tuple(args),
                flags=tuple(flags),
                examples=tuple(examples),
                audit=audit,
                aliases=tuple(tuple(a.split()) for a in aliases),
                area=area or _area_of(handler.__module__),
            )
            for path in (command.path, *command.aliases):
                if path in self._commands:
                    raise ValueError(f"command {' '.join(path)!r} registered twice")
                self._commands[path] = command
            return handler

        return decorate

    def resolve(self, words: list[str]) -> tuple[Command | None, int]:
        """Longest registered path that prefixes ``words``: (command, words consumed)."""
        lowered = [w.lower() for w in words]
        for length in range(min(3, len(lowered)), 0, -1):
            command = self._commands.get(tuple(lowered[:length]))
            if command is not None:
                return command, length
        return None, 0

    def group(self, word: str) -> list[Command]:
        """Commands under a group word (``endpoint`` -> ``endpoint add``, ``endpoint list``...)."""
        return [c for c in self.commands() if len(c.path) > 1 and c.path[0] == word.lower()]

    def commands(self) -> list[Command]:
        unique = {id(c): c for c in self._commands.values()}
        return sorted(unique.values(), key=lambda c: c.path)

    def by_area(self, commands: Iterable[Command] | None = None) -> list[tuple[str, list[Command]]]:
        """``commands`` (default: all) grouped by area, areas in :data:`AREAS` order."""
        order = {area: i for i, area in enumerate(dict.fromkeys(AREAS.values()))}
        groups: dict[str, list[Command]] = {}
        for command in self.commands() if commands is None else commands:
            groups.setdefault(command.area, []).append(command)
        return sorted(groups.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))

    def suggest(self, words: list[str]) -> list[str]:
        names = [" ".join(p) for p in self._commands]
        typed = " ".join(w.lower() for w in words[:2])
        first = words[0].lower() if words else ""
        found = difflib.get_close_matches(typed, names, n=3, cutoff=0.6)
        found += [
            n for n in difflib.get_close_matches(first, names, n=3, cutoff=0.6) if n not in found
        ]
        return found[:3]


registry = Registry()
"""The one registry every front dispatches through."""
