"""Modelfile parser: a rune-for-rune port of Ollama's ``parser.ParseFile`` state machine.

It accepts and rejects exactly what Ollama does (odd corners included: two spaces after
PARAMETER give an empty name, ``#`` is a comment only at the start of a line, a value that
starts with a quote swallows lines until the whole buffer ends with one). Only the error texts
differ: ours say where the problem is and why, and keep Ollama's wording as their core.
"""

from __future__ import annotations

from enum import Enum, auto

from modelarium.core.modelfiles.errors import ModelfileParseError
from modelarium.core.modelfiles.model import COMMANDS, MESSAGE_ROLES, Command, Modelfile
from modelarium.core.modelfiles.text import (
    TRIM,
    is_alpha,
    is_newline,
    is_number,
    is_print,
    is_space,
    unquote,
)

INVALID_COMMAND = "command must be one of " + ", ".join(f'"{c}"' for c in COMMANDS[:-1])
INVALID_COMMAND += f', or "{COMMANDS[-1]}"'
INVALID_ROLE = 'message role must be one of "system", "user", or "assistant"'
MISSING_FROM = "no FROM line"
UNEXPECTED_EOF = "unexpected EOF"


class _State(Enum):
    NIL = auto()
    NAME = auto()
    VALUE = auto()
    PARAMETER = auto()
    MESSAGE = auto()
    COMMENT = auto()


class _Eof(Exception):
    """Ollama's ``io.ErrUnexpectedEOF`` from ``parseRuneForState`` (a bad name/role rune)."""


class _BadCommand(Exception):
    """Ollama's ``errInvalidCommand`` from ``parseRuneForState``."""


