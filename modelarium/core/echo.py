"""Echoing what a user typed back to them, bounded.

Replies quote arguments ("no model 'x'", "did you mean", usage errors). A 100,000-character
argument must not come back whole, into Slack or a log line: every echo goes through
:func:`shown`, which keeps the start and says how much it left out.

Error lines get the same bound as a backstop (:func:`bound_words`, applied by every
``ModelariumError`` and ``Reply.error``): whatever a raise site quoted, no word of it runs past
``2 × ECHO_LIMIT`` characters.
"""

from __future__ import annotations

import re

ECHO_LIMIT = 80
"""Characters of user text a reply repeats; enough for any real model name, id or flag value."""


def shown(value: object, *, limit: int = ECHO_LIMIT, quote: bool = True) -> str:
    """``value`` as a reply quotes it: ``repr``-quoted (unless ``quote`` is false), and past
    ``limit`` characters cut, with the number of characters left out."""
    text = str(value)
    if len(text) <= limit:
        return repr(text) if quote else text
    head = text[:limit] + "…"
    return f"{repr(head) if quote else head} ({len(text) - limit:,} more characters)"


LONG_WORD = 2 * ECHO_LIMIT
"""No legitimate word of an error line (a URL, a digest, a model id) is longer than this."""

_LONG_WORD = re.compile(rf"\S{{{LONG_WORD + 1},}}")


def bound_words(text: str) -> str:
    """``text`` with every word longer than :data:`LONG_WORD` cut as :func:`shown` cuts it."""
    if len(text) <= LONG_WORD:
        return text
    return _LONG_WORD.sub(lambda m: shown(m.group(0), quote=False), text)
