"""Character classes and the quoting rule shared by the parser and the writer.

They mirror Ollama's ``parser.go`` helpers (``isAlpha``, ``isSpace``, ``unquote``...) and Go's
``strconv.IsPrint``, so the reader and the writer cannot disagree about what a value means.
"""

from __future__ import annotations

import unicodedata

#: Ollama's ``strings.TrimSpace`` reduced to what can reach it (other spaces are dropped first).
TRIM = " \t\r\n"


def is_alpha(ch: str) -> bool:
    return "a" <= ch <= "z" or "A" <= ch <= "Z"


def is_number(ch: str) -> bool:
    return "0" <= ch <= "9"


def is_space(ch: str) -> bool:
    return ch in (" ", "\t")


def is_newline(ch: str) -> bool:
    return ch in ("\r", "\n")


def is_print(ch: str) -> bool:
    """Go's ``strconv.IsPrint``: letters, marks, numbers, punctuation, symbols and ASCII space.

    ParseFile silently drops every other rune (NBSP, zero-width joiners, C0 controls...).
    """
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"


def unquote(s: str) -> tuple[str, bool]:
    """Ollama's ``unquote``: strip a triple or single ``"`` pair; ``False``: not closed yet."""
    if s.startswith('"""'):
        if len(s) >= 6 and s.endswith('"""'):
            return s[3:-3], True
        return "", False
    if s.startswith('"'):
        if len(s) >= 2 and s.endswith('"'):
            return s[1:-1], True
        return "", False
    return s, True


def read_value(raw: str) -> str | None:
    """What ParseFile makes of ``raw`` typed right after a command's separator, then a newline.

    Returns ``None`` when the value would not end exactly at that final newline (it closes early
    and leaves text behind, or never closes). This is the writer's round-trip oracle.
    """
    buf: list[str] = []
    for i, ch in enumerate(raw + "\n"):
        if is_newline(ch):
            value, ok = unquote("".join(buf).strip(TRIM))
            if ok:
                return value if i == len(raw) else None
            buf.append(ch)
        elif is_space(ch) or is_print(ch):
            buf.append(ch)
    return None
