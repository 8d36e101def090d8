"""Go's ``text/template/parse`` lexer, ported: the token stream the template parser reads.

Trim markers (``{{- `` / `` -}}``), comments, quoting and number scanning follow Go's current
lexer exactly; a lexing error becomes an ``error`` token, as in Go, so the parser reports it
only if it gets that far.
"""

from __future__ import annotations

import bisect
import json
import unicodedata
from dataclasses import dataclass

SPACE = " \t\r\n"
_SPACES = frozenset(SPACE)
KEYWORDS = frozenset(
    {"block", "break", "continue", "define", "else", "end", "if", "range", "nil", "template"}
    | {"with"}
)


class TemplateSyntaxError(Exception):
    """Go's parse error, without its ``template: :N:`` prefix; ``line`` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    val: str
    pos: int
    line: int

    def describe(self) -> str:
        """Go's ``item.String()``, used inside "unexpected X in Y" messages."""
        if self.kind == "eof":
            return "EOF"
        if self.kind == "error":
            return self.val
        if self.kind in KEYWORDS or self.kind == "dot":
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)


def go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _go_rune(ch: str) -> str:
    """Go's ``%#U``."""
    printable = ch == " " or unicodedata.category(ch)[0] in "LMNPS"
    return f"U+{ord(ch):04X} '{ch}'" if printable else f"U+{ord(ch):04X}"


