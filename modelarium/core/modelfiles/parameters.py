"""PARAMETER names, types and sane ranges, and Ollama's coercion of their text values.

Names and types are the json tags of Ollama's ``api.Options`` (with the embedded ``Runner``);
coercion follows ``api.FormatParams`` exactly, messages included. Ollama checks no ranges at
all; the ones here mark values that cannot mean anything useful (``top_p 3``, ``num_ctx 0``),
so they catch typos before a model is built.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from modelarium.core.modelfiles import go_strconv
from modelarium.core.modelfiles.errors import ParameterError


class ParamType(StrEnum):
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STRING_LIST = "string list"


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    """One accepted PARAMETER; ``minimum``/``maximum`` are inclusive unless marked exclusive."""

    name: str
    type: ParamType
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    meaning: str = ""

    def range_text(self) -> str:
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            return f"between {_fmt(low)} and {_fmt(high)}"
        if low is not None:
            return f"{'>' if self.exclusive_minimum else '>='} {_fmt(low)}"
        if high is not None:
            return f"<= {_fmt(high)}"
        return "a number"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


_I, _F, _B = ParamType.INT, ParamType.FLOAT, ParamType.BOOL

PARAMETERS: dict[str, ParameterSpec] = {
    spec.name: spec
    for spec in (
        # api.Runner: fixed when the model is loaded
        ParameterSpec("num_ctx", _I, 1, meaning="context window, in tokens"),
        ParameterSpec("num_batch", _I, 1, meaning="prompt tokens processed per batch"),
        ParameterSpec("num_gpu", _I, -1, meaning="layers offloaded to GPU (-1: automatic)"),
        ParameterSpec("main_gpu", _I, 0, meaning="GPU holding small tensors"),
        ParameterSpec("use_mmap", _B, meaning="memory-map the weights"),
        ParameterSpec("num_thread", _I, 0, meaning="CPU threads (0: automatic)"),
        ParameterSpec("draft_num_predict", _I, 0, meaning="tokens a draft model proposes"),
        # api.Options: per request
        ParameterSpec("num_keep", _I, -1, meaning="prompt tokens kept on overflow (-1: all)"),
        ParameterSpec("seed", _I, meaning="random seed (-1: random)"),
        ParameterSpec("num_predict", _I, -2, meaning="max tokens (-1: no limit, -2: fill ctx)"),
        ParameterSpec("top_k", _I, 0, meaning="sample from the k likeliest tokens"),
        ParameterSpec("top_p", _F, 0, 1, meaning="nucleus sampling mass"),
        ParameterSpec("min_p", _F, 0, 1, meaning="minimum probability relative to the top"),
        ParameterSpec("typical_p", _F, 0, 1, meaning="locally typical sampling"),
        ParameterSpec("repeat_last_n", _I, -1, meaning="look-back for penalties (-1: num_ctx)"),
        ParameterSpec("temperature", _F, 0, meaning="sampling temperature"),
        ParameterSpec("repeat_penalty", _F, 0, exclusive_minimum=True, meaning="1: none"),
        ParameterSpec("presence_penalty", _F, meaning="penalty for tokens already present"),
        ParameterSpec("frequency_penalty", _F, meaning="penalty by token frequency"),
        ParameterSpec("stop", ParamType.STRING_LIST, meaning="stop sequence (repeatable)"),
    )
}

#: Accepted by ``ollama create`` with "warning: parameter X is deprecated", then dropped.
DEPRECATED_PARAMETERS: frozenset[str] = frozenset(
    {
        "penalize_newline",
        "low_vram",
        "f16_kv",
        "logits_all",
        "vocab_only",
        "use_mlock",
        "mirostat",
        "mirostat_tau",
        "mirostat_eta",
    }
)

Value = int | float | bool | str | list[str]


def coerce(name: str, value: str) -> int | float | bool | str:
    """``FormatParams`` for one ``PARAMETER name value`` line; raises :class:`ParameterError`.

    A ``stop`` value comes back as the string itself (callers accumulate them).
    """
    spec = PARAMETERS.get(name)
    if spec is None:
        raise ParameterError(f"unknown parameter '{name}'")
    try:
        if spec.type is ParamType.INT:
            return go_strconv.parse_int(value)
        if spec.type is ParamType.FLOAT:
            return go_strconv.parse_float(value, 32)
        if spec.type is ParamType.BOOL:
            return go_strconv.parse_bool(value)
    except ValueError:
        raise ParameterError(f"invalid {spec.type.value} value [{value}]") from None
    return value


def range_problem(name: str, value: int | float | bool | str) -> str | None:
    """Why a coerced value is meaningless for ``name``, or ``None`` when it is fine."""
    spec = PARAMETERS[name]
    if spec.type is ParamType.STRING_LIST:
        return "an empty stop sequence is useless" if value == "" else None
    if spec.type is ParamType.BOOL:
        return None
    assert isinstance(value, int | float)
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} must be a finite number, got {value}"
    low, high = spec.minimum, spec.maximum
    too_low = low is not None and (value <= low if spec.exclusive_minimum else value < low)
    too_high = high is not None and value > high
    if too_low or too_high:
        return f"{name} must be {spec.range_text()}, got {value:g}"
    return None


def suggest(name: str) -> str | None:
    """The accepted name a typo most likely meant (``Temperature`` -> ``temperature``)."""
    if name.lower() in PARAMETERS:
        return name.lower()
    close = difflib.get_close_matches(name.lower(), PARAMETERS, n=1, cutoff=0.75)
    return close[0] if close else None


def resolve(pairs: Iterable[tuple[str, str]]) -> dict[str, Value]:
    """The ``parameters`` map ``ollama create`` sends, from (name, value) pairs in file order.

    Deprecated names are dropped, ``stop`` accumulates, any other name keeps its last value;
    the first bad line raises, as ``CreateRequest`` does.
    """
    out: dict[str, Value] = {}
    for name, value in pairs:
        if name in DEPRECATED_PARAMETERS:
            continue
        coerced = coerce(name, value)
        if PARAMETERS[name].type is ParamType.STRING_LIST:
            stops = out.setdefault(name, [])
            assert isinstance(stops, list)
            stops.append(value)
        else:
            out[name] = coerced
    return out


def format_value(value: object) -> str:
    """Text for a PARAMETER line from a Python value (``True`` -> ``true``, ``0.7`` -> ``0.7``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value).replace("inf", "Inf")
    return str(value)
