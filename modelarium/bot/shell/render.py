"""Terminal rendering: readable text, mentions shown as @user, buttons numbered to press."""

from __future__ import annotations

import re

from modelarium.core.messages import Actions, Button, Message, render_plain

_MENTION = re.compile(r"<@([A-Za-z0-9._-]+)(?:\|[^>]*)?>")
_GROUP = re.compile(r"<!subteam\^([A-Za-z0-9]+)(?:\|[^>]*)?>")
_LINK = re.compile(r"<((?:https?|mailto):[^<>|\s]+)(?:\|([^<>]*))?>")
_MRKDWN_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
# Controls a terminal acts on (ESC starts ANSI sequences: clear the screen, retitle the window,
# fake a prompt; BEL, backspace, CR overwrite what was shown) and bidi controls that reorder
# text. Line feeds and tabs are layout, and stay.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """Control characters shown as escapes (``\\x1b[31m``), never sent to the terminal raw:
    stored text (notes, Modelfiles, names) comes from other people."""
    return _CONTROLS.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def to_terminal(text: str) -> str:
    text = _MENTION.sub(r"@\1", text)
    text = _GROUP.sub(r"@group:\1", text)
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text)
    return visible(_MRKDWN_BOLD.sub(r"\1", text))


def render(message: Message, first_number: int = 1) -> tuple[str, list[Button]]:
    """Text with buttons shown as ``[n] Label``, numbering from ``first_number``."""
    buttons = [b for block in message.blocks if isinstance(block, Actions) for b in block.buttons]
    text = render_plain(
        message, numbered_buttons=True, first_number=first_number, text_filter=to_terminal
    )
    return visible(text), buttons  # code blocks and button labels are not filtered
