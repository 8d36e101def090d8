"""The few Go ``strconv`` functions whose exact acceptance Ollama's behaviour depends on.

Python's ``int()``/``float()`` accept things Go rejects (spaces, ``1_0`` in base 10, ``infinity``
with a sign in odd places...) and reject things Go accepts (``0x1p-2``, ``1_000.5``), so
PARAMETER values and template literals are judged with these ports instead.
"""

from __future__ import annotations

import re
import struct
from decimal import Decimal

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1

# |x| at or past these rounds to infinity (half an ULP above the largest finite value).
_OVERFLOW = {32: 2**128 - 2**103, 64: 2**1024 - 2**970}

_DEC_FLOAT = re.compile(r"[+-]?(?:[0-9_]+(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][+-]?[0-9][0-9_]*)?")
_HEX_FLOAT = re.compile(
    r"[+-]?0[xX](?:[0-9a-fA-F_]+(?:\.[0-9a-fA-F_]*)?|\.[0-9a-fA-F_]+)[pP][+-]?[0-9][0-9_]*"
)
_BOOLS = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}


class GoSyntaxError(ValueError):
    """``strconv.ErrSyntax``."""


class GoRangeError(ValueError):
    """``strconv.ErrRange``."""


def underscore_ok(s: str) -> bool:
    """Go's ``underscoreOK``: ``_`` only between digits, or between a base prefix and a digit."""
    saw, i = "^", 0
    if s[:1] in ("+", "-"):
        s = s[1:]
    hex_digits = False
    if len(s) >= 2 and s[0] == "0" and s[1].lower() in "box":
        i, saw, hex_digits = 2, "0", s[1].lower() == "x"
    for ch in s[i:]:
        if ch.isascii() and (ch.isdigit() or (hex_digits and ch.lower() in "abcdef")):
            saw = "0"
        elif ch == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def parse_bool(s: str) -> bool:
    """``strconv.ParseBool``."""
    try:
        return _BOOLS[s]
    except KeyError:
        raise GoSyntaxError(s) from None


def parse_int(s: str, base: int = 10) -> int:
    """``strconv.ParseInt(s, base, 64)`` for base 10 or 0 (prefixes and ``_`` only with 0)."""
    if base == 10:
        if not re.fullmatch(r"[+-]?[0-9]+", s):
            raise GoSyntaxError(s)
        value = int(s)
    else:
        value = parse_int_base0(s)
    if not INT64_MIN <= value <= INT64_MAX:
        raise GoRangeError(s)
    return value


def parse_int_base0(s: str) -> int:
    """Base-0 ``ParseInt`` syntax (``0x``/``0o``/``0b``/leading-0 octal, ``_``), no range check."""
    sign, body = (-1, s[1:]) if s[:1] == "-" else (1, s[1:] if s[:1] == "+" else s)
    lower = body.lower()
    if "_" in body and not underscore_ok(body):
        raise GoSyntaxError(s)
    digits = lower.replace("_", "")
    patterns = {"0x": (16, "[0-9a-f]+"), "0o": (8, "[0-7]+"), "0b": (2, "[01]+")}
    base, pattern, start = 10, "[0-9]+", 0
    if digits[:2] in patterns:
        base, pattern = patterns[digits[:2]]
        start = 2
    elif len(digits) > 1 and digits[0] == "0":
        base, pattern, start = 8, "[0-7]+", 1
    if not re.fullmatch(pattern, digits[start:]):
        raise GoSyntaxError(s)
    return sign * int(digits[start:], base)


def _special(s: str) -> float | None:
    """Go's ``special``: inf/infinity (optionally signed) and unsigned nan, any case."""
    lower = s.lower()
    if lower in ("inf", "+inf", "infinity", "+infinity"):
        return float("inf")
    if lower in ("-inf", "-infinity"):
        return float("-inf")
    if lower == "nan":
        return float("nan")
    return None


def parse_float(s: str, bits: int = 64) -> float:
    """``strconv.ParseFloat(s, bits)``: the value, rounded to float32 when ``bits == 32``."""
    special = _special(s)
    if special is not None:
        return special
    if _DEC_FLOAT.fullmatch(s):
        mantissa = re.split("[eE]", s)[0]
        if not any(ch.isdigit() for ch in mantissa) or ("_" in s and not underscore_ok(s)):
            raise GoSyntaxError(s)
        exact = Decimal(s.replace("_", ""))
        if abs(exact) >= _OVERFLOW[bits]:
            raise GoRangeError(s)
        value = float(exact)
    elif _HEX_FLOAT.fullmatch(s):
        mantissa = re.split("[pP]", s)[0][3 if s[0] in "+-" else 2 :]
        if not any(ch in "0123456789abcdefABCDEF" for ch in mantissa):
            raise GoSyntaxError(s)
        if "_" in s and not underscore_ok(s):
            raise GoSyntaxError(s)
        try:
            value = float.fromhex(s.replace("_", ""))
        except OverflowError:
            raise GoRangeError(s) from None
        if abs(value) >= _OVERFLOW[bits]:
            raise GoRangeError(s)
    else:
        raise GoSyntaxError(s)
    if bits == 32:
        value = struct.unpack("f", struct.pack("f", value))[0]
    return value


_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
}


def _unquote_body(body: str, quote: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == quote or ch == "\n":
            raise GoSyntaxError(body)
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        esc = body[i + 1 : i + 2]
        if esc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[esc])
            i += 2
        elif esc == quote:
            out.append(quote)
            i += 2
        elif esc in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[esc]
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or not re.fullmatch("[0-9a-fA-F]+", digits):
                raise GoSyntaxError(body)
            code = int(digits, 16)
            if esc != "x" and (code > 0x10FFFF or 0xD800 <= code <= 0xDFFF):
                raise GoSyntaxError(body)
            out.append(chr(code))
            i += 2 + width
        elif esc and esc in "01234567":
            digits = body[i + 1 : i + 4]
            if not re.fullmatch("[0-7]{3}", digits) or int(digits, 8) > 255:
                raise GoSyntaxError(body)
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise GoSyntaxError(body)
    return "".join(out)


def unquote(s: str) -> str:
    """``strconv.Unquote`` for the Go literals a template can hold (``"..."``, raw, ``'c'``)."""
    if len(s) < 2 or s[0] != s[-1] or s[0] not in "\"`'":
        raise GoSyntaxError(s)
    body = s[1:-1]
    if s[0] == "`":
        if "`" in body:
            raise GoSyntaxError(s)
        return body.replace("\r", "")
    value = _unquote_body(body, s[0])
    if s[0] == "'" and len(value) != 1:
        raise GoSyntaxError(s)
    return value
