"""Helpers for the daemon mechanism tests."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

import pytest

from modelarium.core.messages import Message
from modelarium.core.notify import DeliveryError


@dataclass
class Posted:
    channel: str | None
    ref: str
    message: Message
    history: list[Message] = field(default_factory=list)
    thread: str | None = None

    @property
    def text(self) -> str:
        return self.message.plain_text()


class RecordingSender:
    """A MessageSender that keeps every post and edit, like a chat service would show them.

    ``fail`` makes the next sends raise the given DeliveryError (one per entry).
    """

    name = "recording"

    def __init__(self) -> None:
        self.posts: list[Posted] = []
        self.fail: list[DeliveryError] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def send(
        self, channel: str | None, message: Message, ref: str | None, *, thread: str | None = None
    ) -> str:
        with self._lock:
            if self.fail:
                raise self.fail.pop(0)
            if ref is None:
                posted = Posted(channel, f"m{next(self._ids)}", message, thread=thread)
                self.posts.append(posted)
                return posted.ref
            posted = next(p for p in self.posts if p.ref == ref)
            posted.history.append(posted.message)
            posted.message = message
            return ref

    def messages(self, channel: str | None = None) -> list[Posted]:
        with self._lock:
            return [p for p in self.posts if channel is None or p.channel == channel]


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender()
