"""The outbox through Slack: post, edit in place, rate limits and permanent failures."""

from __future__ import annotations

import time

import pytest
from slack_sdk import WebClient

from modelarium.bot.slack.client import retry_handlers
from modelarium.bot.slack.groups import members_of
from modelarium.bot.slack.sender import SlackSender
from modelarium.core.app import Core
from modelarium.core.db.models.notify import OutboundMessage
from modelarium.core.errors import NotFoundError
from modelarium.core.messages import Message
from modelarium.core.notify import DeliveryError
from tests.fakes.slack import FakeSlack
from tests.integration.slack.conftest import CHANNEL


@pytest.fixture
def sender(fake_slack: FakeSlack) -> SlackSender:
    client = WebClient(
        token=fake_slack.token, base_url=fake_slack.api_url, retry_handlers=retry_handlers(2)
    )
    return SlackSender(client)


def _row(core: Core, key: str) -> OutboundMessage:
    with core.db.transaction() as session:
        row = session.get(OutboundMessage, key)
        assert row is not None
        return row


def test_post_then_edit_in_place(core: Core, fake_slack: FakeSlack, sender: SlackSender) -> None:
    core.notify.publish("job:1", Message().header("Download").progress(0.1), channel=CHANNEL)
    assert core.notify.deliver_pending(sender).sent == 1
    ref = _row(core, "job:1").ref
    assert ref is not None
    channel, ts = ref.split("|")
    assert channel == CHANNEL
    core.notify.publish("job:1", Message().header("Download").progress(0.9), channel=CHANNEL)
    assert core.notify.deliver_pending(sender).sent == 1
    (message,) = fake_slack.messages(CHANNEL)
    assert message.ts == ts
    assert "90%" in message.blocks[1]["text"]["text"]
    assert [c.method for c in fake_slack.calls() if c.ok] == ["chat.postMessage", "chat.update"]


def test_short_rate_limit_is_waited_out(
    core: Core, fake_slack: FakeSlack, sender: SlackSender
) -> None:
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=1)
    core.notify.publish("alert:1", Message().text("disk almost full"), channel=CHANNEL)
    started = time.monotonic()
    assert core.notify.deliver_pending(sender).sent == 1
    assert time.monotonic() - started >= 1.0  # Retry-After honoured before the retry
    assert [c.status for c in fake_slack.calls("chat.postMessage")] == [429, 200]
    assert len(fake_slack.messages(CHANNEL)) == 1


def test_long_rate_limit_goes_back_to_the_outbox(
    core: Core,
    clock,
    fake_slack: FakeSlack,
    sender: SlackSender,  # type: ignore[no-untyped-def]
) -> None:
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=30)
    core.notify.publish("alert:2", Message().text("later"), channel=CHANNEL)
    started = time.monotonic()
    report = core.notify.deliver_pending(sender)
    assert time.monotonic() - started < 5  # not slept through in the delivery thread
    assert report.failed == 1
    row = _row(core, "alert:2")
    assert row.pending and "rate limit" in (row.last_error or "")
    assert (row.next_attempt_at - clock.now()).total_seconds() == pytest.approx(30, abs=1)
    clock.advance(31)
    assert core.notify.deliver_pending(sender).sent == 1


@pytest.mark.parametrize(
    "error", ["channel_not_found", "not_in_channel", "invalid_auth", "invalid_blocks"]
)
def test_permanent_errors_stop_retrying(
    core: Core, fake_slack: FakeSlack, sender: SlackSender, error: str
) -> None:
    fake_slack.fail_next("chat.postMessage", status=200, error=error)
    core.notify.publish("notice:1", Message().text("hello"), channel=CHANNEL)
    assert core.notify.deliver_pending(sender).failed == 1
    row = _row(core, "notice:1")
    assert not row.pending
    assert error in (row.last_error or "")


def test_server_errors_are_retried_then_deferred(
    fake_slack: FakeSlack, sender: SlackSender
) -> None:
    fake_slack.fail_next("chat.postMessage", status=503, count=3)
    with pytest.raises(DeliveryError) as failure:
        sender.send(CHANNEL, Message().text("x"), None)
    assert failure.value.retryable
    assert [c.status for c in fake_slack.calls("chat.postMessage")] == [503, 503, 503]
    assert sender.send(CHANNEL, Message().text("x"), None).startswith(f"{CHANNEL}|")


def test_no_channel_and_bad_ref_are_permanent(sender: SlackSender) -> None:
    with pytest.raises(DeliveryError) as no_channel:
        sender.send(None, Message().text("x"), None)
    assert not no_channel.value.retryable
    with pytest.raises(DeliveryError) as bad_ref:
        sender.send(CHANNEL, Message().text("x"), "term-1")
    assert not bad_ref.value.retryable


def test_huge_message_is_accepted(fake_slack: FakeSlack, sender: SlackSender) -> None:
    message = (
        Message()
        .header("h" * 400)
        .table(["model", "size"], [[f"org/model-{i}", "x" * 30] for i in range(4000)])
    )
    ref = sender.send(CHANNEL, message, None)
    (posted,) = fake_slack.messages(CHANNEL)
    assert ref.endswith(posted.ts)
    assert len(posted.blocks) == 50
    assert len(posted.text) <= 3000


def test_usergroup_members(fake_slack: FakeSlack) -> None:
    client = WebClient(token=fake_slack.token, base_url=fake_slack.api_url)
    fake_slack.set_usergroup("S0ADMINS", ["U1", "U2"])
    assert members_of(client, "S0ADMINS") == ["U1", "U2"]
    (call,) = fake_slack.calls("usergroups.users.list")
    assert call.params["usergroup"] == "S0ADMINS"
    with pytest.raises(NotFoundError):
        members_of(client, "S0NOPE")
