"""Human spellings of context lengths and model sizes ("32k", "8B"), shared by commands and filters.

Context suffixes are binary (``32k`` = 32768) because context windows are published as powers of
two: "128k" on a model card means 131072. vLLM itself reads ``1k`` as 1000, so anything we hand to
vLLM is written out as a plain integer.
"""

from __future__ import annotations

import re

from modelarium.core.errors import UsageError

_CONTEXT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([km]?)\s*(?:tokens?|tok)?\s*$", re.IGNORECASE)
_CONTEXT_UNITS = {"": 1, "k": 1024, "m": 1024 * 1024}

_SIZE_RE = re.compile(
    r"^\s*(?:(\d+)\s*x\s*)?(\d+(?:\.\d+)?)\s*([kmbt]?)\s*(?:params?)?\s*$", re.IGNORECASE
)
_SIZE_UNITS = {"k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}


def parse_context(value: str | int) -> int:
    """Tokens from ``"32k"`` (32768), ``"128K"``, ``"8192"``, ``"1.5k"`` (1536) or an int."""
    if isinstance(value, bool):
        raise UsageError(f"not a context length: {value!r} (examples: 8192, 32k, 128k)")
    if isinstance(value, int):
        tokens = value
    else:
        match = _CONTEXT_RE.match(str(value))
        if not match:
            raise UsageError(f"not a context length: {value!r} (examples: 8192, 32k, 128k)")
        tokens = int(float(match.group(1)) * _CONTEXT_UNITS[match.group(2).lower()])
    if tokens <= 0:
        raise UsageError(f"context length must be positive: {value!r}")
    return tokens


def parse_param_size(value: str | int | float) -> int:
    """Parameter count from ``"8B"``, ``"70b"``, ``"1.5B"``, ``"500M"``, ``"1T"`` or ``"8x7B"``.

    A bare number below 10,000 means billions (``"8"`` → 8e9), because that is what people type in
    a size filter; a larger bare number is taken as a raw count. ``"8x7B"`` is the nominal product
    (56e9), which is how MoE names are written, not the real count (Mixtral-8x7B has 46.7B).
    """
    if isinstance(value, bool):
        raise UsageError(f"not a model size: {value!r} (examples: 8B, 1.5B, 500M)")
    if isinstance(value, int | float):
        number, unit, times = float(value), "", 1
    else:
        match = _SIZE_RE.match(str(value))
        if not match:
            raise UsageError(f"not a model size: {value!r} (examples: 8B, 70b, 1.5B, 500M)")
        times = int(match.group(1) or 1)
        number, unit = float(match.group(2)), match.group(3).lower()
    if unit:
        count = number * _SIZE_UNITS[unit]
    else:
        count = number * 10**9 if number < 10_000 else number
    count *= times
    if count <= 0:
        raise UsageError(f"model size must be positive: {value!r}")
    return round(count)


def format_params(count: float) -> str:
    """``8030261248 -> '8.03B'``: the way model cards write sizes."""
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(count) >= scale:
            return f"{count / scale:.2f}{unit}"
    return f"{count:.0f}"


def format_gib(num_bytes: float) -> str:
    """Bytes as GiB with two decimals, the unit nvidia-smi and vLLM logs use."""
    return f"{num_bytes / 2**30:.2f} GiB"
