"""What a command handler returns: a front-neutral message plus structured data for scripts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from modelarium.core.echo import bound_words
from modelarium.core.messages import Form, Message


@dataclass(frozen=True)
class Attachment:
    """A file to hand the user (Slack upload; written to disk by the terminal fronts)."""

    filename: str
    content: bytes
    title: str | None = None


Outcome = Literal[
    "ok",
    "usage",
    "denied",
    "unknown",
    "not_found",
    "conflict",
    "invalid",
    "upstream",
    "not_built",
    "error",
    "crash",
]
"""How a command ended, set by the runner (``CommandRunner.execute``) for fronts that need more
than ok/not ok: the HTTP API's status codes, the ``outcome`` label of the command metrics."""


@dataclass
class Reply:
    message: Message
    ok: bool = True
    data: dict[str, Any] = field(default_factory=dict)
    files: list[Attachment] = field(default_factory=list)
    form: Form | None = None
    """Ask for input first (a modal in Slack, prompts in the terminal), then run form.command."""
    visibility: Literal["ephemeral", "in_channel"] = "ephemeral"
    replace_original: bool = False
    """When answering a button, replace the message the button was on."""
    outcome: Outcome = "ok"

    @property
    def text(self) -> str:
        from modelarium.core.messages import render_plain

        return render_plain(self.message)

    @classmethod
    def say(cls, text: str, **data: Any) -> Reply:
        return cls(Message().text(text), data=data)

    @classmethod
    def error(
        cls, text: str, *, usage: str | None = None, data: dict[str, Any] | None = None
    ) -> Reply:
        text = bound_words(text)
        message = Message(fallback=text).text(f"⚠️ {text}")
        if usage:
            message.context(f"Usage: `{usage}`")
        return cls(message, ok=False, data={"error": text, **(data or {})})
