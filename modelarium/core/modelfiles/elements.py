"""Split a Modelfile into reusable elements, and compose elements back into a Modelfile.

These are the units the elements library stores and mixes: a base, a system prompt, a
template, a parameter set, a message set, adapters, licenses. Splitting resolves duplicates as
``ollama create`` does (the last SYSTEM/TEMPLATE/... wins, stops and messages accumulate), so
``compose(split(m))`` builds the same model as ``m``; composing writes the commands in the
order ``ollama show --modelfile`` uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelarium.core.modelfiles.model import Command, Message, Modelfile
from modelarium.core.modelfiles.parameters import format_value
from modelarium.core.modelfiles.validate import is_local_path

ParameterValue = str | int | float | bool
MessageLike = Message | tuple[str, str] | Mapping[str, str]


@dataclass(frozen=True)
class Elements:
    """A Modelfile as independent parts; ``parameters`` maps a name to its text value, and
    ``stop`` to the list of all its values."""

    base: str | None = None
    system: str | None = None
    template: str | None = None
    parameters: dict[str, str | list[str]] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    adapters: list[str] = field(default_factory=list)
    licenses: list[str] = field(default_factory=list)
    requires: str | None = None
    draft: str | None = None
    renderer: str | None = None
    parser: str | None = None
    #: More local FROM files Ollama merges with ``base`` (e.g. a vision projector).
    extra_froms: list[str] = field(default_factory=list)

    def compose(self) -> Modelfile:
        return compose(**self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (messages as ``{"role", "content"}``), for storage."""
        return {
            "base": self.base,
            "system": self.system,
            "template": self.template,
            "parameters": {
                k: list(v) if isinstance(v, list) else v for k, v in self.parameters.items()
            },
            "messages": [{"role": m.role, "content": m.content} for m in self.messages],
            "adapters": list(self.adapters),
            "licenses": list(self.licenses),
            "requires": self.requires,
            "draft": self.draft,
            "renderer": self.renderer,
            "parser": self.parser,
            "extra_froms": list(self.extra_froms),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Elements:
        return split_elements(compose(**data))


def split_elements(modelfile: Modelfile) -> Elements:
    """The elements ``modelfile`` amounts to for Ollama (overridden duplicates are dropped)."""
    froms = modelfile.froms
    extra: list[str] = []
    if len(froms) > 1 and all(is_local_path(f) for f in froms):
        base: str | None = froms[0]
        extra = froms[1:]
    else:
        base = froms[-1] if froms else None
    parameters: dict[str, str | list[str]] = {
        name: list(values) if name == "stop" else values[-1]
        for name, values in modelfile.parameters.items()
    }
    return Elements(
        base=base,
        system=modelfile.system,
        template=modelfile.template,
        parameters=parameters,
        messages=list(modelfile.messages),
        adapters=list(modelfile.adapters),
        licenses=list(modelfile.licenses),
        requires=modelfile.requires,
        draft=modelfile.draft,
        renderer=modelfile.renderer,
        parser=modelfile.parser,
        extra_froms=extra,
    )


def _message(m: MessageLike) -> Message:
    if isinstance(m, Mapping):
        return Message(m["role"], m["content"])
    role, content = m
    return Message(role, content)


def compose(
    base: str | None,
    system: str | None = None,
    template: str | None = None,
    parameters: Mapping[str, ParameterValue | Sequence[ParameterValue]] | None = None,
    messages: Iterable[MessageLike] | None = None,
    adapters: Iterable[str] = (),
    licenses: Iterable[str] = (),
    requires: str | None = None,
    draft: str | None = None,
    renderer: str | None = None,
    parser: str | None = None,
    extra_froms: Iterable[str] = (),
) -> Modelfile:
    """Build a Modelfile from elements, in ``ollama show`` order (REQUIRES last).

    Parameter values may be Python values (``0.7``, ``True``) or text; a sequence gives one
    PARAMETER line per item (how ``stop`` is repeated). ``None`` leaves an element out.
    """
    cmds: list[Command] = []
    if base is not None:
        cmds.append(Command.from_(base))
    cmds += [Command("adapter", a) for a in adapters]
    if draft is not None:
        cmds.append(Command("draft", draft))
    cmds += [Command.from_(f) for f in extra_froms]
    for name, value in (("template", template), ("system", system)):
        if value is not None:
            cmds.append(Command(name, value))
    for name, value in (("renderer", renderer), ("parser", parser)):
        if value is not None:
            cmds.append(Command(name, value))
    for key, value in (parameters or {}).items():
        values = [value] if isinstance(value, str | int | float | bool) else list(value)
        cmds += [Command.parameter(key, format_value(v)) for v in values]
    cmds += [Command("license", text) for text in licenses]
    cmds += [Command.message(*_message(m)) for m in messages or ()]
    if requires is not None:
        cmds.append(Command("requires", requires))
    return Modelfile(cmds)