def _is_alnum(ch: str) -> bool:
    return ch == "_" or unicodedata.category(ch) in ("Lu", "Ll", "Lt", "Lm", "Lo", "Nd")


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.newlines = [i for i, ch in enumerate(text) if ch == "\n"]
        self.tokens: list[Token] = []

    def line(self, pos: int) -> int:
        return 1 + bisect.bisect_left(self.newlines, pos)

    def emit(self, kind: str, start: int, end: int) -> None:
        self.tokens.append(Token(kind, self.text[start:end], start, self.line(start)))

    def at(self, pos: int) -> str:
        return self.text[pos] if pos < len(self.text) else ""

    def left_trim_marker(self, pos: int) -> bool:
        return self.at(pos) == "-" and self.at(pos + 1) in _SPACES

    def right_delim(self, pos: int) -> tuple[bool, bool]:
        """(at a right delimiter, with a trim marker) -- Go's ``atRightDelim``."""
        if self.at(pos) in _SPACES and self.text.startswith("-}}", pos + 1):
            return True, True
        return self.text.startswith("}}", pos), False

    def skip_space(self, pos: int) -> int:
        while self.at(pos) in _SPACES:
            pos += 1
        return pos

    def at_terminator(self, pos: int) -> bool:
        ch = self.at(pos)
        return ch == "" or ch in SPACE or ch in ".,|:)(" or self.text.startswith("}}", pos)

    def run(self) -> list[Token]:
        try:
            self._run()
        except _LexError as err:
            self.tokens.append(Token("error", err.message, err.pos, self.line(err.pos)))
        end = len(self.text)
        self.tokens.append(Token("eof", "", end, self.line(end)))
        return self.tokens

    def _run(self) -> None:
        text, pos = self.text, 0
        while True:
            x = text.find("{{", pos)
            if x < 0:
                if pos < len(text):
                    self.emit("text", pos, len(text))
                return
            end = x
            if self.left_trim_marker(x + 2):
                end = pos + len(text[pos:x].rstrip(SPACE))
            if end > pos:
                self.emit("text", pos, end)
            after = x + 2 + (2 if self.left_trim_marker(x + 2) else 0)
            if text.startswith("/*", after):
                pos = self.comment(after)
                continue
            self.emit("left", x, x + 2)
            pos = self.inside_action(after)

    def comment(self, start: int) -> int:
        close = self.text.find("*/", start + 2)
        if close < 0:
            raise _LexError("unclosed comment", start)
        pos = close + 2
        delim, trim = self.right_delim(pos)
        if not delim:
            raise _LexError("comment ends before closing delimiter", start)
        pos += (2 if trim else 0) + 2
        return self.skip_space(pos) if trim else pos

    def inside_action(self, pos: int) -> int:
        text, depth = self.text, 0
        while True:
            delim, trim = self.right_delim(pos)
            if delim:
                if depth:
                    raise _LexError("unclosed left paren", pos)
                pos += 2 if trim else 0
                self.emit("right", pos, pos + 2)
                pos += 2
                return self.skip_space(pos) if trim else pos
            ch = self.at(pos)
            start = pos
            if ch == "":
                raise _LexError("unclosed action", pos)
            if ch in SPACE:
                end = self.skip_space(pos)
                if self.at(end) == "-" and text.startswith("}}", end + 1):
                    end -= 1  # leave " -}}" for the delimiter
                if end > pos:
                    self.emit("space", pos, end)
                pos = end
                continue
            pos += 1
            if ch == "=":
                self.emit("assign", start, pos)
            elif ch == ":":
                if self.at(pos) != "=":
                    raise _LexError("expected :=", start)
                pos += 1
                self.emit("declare", start, pos)
            elif ch == "|":
                self.emit("pipe", start, pos)
            elif ch in "\"'":
                pos = self.quoted(start, ch)
            elif ch == "`":
                close = text.find("`", pos)
                if close < 0:
                    raise _LexError("unterminated raw quoted string", start)
                pos = close + 1
                self.emit("rawstring", start, pos)
            elif ch == "$":
                pos = self.field_or_variable(start, "var")
            elif ch == "." and self.at(pos) != "" and not "0" <= self.at(pos) <= "9":
                pos = self.field_or_variable(start, "field")
            elif ch in "+-." or "0" <= ch <= "9":
                pos = self.number(start)
            elif _is_alnum(ch):
                pos = self.identifier(start)
            elif ch == "(":
                depth += 1
                self.emit("lparen", start, pos)
            elif ch == ")":
                depth -= 1
                if depth < 0:
                    raise _LexError("unexpected right paren", start)
                self.emit("rparen", start, pos)
            elif ch.isascii() and ch.isprintable():
                self.emit("char", start, pos)
            else:
                raise _LexError(f"unrecognized character in action: {_go_rune(ch)}", start)

    def quoted(self, start: int, quote: str) -> int:
        pos = start + 1
        while True:
            ch = self.at(pos)
            pos += 1
            if ch == "\\" and self.at(pos) not in ("", "\n"):
                pos += 1
            elif ch in ("", "\n", "\\"):
                what = "quoted string" if quote == '"' else "character constant"
                raise _LexError(f"unterminated {what}", start)
            elif ch == quote:
                self.emit("string" if quote == '"' else "charconst", start, pos)
                return pos

    def alnum_run(self, pos: int) -> int:
        while self.at(pos) and _is_alnum(self.at(pos)):
            pos += 1
        return pos

    def field_or_variable(self, start: int, kind: str) -> int:
        pos = start + 1
        if self.at_terminator(pos):
            self.emit("var" if kind == "var" else "dot", start, pos)
            return pos
        pos = self.alnum_run(pos)
        if not self.at_terminator(pos):
            raise _LexError(f"bad character {_go_rune(self.at(pos))}", start)
        self.emit(kind, start, pos)
        return pos

    def identifier(self, start: int) -> int:
        pos = self.alnum_run(start)
        if not self.at_terminator(pos):
            raise _LexError(f"bad character {_go_rune(self.at(pos))}", start)
        word = self.text[start:pos]
        kind = word if word in KEYWORDS else "bool" if word in ("true", "false") else "ident"
        self.emit(kind, start, pos)
        return pos

    def scan_number(self, pos: int) -> tuple[int, bool]:
        """Go's ``scanNumber``: sloppy on purpose, the parser rejects what is wrong."""

        def accept(valid: str) -> bool:
            nonlocal pos
            if self.at(pos) and self.at(pos) in valid:
                pos += 1
                return True
            return False

        def accept_run(valid: str) -> None:
            while accept(valid):
                pass

        accept("+-")
        digits = "0123456789_"
        if accept("0"):
            if accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif accept("oO"):
                digits = "01234567_"
            elif accept("bB"):
                digits = "01_"
        accept_run(digits)
        if accept("."):
            accept_run(digits)
        if len(digits) == 11 and accept("eE"):
            accept("+-")
            accept_run("0123456789_")
        if len(digits) == 23 and accept("pP"):
            accept("+-")
            accept_run("0123456789_")
        accept("i")
        if self.at(pos) and _is_alnum(self.at(pos)):
            return pos + 1, False
        return pos, True

    def number(self, start: int) -> int:
        pos, ok = self.scan_number(start)
        if not ok:
            raise _LexError(f"bad number syntax: {go_quote(self.text[start:pos])}", start)
        if self.at(pos) in ("+", "-"):
            pos, ok = self.scan_number(pos)
            if not ok or self.text[pos - 1] != "i":
                raise _LexError(f"bad number syntax: {go_quote(self.text[start:pos])}", start)
            self.emit("complex", start, pos)
        else:
            self.emit("number", start, pos)
        return pos


class _LexError(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def lex(text: str) -> list[Token]:
    """All tokens; a lexing error becomes an ``error`` token, then ``eof``, as in Go."""
    return _Lexer(text).run()
