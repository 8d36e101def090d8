"""The scopes an API token may carry. A token acts as its owner, with the owner's current role;
its scopes narrow what it may do further (which command needs which scope is the HTTP API's
one table, ``modelarium.bot.api.scopes``)."""

from __future__ import annotations

from modelarium.core.errors import UsageError

SCOPES: dict[str, str] = {
    "read": "list and show: jobs, changes, approvals, weights, status...",
    "deploy": "propose and run changes to the fleet: install, purge, deploy, cancel, revert...",
    "approve": "approve or reject pending requests",
    "catalog": "the model catalog in Git: add, validate, open pull requests",
    "admin": "everything the owner's role allows, including roles and tokens",
}
ADMIN = "admin"


def parse_scopes(text: str | None, *, default: tuple[str, ...] = ("read",)) -> tuple[str, ...]:
    """``"read,deploy"`` -> ``("deploy", "read")``; unknown names are a usage error."""
    if text is None:
        return default
    names = sorted({part.strip().lower() for part in text.split(",") if part.strip()})
    if not names:
        raise UsageError(f"--scope needs at least one of {', '.join(SCOPES)}")
    unknown = [n for n in names if n not in SCOPES]
    if unknown:
        raise UsageError(f"unknown scope {unknown[0]!r}; scopes are {', '.join(SCOPES)}")
    return tuple(names)


def allows(scopes: tuple[str, ...] | list[str], needed: str) -> bool:
    """``admin`` covers every scope; otherwise the scope must be listed."""
    return ADMIN in scopes or needed in scopes
