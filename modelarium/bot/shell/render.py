"""Terminal rendering: readable text, mentions shown as @user, buttons numbered to press."""

from __future__ import annotations

import re

from modelarium.core.messages import Actions, Button, Message, render_plain

_MENTION = re.compile(r"<@([A-Za-z0-9._-]+)(?:\|[^>]*)?>")
_MRKDWN_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")


def to_terminal(text: str) -> str:
    text = _MENTION.sub(r"@\1", text)
    return _MRKDWN_BOLD.sub(r"\1", text)


def render(message: Message, first_number: int = 1) -> tuple[str, list[Button]]:
    """Text with buttons shown as ``[n] Label``, numbering from ``first_number``."""
    buttons = [b for block in message.blocks if isinstance(block, Actions) for b in block.buttons]
    text = render_plain(
        message, numbered_buttons=True, first_number=first_number, text_filter=to_terminal
    )
    return text, buttons
