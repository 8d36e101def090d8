"""Human units in settings and commands: durations ("90s", "2h") and sizes ("500GiB").

Operators write these in env vars, config files and slash commands; one parser keeps them
consistent everywhere.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

MAX_DURATION = 100 * 365 * 86400
"""The longest duration anything accepts, so that ``now + duration`` stays a valid date."""

_SIZE_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([kmgtp]?i?b?)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "p": 1000**5,
    "pb": 1000**5,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
    "ti": 1024**4,
    "tib": 1024**4,
    "pi": 1024**5,
    "pib": 1024**5,
}


def parse_duration(value: str | int | float | timedelta) -> float:
    """Seconds from ``"90"``, ``"90s"``, ``"5m"``, ``"2h"``, ``"1d"`` or a number (not negative)."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION_RE.match(str(value))
        if not match:
            raise ValueError(f"not a duration: {value!r} (examples: 30s, 5m, 2h, 1d)")
        seconds = float(match.group(1)) * _DURATION_UNITS[(match.group(2) or "s").lower()]
    if seconds < 0:
        raise ValueError(f"duration must not be negative: {value!r}")
    if seconds > MAX_DURATION:
        # later arithmetic (now + duration) would overflow datetime
        raise ValueError(f"duration must be at most 100 years: {str(value)[:40]!r}")
    return seconds


def parse_size(value: str | int | float) -> int:
    """Bytes from ``"500GiB"``, ``"2TB"``, ``"1.5G"`` or a number; never negative."""
    if isinstance(value, int | float):
        size = float(value)
    else:
        match = _SIZE_RE.match(str(value))
        if not match:
            raise ValueError(f"not a size: {value!r} (examples: 500GiB, 2TB, 1048576)")
        unit = (match.group(2) or "").lower()
        if unit not in _SIZE_UNITS:
            raise ValueError(f"unknown size unit in {value!r}")
        size = float(match.group(1)) * _SIZE_UNITS[unit]
    if size < 0:
        raise ValueError(f"size must not be negative: {value!r}")
    return int(size)


def format_size(num_bytes: float) -> str:
    """``1536 -> '1.5 KiB'``: binary units, as `df -h` and Kubernetes use."""
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover - loop always returns


def format_duration(seconds: float) -> str:
    """``5400 -> '1h30m'``: compact, for cards and tables."""
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    days, rem = divmod(total, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    parts = []
    if days:
        parts.append(f"{days}d")
    if hours:
        parts.append(f"{hours}h")
    if minutes and not days:
        parts.append(f"{minutes}m")
    if secs and not (days or hours):
        parts.append(f"{secs}s")
    return "".join(parts)
