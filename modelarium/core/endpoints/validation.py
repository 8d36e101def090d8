"""Checking what users type about endpoints: names, base URLs, types, health paths and keys.

Errors are one line and never echo a URL that carried credentials, or a key.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from modelarium.core.errors import UsageError

TYPES = ("ollama", "openai-compatible", "custom")
SHARED_WITH = ("owner", "everyone")
DEFAULT_HEALTH_PATH = "/health"

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_TYPE_ALIASES = {"openai": "openai-compatible", "openai_compatible": "openai-compatible"}
MIN_KEY_FOR_LAST4 = 12
"""Keys shorter than this do not show their last four characters (that would be a third of it)."""


def check_name(name: str) -> str:
    value = (name or "").strip().lower()
    if not _NAME.match(value):
        raise UsageError(
            f"bad endpoint name {name[:70]!r}: use up to 64 lowercase letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return value


def check_type(kind: str) -> str:
    value = (kind or "").strip().lower()
    value = _TYPE_ALIASES.get(value, value)
    if value not in TYPES:
        raise UsageError(f"endpoint type must be one of {', '.join(TYPES)} (got {kind[:40]!r})")
    return value


def check_shared_with(value: str) -> str:
    text = (value or "").strip().lower()
    if text not in SHARED_WITH:
        raise UsageError(f"shared-with must be owner (private) or everyone (got {value[:40]!r})")
    return text


def check_url(url: str) -> str:
    """The normalized base URL (lower-case scheme and host, no trailing slash)."""
    text = (url or "").strip()
    if not text:
        raise UsageError("give the endpoint's base URL, e.g. http://gpu-1:11434")
    if len(text) > 1024:
        raise UsageError("the URL is longer than 1024 characters")
    if any(c.isspace() for c in text):
        raise UsageError("the URL must not contain spaces")
    parts = urlsplit(text)
    if "@" in parts.netloc:
        # Checked first, and without echoing the URL: it may carry a password.
        raise UsageError(
            "the URL must not contain credentials (user:password@host); "
            "give an API key with --api-key - instead"
        )
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        got = f"{scheme}://" if scheme and "://" in text else text[:60]
        raise UsageError(f"the URL must start with http:// or https:// (got {got!r})")
    if not parts.hostname:
        raise UsageError("the URL has no host name, e.g. http://gpu-1:11434")
    try:
        port = parts.port
    except ValueError:
        raise UsageError("the URL's port is not a number between 0 and 65535") from None
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise UsageError(
            "the base URL must not have a query string or fragment "
            "(keys go in --api-key -, paths in --health-path)"
        )
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), "", ""))


def check_health_path(path: str | None, kind: str) -> str | None:
    if kind != "custom":
        if path:
            raise UsageError("--health-path applies to custom endpoints only (--type custom)")
        return None
    value = (path or DEFAULT_HEALTH_PATH).strip()
    if not value.startswith("/") or value.startswith("//"):
        raise UsageError(
            f"the health path must start with a single '/', e.g. /health (got {value[:60]!r})"
        )
    if len(value) > 255 or any(c.isspace() for c in value) or "#" in value:
        raise UsageError("the health path must be under 255 characters, without spaces or '#'")
    return value


def check_api_key(key: str) -> str:
    value = (key or "").strip()
    if not value:
        raise UsageError("the API key is empty")
    if len(value) > 4096:
        raise UsageError("the API key is longer than 4096 characters")
    if not value.isascii() or any(c.isspace() or not c.isprintable() for c in value):
        raise UsageError("the API key must be printable ASCII without spaces")
    return value


def last4(key: str) -> str | None:
    return key[-4:] if len(key) >= MIN_KEY_FOR_LAST4 else None
