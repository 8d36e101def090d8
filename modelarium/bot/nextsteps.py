"""Buttons for the obvious next step beside a listing, each with a link to the model's Hub page.

Every button is a command text twin run as whoever presses it (the presser's role is checked
like typing it), so a listing offers them to everyone and the command refuses whom it must.
Only the first rows of a page get buttons: a card of fifty button rows is no help to anyone.
"""

from __future__ import annotations

from collections.abc import Iterable

from modelarium.core.messages import Button, Message

ROWS_WITH_BUTTONS = 3


def hub_link(hub_url: str, repo_id: str, label: str = "Hub page") -> str:
    """A link to the model's page on the Hub (``HF_ENDPOINT``), shown by every front."""
    return f"<{hub_url.rstrip('/')}/{repo_id}|{label}>"


def add_steps(message: Message, steps: Iterable[tuple[str, tuple[Button, ...]]]) -> None:
    """For each (line, buttons): a small line naming the row, then its buttons."""
    for line, buttons in steps:
        message.context(line)
        message.buttons(*buttons)
