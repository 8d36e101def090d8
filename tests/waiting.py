"""Waiting for something a background thread or process will do.

A wait's timeout is how long a loaded CI machine may take, never the thing under test: a
generous one costs nothing when the condition comes true, so tests that assert *speed* measure
it themselves and tests that wait for an *outcome* use :func:`eventually`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

PATIENCE = 30.0


def eventually(predicate: Callable[[], T], timeout: float = PATIENCE, what: str = "") -> T:
    """``predicate()``'s first truthy value, polled every 50 ms; AssertionError after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s" + (f": {what}" if what else ""))
        time.sleep(0.05)
    return value