def decode(data: bytes) -> str:
    """Decode as Ollama's ``unicode.BOMOverride(UTF8)``: honour a UTF-8/16 BOM, else UTF-8."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith(b"\xff\xfe"):
        return data[2:].decode("utf-16-le", errors="replace")
    if data.startswith(b"\xfe\xff"):
        return data[2:].decode("utf-16-be", errors="replace")
    return data.decode("utf-8", errors="replace")


def _step(ch: str, state: _State) -> tuple[_State, str]:
    """``parseRuneForState``: the next state and the rune to keep ("" keeps nothing)."""
    if state is _State.NIL:
        if ch == "#":
            return _State.COMMENT, ""
        if is_space(ch) or is_newline(ch):
            return _State.NIL, ""
        return _State.NAME, ch
    if state is _State.NAME:
        if is_alpha(ch):
            return _State.NAME, ch
        if is_space(ch):
            return _State.VALUE, ""
        raise _BadCommand
    if state is _State.VALUE:
        if is_newline(ch) or is_space(ch):
            return _State.NIL, ch
        return _State.VALUE, ch
    if state is _State.PARAMETER:
        if is_alpha(ch) or is_number(ch) or ch == "_":
            return _State.PARAMETER, ch
        if is_space(ch):
            return _State.VALUE, ""
        raise _Eof
    if state is _State.MESSAGE:
        if is_alpha(ch):
            return _State.MESSAGE, ch
        if is_space(ch):
            return _State.VALUE, ""
        raise _Eof
    if is_newline(ch):  # COMMENT
        return _State.NIL, ""
    return _State.COMMENT, ""


class _Buffer:
    """The characters of the word or value being read, knowing in O(1) whether the value would
    be a closed quote once trimmed: Ollama joins, trims and unquotes the whole buffer at every
    space and line break of a value, which is quadratic in its length (a 340 KB line took 50 s).
    """

    __slots__ = ("chars", "end", "first")

    def __init__(self) -> None:
        self.chars: list[str] = []
        self.first = -1  # index of the first character not in TRIM
        self.end = 0  # one past the last character not in TRIM

    def append(self, ch: str) -> None:
        if ch not in TRIM:
            if self.first < 0:
                self.first = len(self.chars)
            self.end = len(self.chars) + 1
        self.chars.append(ch)

    def text(self) -> str:
        return "".join(self.chars)

    def closed(self) -> bool:
        """``unquote(self.text().strip(TRIM))[1]``, without building the text."""
        chars, first, end = self.chars, self.first, self.end
        if first < 0 or chars[first] != '"':
            return True
        if end - first >= 3 and chars[first + 1] == '"' and chars[first + 2] == '"':
            return end - first >= 6 and chars[end - 3] == chars[end - 2] == chars[end - 1] == '"'
        return end - first >= 2 and chars[end - 1] == '"'


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.commands: list[Command] = []

    # -- positions -------------------------------------------------------------------------
    def position(self, index: int) -> tuple[int, int]:
        """Real 1-based (line, column) of ``text[index]``; CRLF is one line break."""
        prefix = self.text[:index]
        line = 1 + prefix.count("\n") + prefix.count("\r") - prefix.count("\r\n")
        return line, index - max(prefix.rfind("\n"), prefix.rfind("\r"))

    def fail(self, index: int, reason: str, ollama_error: str) -> ModelfileParseError:
        line, column = self.position(index)
        return ModelfileParseError(reason, line=line, column=column, ollama_error=ollama_error)

    def token_at(self, index: int) -> str:
        """The run of non-blank characters starting at ``index`` (for error messages)."""
        end = index
        while end < len(self.text) and not (is_space(self.text[end]) or is_newline(self.text[end])):
            end += 1
        return self.text[index:end]

    # -- the state machine -----------------------------------------------------------------
    def run(self) -> Modelfile:
        text = self.text
        state = _State.NIL
        buf = _Buffer()
        ollama_line = 1  # Ollama counts every CR and every LF, before handling the rune
        name = key = ""
        cmd_line = word_at = value_at = 0
        line = 1  # the real line of ``ch``

        for i, ch in enumerate(text):
            if i and ((text[i - 1] == "\r" and ch != "\n") or text[i - 1] == "\n"):
                line += 1
            if is_newline(ch):
                ollama_line += 1
            try:
                nxt, keep = _step(ch, state)
            except _BadCommand:
                raise self.bad_command(i, word_at, buf.text(), ollama_line) from None
            except _Eof:
                raise self.bad_word(i, state, buf.text(), ch) from None

            if nxt is not state:
                if state is _State.VALUE and (is_space(ch) or not buf.closed()):
                    # A space never ends a value, nor does a line break inside open quotes.
                    buf.append(ch)
                    continue
                current = buf.text()
                if state is _State.NAME:
                    if current.lower() not in COMMANDS:
                        raise self.bad_command(i, word_at, current, ollama_line)
                    name, key = current.lower(), ""
                    if name == "parameter":
                        nxt = _State.PARAMETER
                    elif name == "message":
                        nxt = _State.MESSAGE
                elif state is _State.PARAMETER:
                    key = current
                elif state is _State.MESSAGE:
                    if current not in MESSAGE_ROLES:
                        got = (
                            f'(got "{current}")'
                            if current
                            else "(no role: two spaces after MESSAGE?)"
                        )
                        raise self.fail(
                            word_at,
                            f"{INVALID_ROLE} {got}",
                            f"(line {ollama_line}): {INVALID_ROLE}",
                        )
                    key = current
                elif state is _State.VALUE:
                    value, _ = unquote(current.strip(TRIM))
                    self.commands.append(Command(name, value, cmd_line, key))
                elif state is _State.NIL and nxt is _State.NAME:
                    word_at, cmd_line = i, line
                buf = _Buffer()
                if nxt is _State.VALUE:
                    value_at = i + 1
                elif nxt in (_State.PARAMETER, _State.MESSAGE):
                    word_at = i + 1
                state = nxt

            if keep and is_print(keep):
                buf.append(keep)

        current = buf.text()
        if state is _State.VALUE:
            value, ok = unquote(current.strip(TRIM))
            if not ok:
                raise self.unterminated(value_at)
            self.commands.append(Command(name, value, cmd_line, key))
        elif state is _State.NAME:
            what = f"{current.upper()} has no value" if current.lower() in COMMANDS else None
            what = what or f'"{current}" is not a command'
            raise self.fail(word_at, f"{UNEXPECTED_EOF} ({what})", UNEXPECTED_EOF)
        elif state is _State.PARAMETER:
            raise self.fail(
                len(text), f"{UNEXPECTED_EOF} (PARAMETER {current} has no value)", UNEXPECTED_EOF
            )
        elif state is _State.MESSAGE:
            raise self.fail(
                len(text), f"{UNEXPECTED_EOF} (MESSAGE {current} has no content)", UNEXPECTED_EOF
            )

        if not any(cmd.ollama_name == "model" for cmd in self.commands):
            raise ModelfileParseError(MISSING_FROM, line=1, column=1, ollama_error=MISSING_FROM)
        return Modelfile(self.commands)

    # -- error builders --------------------------------------------------------------------
    def bad_command(self, i: int, word_at: int, word: str, ollama_line: int) -> ModelfileParseError:
        ch = self.text[i]
        if is_newline(ch) and word.lower() in COMMANDS:
            detail = f"{word} must be followed by a space and a value"
        else:
            detail = f'got "{self.token_at(word_at)}"'
        return self.fail(
            word_at, f"{INVALID_COMMAND} ({detail})", f"(line {ollama_line}): {INVALID_COMMAND}"
        )

    def bad_word(self, i: int, state: _State, word: str, ch: str) -> ModelfileParseError:
        what = "PARAMETER" if state is _State.PARAMETER else "MESSAGE"
        if is_newline(ch):
            tail = "has no value" if what == "PARAMETER" else "has no content"
            detail = f"{what} {word} {tail}" if word else f"{what} needs a name and a value"
        elif what == "PARAMETER":
            detail = f'invalid character "{ch}" in a parameter name: use letters, digits, _'
        else:
            detail = f'invalid character "{ch}" after the message role'
        return self.fail(i, f"{UNEXPECTED_EOF}: {word} ({detail})", f"{UNEXPECTED_EOF}: {word}")

    def unterminated(self, value_at: int) -> ModelfileParseError:
        at = value_at
        while at < len(self.text) and (is_space(self.text[at]) or not is_print(self.text[at])):
            at += 1
        quote = '"""' if self.text.startswith('"""', at) else '"'
        first_line = self.text[at:].splitlines()[0] if at < len(self.text) else ""
        closed = first_line.find(quote, len(quote))
        hint = ""
        if closed >= 0 and first_line[closed + len(quote) :].strip(TRIM):
            hint = "; text after the closing quote keeps the value open"
        return self.fail(at, f"{UNEXPECTED_EOF} (unterminated {quote} quote{hint})", UNEXPECTED_EOF)


def parse(source: str | bytes) -> Modelfile:
    """Parse Modelfile text exactly as ``ollama create`` does; raise :class:`ModelfileParseError`.

    ``bytes`` are decoded as Ollama does (BOM sniffing, UTF-16 allowed); a ``str`` loses a
    leading U+FEFF, which is what its UTF-8 encoding would lose in Ollama.
    """
    text = decode(source) if isinstance(source, bytes) else source.removeprefix("\ufeff")
    return _Parser(text).run()
