"""Checking what users type about endpoints: names, base URLs, types, health paths and keys.

Errors are one line and never echo a URL that carried credentials, or a key.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit, urlunsplit

from modelarium.core.clients.addresses import AddressPolicy, parse_numeric_host
from modelarium.core.errors import PermissionDeniedError, UsageError

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


def _invisible(text: str) -> tuple[int, str] | None:
    """(position, U+XXXX) of the first control, format (bidi overrides, zero-width) or
    line/paragraph separator character: none of them belongs in a URL or a path, and shown
    back they hide or reorder what people read (``\u202egpj.exe`` reads as ``exe.jpg``)."""
    for index, ch in enumerate(text):
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            return index, f"U+{ord(ch):04X}"
    return None


def _refuse_invisible(text: str, what: str) -> None:
    found = _invisible(text)
    if found is not None:
        index, code = found
        raise UsageError(
            f"{what} contains a control or invisible character ({code} at position "
            f"{index + 1}); type it again without it"
        )


def check_url(url: str) -> str:
    """The normalized base URL (lower-case scheme and host, no trailing slash)."""
    text = (url or "").strip()
    if not text:
        raise UsageError("give the endpoint's base URL, e.g. http://gpu-1:11434")
    if len(text) > 1024:
        raise UsageError("the URL is longer than 1024 characters")
    _refuse_invisible(text, "the URL")
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
    numeric = parse_numeric_host(host)
    if numeric is not None and numeric.version == 4 and host != str(numeric):
        # 2130706433, 0x7f.1, 0177.0.0.1: resolvers read them as an address; say it plainly
        raise UsageError(
            f"refused: {host[:40]!r} is {numeric} written another way; write IPv4 addresses "
            f"as four decimal numbers ({numeric})"
        )
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), "", ""))


def check_address(url: str, policy: AddressPolicy) -> None:
    """Refuse a (normalized) URL whose host is, or resolves to, an address endpoints may not
    use. The connection is checked again when it is made (the name may resolve differently)."""
    host = urlsplit(url).hostname or ""
    reason = policy.check_host(host)
    if reason:
        raise UsageError(_refusal(reason))


def check_addresses(urls: list[str], policy: AddressPolicy) -> dict[str, str]:
    """:func:`check_address` for many URLs at once: ``{url: one-line reason}`` of the refused."""
    hosts = {url: urlsplit(url).hostname or "" for url in urls}
    refused = policy.check_hosts(hosts.values())
    return {url: _refusal(refused[host]) for url, host in hosts.items() if host in refused}


def _refusal(reason: str) -> str:
    return (
        f"refused: {reason}; endpoints may not use loopback, link-local, private or cloud "
        "metadata addresses (an admin can allow it with MODELARIUM_ENDPOINT_ALLOWLIST)"
    )


def check_health_path_role(path: str | None, operator: bool) -> None:
    """A custom health path chooses the GET the daemon sends: operators and admins only."""
    if path is not None and path != DEFAULT_HEALTH_PATH and not operator:
        raise PermissionDeniedError(
            "a custom health path needs the operator role (it chooses the request the daemon "
            f"sends); without one, custom endpoints are checked at {DEFAULT_HEALTH_PATH}"
        )


def check_health_path(path: str | None, kind: str) -> str | None:
    if kind != "custom":
        if path:
            raise UsageError("--health-path applies to custom endpoints only (--type custom)")
        return None
    value = (path or DEFAULT_HEALTH_PATH).strip()
    _refuse_invisible(value, "the health path")
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
