"""The port a front implements so core can show messages without knowing Slack or terminals."""

from __future__ import annotations

from typing import Protocol

from modelarium.core.messages import Message


class DeliveryError(Exception):
    """A send failed; ``retry_after`` (seconds) is set when the receiver asked us to wait.

    ``permanent`` failures (a bad channel, a refused message) are not ``retryable``.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.retryable = not permanent


class MessageSender(Protocol):
    """Posts a message to a channel, or edits the one at ``ref``; returns the message's ref.

    ``thread`` is the ref of the message a new one follows up on (a reply in its thread).
    """

    name: str

    def send(
        self, channel: str | None, message: Message, ref: str | None, *, thread: str | None = None
    ) -> str: ...
