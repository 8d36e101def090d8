"""The parsed shape of a Modelfile: an ordered list of commands, as Ollama keeps it.

Ollama's own ``Command`` folds the parameter name into the command name (``temperature``) and the
role into the value (``user: hi``). Here they stay apart (``name="parameter", key="temperature"``)
so nothing is ambiguous, but the accessors resolve commands exactly as ``ollama create`` does,
including its name collisions (``PARAMETER model x`` *is* a FROM to Ollama).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

#: The keywords ``ParseFile`` accepts, lowercased, in the order of Ollama's error message.
COMMANDS: tuple[str, ...] = (
    "from",
    "license",
    "template",
    "system",
    "adapter",
    "draft",
    "renderer",
    "parser",
    "parameter",
    "message",
    "requires",
)

#: Roles ``ParseFile`` accepts after MESSAGE (compared case-sensitively, as Ollama does).
MESSAGE_ROLES: tuple[str, ...] = ("system", "user", "assistant")

#: Commands whose last occurrence wins when Ollama builds the create request.
SINGLETONS: tuple[str, ...] = (
    "template",
    "system",
    "adapter",
    "requires",
    "renderer",
    "parser",
)


@dataclass(frozen=True, slots=True)
class Command:
    """One Modelfile instruction.

    ``key`` is the parameter name for ``parameter`` and the role for ``message``, empty otherwise.
    ``line`` is where the command starts in the source (0 when built in code); it is left out of
    equality so a written-and-reparsed Modelfile compares equal to the original.
    """

    name: str
    args: str
    line: int = field(default=0, compare=False)
    key: str = ""

    @classmethod
    def from_(cls, model: str, line: int = 0) -> Command:
        return cls("from", model, line)

    @classmethod
    def parameter(cls, name: str, value: str, line: int = 0) -> Command:
        return cls("parameter", value, line, name)

    @classmethod
    def message(cls, role: str, content: str, line: int = 0) -> Command:
        return cls("message", content, line, role)

    @property
    def ollama_name(self) -> str:
        """The ``Command.Name`` Ollama would store: ``model`` for FROM, the name for PARAMETER."""
        if self.name == "from":
            return "model"
        if self.name == "parameter":
            return self.key
        return self.name


class Message(NamedTuple):
    role: str
    content: str


def _effective(cmd: Command) -> tuple[str, str, str]:
    """(command, key, value) as ``CreateRequest`` dispatches it, name collisions included."""
    name = cmd.ollama_name
    if name == "model":
        return "from", "", cmd.args
    if cmd.name == "parameter" and name in COMMANDS and name not in ("from", "parameter"):
        if name == "message":
            role, _, content = cmd.args.partition(": ")
            return "message", role, content
        return name, "", cmd.args
    return cmd.name, cmd.key, cmd.args


@dataclass(frozen=True, slots=True)
class Modelfile:
    """An ordered, immutable list of commands plus the accessors callers actually want."""

    commands: tuple[Command, ...] = ()

    def __init__(self, commands: Iterable[Command] = ()) -> None:
        object.__setattr__(self, "commands", tuple(commands))

    def __iter__(self) -> Iterator[Command]:
        return iter(self.commands)

    def __len__(self) -> int:
        return len(self.commands)

    def _values(self, name: str) -> list[str]:
        return [value for cmd in self.commands for n, _, value in [_effective(cmd)] if n == name]

    def _last(self, name: str) -> str | None:
        values = self._values(name)
        return values[-1] if values else None

    @property
    def from_(self) -> str | None:
        """The base model; Ollama keeps the last FROM when several name a model."""
        return self._last("from")

    @property
    def froms(self) -> list[str]:
        return self._values("from")

    @property
    def template(self) -> str | None:
        return self._last("template")

    @property
    def system(self) -> str | None:
        return self._last("system")

    @property
    def adapters(self) -> list[str]:
        return self._values("adapter")

    @property
    def licenses(self) -> list[str]:
        return self._values("license")

    @property
    def requires(self) -> str | None:
        return self._last("requires")

    @property
    def draft(self) -> str | None:
        return self._last("draft")

    @property
    def renderer(self) -> str | None:
        return self._last("renderer")

    @property
    def parser(self) -> str | None:
        return self._last("parser")

    @property
    def messages(self) -> list[Message]:
        out = []
        for cmd in self.commands:
            name, key, value = _effective(cmd)
            if name == "message":
                out.append(Message(key, value))
        return out

    @property
    def parameters(self) -> dict[str, list[str]]:
        """Every real parameter name to all its values in file order (a multi-dict).

        Repeated ``stop`` lines all matter to Ollama; for any other name the last value wins,
        see :meth:`parameter`.
        """
        out: dict[str, list[str]] = {}
        for cmd in self.commands:
            name, key, value = _effective(cmd)
            if name == "parameter":
                out.setdefault(key, []).append(value)
        return out

    def parameter(self, name: str) -> str | None:
        """The value Ollama uses for a single-valued parameter (the last one given)."""
        values = self.parameters.get(name)
        return values[-1] if values else None

    def where(self, name: str) -> list[Command]:
        """Commands that act as ``name`` for Ollama, with their source lines."""
        return [cmd for cmd in self.commands if _effective(cmd)[0] == name]
