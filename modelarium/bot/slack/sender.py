"""Delivers the outbox to Slack: post a message the first time, edit it in place afterwards.

Approval cards, job progress and alerts are published by core under a key; this sender turns
each version into ``chat.postMessage`` (ref ``"<channel>|<ts>"``) or ``chat.update`` on that ref,
and maps Slack's failures onto :class:`DeliveryError` so the outbox knows whether to wait
(rate limits, outages) or give up (a channel that does not exist, a revoked token).
"""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from modelarium.bot.slack.blocks import render_message
from modelarium.bot.slack.client import retry_after_seconds, web_client
from modelarium.bot.slack.users import UserDirectory
from modelarium.config.settings import Settings
from modelarium.core.messages import Message
from modelarium.core.notify.sender import DeliveryError

PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "account_inactive",
        "missing_scope",
        "invalid_blocks",
        "invalid_arguments",
        "msg_too_long",
        "no_text",
        "message_not_found",
        "cant_update_message",
        "restricted_action",
    }
)


class SlackSender:
    """A :class:`~modelarium.core.notify.MessageSender` for Slack."""

    name = "slack"

    def __init__(self, client: WebClient, names: UserDirectory | None = None) -> None:
        self.client = client
        self.names = names or UserDirectory(client)

    @classmethod
    def from_settings(cls, settings: Settings) -> SlackSender:
        return cls(web_client(settings))

    def send(
        self, channel: str | None, message: Message, ref: str | None, *, thread: str | None = None
    ) -> str:
        payload = render_message(message, names=self.names.limited())
        try:
            if ref:
                ref_channel, _, ts = ref.partition("|")
                if not ts:
                    raise DeliveryError(f"not a Slack message ref: {ref!r}", permanent=True)
                self.client.chat_update(channel=ref_channel, ts=ts, **payload)
                return ref
            if thread:
                # a follow-up: in the thread of the message it answers, in that message's channel
                thread_channel, _, thread_ts = thread.partition("|")
                if thread_channel and thread_ts:
                    channel, payload = thread_channel, {**payload, "thread_ts": thread_ts}
            if not channel:
                raise DeliveryError("no Slack channel configured for this message", permanent=True)
            response = self.client.chat_postMessage(channel=channel, **payload)
            return f"{response['channel']}|{response['ts']}"
        except SlackApiError as exc:
            raise delivery_error(exc) from exc
        except (SlackClientError, OSError) as exc:  # timeouts, refused connections
            raise DeliveryError(f"Slack unreachable: {type(exc).__name__}: {exc}") from exc


def delivery_error(exc: SlackApiError) -> DeliveryError:
    response = exc.response
    status = getattr(response, "status_code", 200)
    error = str(response.get("error") or f"HTTP {status}") if response is not None else "?"
    if status == 429 or error == "ratelimited":
        retry_after = retry_after_seconds(dict(getattr(response, "headers", {}) or {}))
        return DeliveryError(f"Slack rate limit ({error})", retry_after=retry_after or 1.0)
    if error in PERMANENT_ERRORS:
        return DeliveryError(f"Slack refused the message: {error}", permanent=True)
    return DeliveryError(f"Slack error: {error}")
