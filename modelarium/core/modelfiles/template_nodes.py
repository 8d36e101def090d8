"""The parse tree of a Go template, as small as the Modelfile checks need."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Text:
    line: int
    text: str


@dataclass(slots=True)
class Field:
    line: int
    idents: tuple[str, ...]


@dataclass(slots=True)
class Variable:
    line: int
    idents: tuple[str, ...]


@dataclass(slots=True)
class Dot:
    line: int


@dataclass(slots=True)
class Nil:
    line: int


@dataclass(slots=True)
class Identifier:
    line: int
    name: str


@dataclass(slots=True)
class Literal:
    line: int
    kind: str  # "bool" | "number" | "string"
    value: object
    source: str


@dataclass(slots=True)
class Chain:
    line: int
    node: Operand
    fields: tuple[str, ...]


@dataclass(slots=True)
class Command:
    line: int
    args: list[Operand] = field(default_factory=list)


@dataclass(slots=True)
class Pipe:
    line: int
    decl: list[str] = field(default_factory=list)
    is_assign: bool = False
    cmds: list[Command] = field(default_factory=list)


Operand = Field | Variable | Dot | Nil | Identifier | Literal | Chain | Pipe


@dataclass(slots=True)
class Action:
    line: int
    pipe: Pipe


@dataclass(slots=True)
class Branch:
    kind: str  # "if" | "range" | "with"
    line: int
    pipe: Pipe
    body: list[Node]
    else_body: list[Node] | None


@dataclass(slots=True)
class TemplateCall:
    line: int
    name: str
    pipe: Pipe | None


@dataclass(slots=True)
class Loop:
    line: int
    kind: str  # "break" | "continue"


Node = Text | Action | Branch | TemplateCall | Loop


@dataclass(slots=True)
class Tree:
    name: str
    line: int
    body: list[Node]


@dataclass(slots=True)
class Marker:
    kind: str  # "end" | "else"
    line: int

    def __str__(self) -> str:
        return "{{" + self.kind + "}}"
