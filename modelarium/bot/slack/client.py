"""The Slack Web API client every Slack part of the bot shares, with retries set from settings.

Short waits are absorbed here (a dropped connection, a 5xx, a 429 whose ``Retry-After`` is a few
seconds); a long ``Retry-After`` is *not* slept through in-process: the error surfaces so the
outbox can reschedule the message (``DeliveryError.retry_after``) instead of blocking a thread.
"""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry import (
    ConnectionErrorRetryHandler,
    HttpRequest,
    HttpResponse,
    RateLimitErrorRetryHandler,
    RetryHandler,
    RetryState,
)
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler

from modelarium.config.settings import Settings
from modelarium.core.errors import ModelariumError

MAX_INLINE_RETRY_AFTER = 10.0
"""Longest ``Retry-After`` (seconds) honoured by sleeping inside the call."""


def retry_after_seconds(headers: dict[str, object] | None) -> float | None:
    """``Retry-After`` from response headers (any case, str or list values), in seconds."""
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) and value else value
            try:
                return float(str(raw))
            except ValueError:
                return None
    return None


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Retries a 429 after its ``Retry-After``, but only when that wait is short."""

    def __init__(self, max_retry_count: int = 1, max_wait: float = MAX_INLINE_RETRY_AFTER):
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = retry_after_seconds(dict(response.headers))
        return wait is None or wait <= self.max_wait


def retry_handlers(attempts: int) -> list[RetryHandler]:
    if attempts <= 0:
        return []
    return [
        ConnectionErrorRetryHandler(max_retry_count=attempts),
        BoundedRateLimitRetryHandler(max_retry_count=attempts),
        ServerErrorRetryHandler(max_retry_count=attempts),
    ]


def web_client(settings: Settings, *, timeout: int = 15) -> WebClient:
    """A WebClient for ``settings.slack_api_url`` authenticated with the bot token."""
    if settings.slack_bot_token is None:
        raise ModelariumError("SLACK_BOT_TOKEN is not set; the Slack front needs it")
    return WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=timeout,
        retry_handlers=retry_handlers(settings.slack_retry_attempts),
    )
