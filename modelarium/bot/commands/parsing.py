"""Turning ``/model`` text into a command and typed keyword arguments.

Shell-style quoting (``"two words"``), with Slack's smart quotes and HTML escaping undone first,
and flags anywhere (``--flag value``, ``--flag=value``, ``--`` ends flags).
"""

from __future__ import annotations

import html
import re
import shlex
from dataclasses import dataclass
from typing import Any

from modelarium.bot.commands.spec import Command
from modelarium.core.echo import shown
from modelarium.core.errors import UsageError

_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})
_USER_MENTION = re.compile(r"^<@([UW][A-Za-z0-9_]+)(?:\|[^>]*)?>$")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|[^>]*)?>")


def tokenize(text: str, *, verbatim: bool = False) -> list[str]:
    """Words of ``text``; ``verbatim`` is for text Modelarium quoted itself (form submissions),
    whose values must come back byte for byte, typographic quotes and ``&amp;`` included."""
    if not verbatim:
        text = html.unescape(text.translate(_SMART_QUOTES)).strip()
        text = _LINK.sub(r"\1", text)  # Slack wraps URLs as <http://x|x>
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"could not read the command: {exc} (check your quotes)") from None


def user_id(value: str) -> str:
    """A Slack user: ``<@U123|alice>``, ``<@U123>``, ``@U123`` or ``U123``."""
    match = _USER_MENTION.match(value)
    if match:
        return match.group(1)
    candidate = value.lstrip("@")
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", candidate):
        raise ValueError(f"not a user: {value!r} (mention them, e.g. @alice, or give their id)")
    return candidate


_WHOLE = re.compile(r"[+-]?\d+")

MAX_ID = 2**31 - 1
"""Ids and page numbers fit the databases' INTEGER columns (PostgreSQL's is 32-bit)."""


@dataclass(frozen=True)
class Whole:
    """The grammar's one integer type: every whole number a command takes is range-checked
    here, before a handler or a database sees it (a 64-bit id would overflow the driver).

    ``noun`` names what an id points at: an id beyond the range cannot exist, so it is answered
    like any unknown id ("no approval request #N") rather than with the range.
    """

    minimum: int = 1
    maximum: int = MAX_ID
    noun: str | None = None

    def __call__(self, value: str) -> int:
        text = str(value).strip()
        if not _WHOLE.fullmatch(text):
            raise ValueError(f"expected a whole number, got {shown(text)}")
        # past 18 digits only the sign matters (and int() refuses 4,300+ digits)
        digits = text.lstrip("+-").lstrip("0")
        number = int(text) if len(digits) <= 18 else (-1 if text[0] == "-" else 1) * 10**18
        if self.noun and number > self.maximum:
            raise UsageError(f"no {self.noun} #{shown(text, quote=False)}")
        if number < self.minimum:
            raise ValueError(
                "must be a positive whole number"
                if self.minimum == 1
                else f"must be at least {self.minimum}"
            )
        if number > self.maximum:
            raise ValueError(f"must be at most {self.maximum}")
        return number


positive_int = Whole()
"""A count or page number: 1 .. MAX_ID."""


def ident(noun: str) -> Whole:
    """The id of a ``noun`` (``ident("job")``): 1 .. MAX_ID, "no job #N" beyond."""
    return Whole(noun=noun)


def integer_type(kind: Any) -> Whole | None:
    """The range check an argument's type stands for; a bare ``int`` gets the default range, so
    a command written with ``type=int`` is checked too."""
    if isinstance(kind, Whole):
        return kind
    if kind is int:
        return Whole(minimum=-MAX_ID)
    return None


def bind(command: Command, words: list[str]) -> dict[str, Any]:
    """Keyword arguments for ``command.handler`` from the words after the command path."""
    flags = {f.name: f for f in command.flags}
    values: dict[str, Any] = {
        f.key: ([] if f.repeat else (False if f.is_switch else f.default)) for f in command.flags
    }
    positionals: list[str] = []
    index = 0
    only_positionals = False
    while index < len(words):
        word = words[index]
        index += 1
        if only_positionals or not word.startswith("--") or word == "-":
            positionals.append(word)
            continue
        if word == "--":
            only_positionals = True
            continue
        name, has_value, inline = word[2:].partition("=")
        flag = flags.get(name)
        if flag is None:
            close = [f"--{n}" for n in flags if n.startswith(name[:3])]
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError(f"unknown flag --{name}{hint}")
        if flag.is_switch:
            if has_value:
                raise UsageError(f"--{name} takes no value")
            values[flag.key] = True
            continue
        if has_value:
            raw = inline
        elif index < len(words):
            raw = words[index]
            index += 1
        else:
            raise UsageError(f"--{name} needs a value")
        converted = _convert(f"--{name}", raw, flag.type, flag.choices)
        if flag.repeat:
            values[flag.key].append(converted)
        else:
            values[flag.key] = converted

    for arg in command.args:
        if arg.rest:
            if positionals:
                values[arg.key] = _convert(
                    f"<{arg.name}>", " ".join(positionals), arg.type, arg.choices
                )
                positionals = []
            elif arg.required:
                raise UsageError(f"missing <{arg.name}>")
            else:
                values[arg.key] = None
            continue
        if positionals:
            values[arg.key] = _convert(f"<{arg.name}>", positionals.pop(0), arg.type, arg.choices)
        elif arg.required:
            raise UsageError(f"missing <{arg.name}>")
        else:
            values[arg.key] = None
    if positionals:
        raise UsageError(f"unexpected argument {positionals[0]!r}")
    return values


def _convert(label: str, raw: str, kind: Any, choices: tuple[str, ...] | None) -> Any:
    if choices is not None and raw.lower() not in choices:
        raise UsageError(f"{label} must be one of {', '.join(choices)} (got {raw!r})")
    if choices is not None:
        raw = raw.lower()
    kind = integer_type(kind) or kind
    try:
        return kind(raw) if kind is not None else raw
    except UsageError:
        raise
    except OverflowError:
        # a converter that multiplies (durations, sizes) met a number no clock or disk holds
        raise UsageError(f"{label}: {shown(raw)} is too large") from None
    except (ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else f"invalid value {raw!r}"
        if reason.startswith("invalid literal for int()"):
            reason = f"expected a whole number, got {raw!r}"
        elif reason.startswith("could not convert string to float"):
            reason = f"expected a number, got {raw!r}"
        raise UsageError(f"{label}: {reason}") from None
