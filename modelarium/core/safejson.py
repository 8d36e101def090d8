"""JSON from people and other servers, with a bound on nesting.

Python's decoder recurses once per level: a document nested 100,000 deep (200 KB of brackets)
raised RecursionError, which no caller expected ("Something went wrong"). :func:`loads` measures
the depth first, in one linear pass, and refuses deep documents with :class:`NestingError`, a
``ValueError`` like every other malformed-JSON error, so existing handlers already cover it.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64
"""Deeper than any document Modelarium reads (an endpoints export is 4 levels deep)."""

# Whole strings (skipped, escapes included) or one bracket; possessive, so linear.
_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*+"|[\[\]{}]', re.DOTALL)


class NestingError(ValueError):
    def __init__(self, max_depth: int, line: int) -> None:
        super().__init__(f"nested more than {max_depth} deep (line {line})")
        self.max_depth = max_depth
        self.line = line


def check_depth(text: str, max_depth: int = MAX_DEPTH) -> None:
    """Raise :class:`NestingError` if arrays and objects nest deeper than ``max_depth``."""
    depth = 0
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > max_depth:
                raise NestingError(max_depth, text.count("\n", 0, match.start()) + 1)
        elif token in "]}":
            depth -= 1


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` for untrusted text: ``ValueError`` (never RecursionError) when bad."""
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8")  # UnicodeDecodeError is a ValueError too
    check_depth(text, max_depth)
    return json.loads(text)


__all__ = ["MAX_DEPTH", "NestingError", "check_depth", "loads"]
