"""Modelfile errors, as :class:`ValidationError` subclasses so fronts show them as one line."""

from __future__ import annotations

from modelarium.core.errors import ValidationError


class ModelfileParseError(ValidationError):
    """Ollama's ``ParseFile`` would reject the text.

    ``line``/``column`` are the real 1-based position (CRLF counts as one line break), which is
    what a user needs; ``ollama_error`` is the exact string Ollama itself prints, kept so callers
    can compare against a live ``ollama create`` and tests can pin the behaviour.
    """

    def __init__(self, reason: str, *, line: int, column: int, ollama_error: str) -> None:
        super().__init__(f"line {line}, column {column}: {reason}")
        self.reason = reason
        self.line = line
        self.column = column
        self.ollama_error = ollama_error


class ModelfileWriteError(ValidationError):
    """A command holds a value no Modelfile text can carry, so writing it would change it."""


class ParameterError(ValidationError):
    """A PARAMETER value ``ollama create`` rejects; the message is Ollama's own wording."""
