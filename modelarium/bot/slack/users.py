"""Display names of Slack users, for the places Slack shows raw ids (code blocks, tables).

Core and the handlers speak of users as ``<@U…>`` references; Slack resolves those in mrkdwn,
but not inside a code block, where a table would show ``<@U0CAROL>``. The Slack renderer asks
this directory for a name instead: ``users.info`` through slack_sdk, cached for ``ttl`` seconds
(names change rarely; a table of twenty rows must not cost twenty API calls each time). An id
Slack does not know (``daemon``, a deleted account, an API outage) is shown as it is.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from modelarium.core.logging import get_logger

log = get_logger(__name__)

USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
"""What Slack user ids look like; anything else (``daemon``, ``api``) is not looked up."""

LOOKUPS_PER_MESSAGE = 40
"""Uncached look-ups one message may make; a table of thousands of people shows the rest as
ids rather than spend minutes (and Slack's rate limit) on names nobody scrolls to."""

DEFAULT_TTL = 3600.0
FAILURE_TTL = 60.0
"""A failed look-up is retried after a minute, not on every message."""


class UserDirectory:
    """``names(user_id) -> display name``, cached with a time to live; thread-safe."""

    def __init__(
        self,
        client: WebClient,
        *,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str, float]] = {}
        self.lookups = 0
        """Calls made to Slack so far (metrics, tests)."""

    def __call__(self, user: str) -> str:
        return self._resolve(user, lookup=True)[0] or user

    def limited(self, lookups: int = LOOKUPS_PER_MESSAGE) -> Callable[[str], str]:
        """Names for one message: cached names always, at most ``lookups`` calls to Slack."""
        left = [lookups]

        def name(user: str) -> str:
            found, called = self._resolve(user, lookup=left[0] > 0)
            left[0] -= called
            return found or user

        return name

    def _resolve(self, user: str, *, lookup: bool) -> tuple[str | None, bool]:
        """(name or None when not cached and ``lookup`` is off, whether Slack was called)."""
        if not USER_ID.match(user):
            return user, False
        now = self._clock()
        with self._lock:
            cached = self._cache.get(user)
        if cached is not None and cached[1] > now:
            return cached[0], False
        if not lookup:
            return None, False
        name, ttl = self._look_up(user)
        with self._lock:
            self._cache[user] = (name, now + ttl)
            self.lookups += 1
        return name, True

    def _look_up(self, user: str) -> tuple[str, float]:
        try:
            info = self.client.users_info(user=user)["user"]
        except (SlackApiError, SlackClientError, OSError, KeyError, TypeError) as exc:
            log.info("slack.user_lookup_failed", user=user, error=type(exc).__name__)
            return user, FAILURE_TTL
        profile = info.get("profile") or {}
        name = (
            profile.get("display_name")
            or profile.get("real_name")
            or info.get("real_name")
            or info.get("name")
            or user
        )
        return str(name), self.ttl
