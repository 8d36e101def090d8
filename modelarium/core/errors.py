"""Errors that cross layer boundaries.

Every error a user can cause derives from :class:`ModelariumError`; its ``str()`` is one line a
front can show as-is. Anything else reaching a front is a bug: it is logged with a traceback and
the user sees a short "internal error" line with a reference id.
"""

from __future__ import annotations


class ModelariumError(Exception):
    """Base for expected, user-facing failures. ``str(e)`` is a single human-readable line."""

    def __init__(self, message: str) -> None:
        super().__init__(message.splitlines()[0] if message else message)


class UsageError(ModelariumError):
    """The command was called wrongly (bad argument, unknown flag, out-of-range value)."""


class NotFoundError(ModelariumError):
    """The named thing (model, endpoint, job...) does not exist or is not visible to the caller."""


class PermissionDeniedError(ModelariumError):
    """The caller's role does not allow the action."""


class ConflictError(ModelariumError):
    """The action conflicts with current state (already decided, already installed, ...)."""


class ValidationError(ModelariumError):
    """Input parsed but is not acceptable (a Modelfile error, an invalid URL, ...)."""


class UpstreamError(ModelariumError):
    """An external system (Hugging Face, Kubernetes, an endpoint, ...) failed or is unreachable."""


class NotBuiltError(ModelariumError):
    """The capability exists on the map but is not built yet; said plainly, never faked."""
