"""Modelfile writer: Ollama's ``Modelfile.String()``, made safe for every value it can carry.

Ollama's own ``quote()`` is used whenever its output reads back unchanged, so ordinary files
come out byte-for-byte as ``ollama`` would write them. Where Ollama's writer is lossy (a value
that is itself ``"x"``, leading tabs, a ``"`` opener, a line ending in ``\"\"\"``...) the first
other form that reads back exactly is used; a value no form can carry raises instead of being
silently changed.
"""

from __future__ import annotations

from modelarium.core.modelfiles.errors import ModelfileWriteError
from modelarium.core.modelfiles.model import COMMANDS, MESSAGE_ROLES, Command, Modelfile
from modelarium.core.modelfiles.text import (
    is_alpha,
    is_number,
    is_print,
    is_space,
    read_value,
)


def ollama_quote(s: str) -> str:
    """Ollama's ``quote()``, verbatim: bare unless there is a newline or an edge space."""
    if "\n" in s or s.startswith(" ") or s.endswith(" "):
        if '"' in s:
            return f'"""{s}"""'
        return f'"{s}"'
    return s


def _dropped(s: str) -> list[str]:
    return sorted({ch for ch in s if not (is_print(ch) or is_space(ch) or ch in "\r\n")})


def encode_value(value: str, *, bare_first: bool = False) -> str:
    """The text to put after a command so ParseFile reads back exactly ``value``."""
    dropped = _dropped(value)
    if dropped:
        codes = ", ".join(f"U+{ord(ch):04X}" for ch in dropped)
        raise ModelfileWriteError(f"value contains characters Ollama drops when reading ({codes})")
    first = value if bare_first else ollama_quote(value)
    for candidate in (first, value, f'"{value}"', f'"""{value}"""'):
        if read_value(candidate) == value:
            return candidate
    raise ModelfileWriteError(
        "value cannot be written in a Modelfile: every quoting Ollama reads would end it"
        " early at a line that ends in a quote"
    )


def write_command(cmd: Command) -> str:
    """One command as a line (or several, for a multi-line value), without the final newline."""
    if cmd.name not in COMMANDS:
        raise ModelfileWriteError(f'unknown command "{cmd.name}"')
    if cmd.name == "from":
        return f"FROM {encode_value(cmd.args, bare_first=True)}"
    if cmd.name == "parameter":
        if not all(is_alpha(c) or is_number(c) or c == "_" for c in cmd.key):
            raise ModelfileWriteError(f'invalid parameter name "{cmd.key}"')
        return f"PARAMETER {cmd.key} {encode_value(cmd.args)}"
    if cmd.name == "message":
        if cmd.key not in MESSAGE_ROLES:
            raise ModelfileWriteError(
                f'message role must be one of "system", "user", or "assistant" (got "{cmd.key}")'
            )
        return f"MESSAGE {cmd.key} {encode_value(cmd.args)}"
    return f"{cmd.name.upper()} {encode_value(cmd.args)}"


def write(modelfile: Modelfile) -> str:
    """Serialize in stored order, one command per line, as ``Modelfile.String()`` does."""
    return "".join(write_command(cmd) + "\n" for cmd in modelfile)
