"""Errors that cross layer boundaries.

Every error a user can cause derives from :class:`ModelariumError`; its ``str()`` is one line a
front can show as-is. Anything else reaching a front is a bug: it is logged with a traceback and
the user sees a short "internal error" line with a reference id.
"""

from __future__ import annotations

from modelarium.core.echo import bound_words


class ModelariumError(Exception):
    """Base for expected, user-facing failures. ``str(e)`` is a single human-readable line.

    ``retryable`` says whether trying the same thing again later may succeed (see
    :func:`is_retryable`); a subclass sets its default, a raise site may override it.
    """

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        # one line, and no echo of user input past a bounded length (core.echo)
        super().__init__(bound_words(message.splitlines()[0]) if message else message)
        if retryable is not None:
            self.retryable = retryable


class UsageError(ModelariumError):
    """The command was called wrongly (bad argument, unknown flag, out-of-range value)."""


class NotFoundError(ModelariumError):
    """The named thing (model, endpoint, job...) does not exist or is not visible to the caller."""


class PermissionDeniedError(ModelariumError):
    """The caller's role does not allow the action."""


class AuthenticationError(ModelariumError):
    """The caller could not be identified: a missing, unknown, expired or revoked API token."""


class ConflictError(ModelariumError):
    """The action conflicts with current state (already decided, already installed, ...)."""


class ValidationError(ModelariumError):
    """Input parsed but is not acceptable (a Modelfile error, an invalid URL, ...)."""


class UpstreamError(ModelariumError):
    """An external system (Hugging Face, Kubernetes, an endpoint, ...) failed or is unreachable.

    Not retryable by default (a refusal repeats); the "unreachable" subclasses are.
    """


class UnreachableError(UpstreamError):
    """The external system did not answer (network, DNS, timeout, 5xx, 429): worth retrying."""

    retryable = True


class NotBuiltError(ModelariumError):
    """The capability exists on the map but is not built yet; said plainly, never faked."""


def is_retryable(exc: BaseException) -> bool:
    """The one rule every retry loop (jobs, deliveries, downloads) applies.

    An error that knows says so through ``retryable`` (a :class:`ModelariumError`, an Ollama or
    delivery error). Anything else is unexpected here (an OSError, a dropped connection, a bug):
    it gets the bounded retries, since giving up at once would turn every blip into a failure.
    """
    retryable = getattr(exc, "retryable", None)
    if isinstance(retryable, bool):
        return retryable
    return True
