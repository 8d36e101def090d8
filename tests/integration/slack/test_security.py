"""Bolt's request verification in front of every listener, and exactly-once deliveries."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
import sqlalchemy as sa

from modelarium.core.db.models.notify import InboundDelivery
from modelarium.core.notify.inbound import InboundDeliveries
from tests.fakes.slack import SlackRequestSigner
from tests.integration.slack.conftest import ADMIN_A, CHANNEL, Harness


def _nothing_ran(slack: Harness) -> None:
    slack.drain()
    assert slack.fake.responses() == []
    assert [c.method for c in slack.fake.calls()] == []  # not even auth.test (done at start)
    assert slack.core.audit.query(limit=10) == []
    with slack.core.db.transaction() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(InboundDelivery)) == 0


@pytest.mark.parametrize("attack", ["forged", "tampered", "stale", "future", "empty", "unsigned"])
def test_bad_signatures_get_401_and_run_nothing(slack: Harness, attack: str) -> None:
    slack.fake.reset()
    cmd = slack.fake.slash_command(
        "/model", "role grant <@U0BOB|bob> operator", user_id=ADMIN_A, channel_id=CHANNEL
    )
    now = int(time.time())
    if attack == "forged":
        reply = SlackRequestSigner("not-the-secret").post(slack.url, cmd)
    elif attack == "tampered":  # signed, then the text changed on the way
        headers = slack.signer.headers(cmd.body)
        body = cmd.body.replace(b"operator", b"admin")
        reply = slack.signer.post(slack.url, body, headers=headers)
    elif attack == "stale":
        reply = slack.signer.post(slack.url, cmd, timestamp=now - 301)
    elif attack == "future":
        reply = slack.signer.post(slack.url, cmd, timestamp=now + 301)
    elif attack == "empty":
        reply = slack.signer.post(
            slack.url, cmd, headers={"X-Slack-Signature": "", "X-Slack-Request-Timestamp": ""}
        )
    else:
        request = urllib.request.Request(slack.url, data=cmd.body, method="POST")
        try:
            urllib.request.urlopen(request, timeout=10)
            status = 200
        except urllib.error.HTTPError as err:
            status = err.code
        assert status == 401
        _nothing_ran(slack)
        return
    assert reply.status == 401
    _nothing_ran(slack)


def test_forged_button_click_runs_nothing(slack: Harness) -> None:
    slack.command("role grant <@U0BOB|bob> admin", user=ADMIN_A)
    slack.deliver()
    card = slack.card()
    before = len(slack.fake.responses())
    approve = slack.fake.block_actions(slack.action_id(card, "Approve"), user_id="U0ADMINB")
    assert SlackRequestSigner("guess").post(slack.url, approve).status == 401
    slack.drain()
    assert len(slack.fake.responses()) == before
    assert slack.core.approvals.get(1).status == "pending"


def test_signed_request_just_inside_the_window_is_accepted(slack: Harness) -> None:
    cmd = slack.fake.slash_command("/model", "whoami", user_id=ADMIN_A)
    assert slack.post(cmd, timestamp=int(time.time()) - 290).status == 200
    assert len(slack.fake.responses(cmd.response_url)) == 1


def test_event_redelivery_runs_once(slack: Harness) -> None:
    event = slack.fake.event(
        {
            "type": "app_mention",
            "user": ADMIN_A,
            "channel": CHANNEL,
            "ts": "1700000000.000100",
            "text": "<@U0BOT> role grant <@U0BOB|bob> operator",
        }
    )
    for retry in (None, "1", "2"):
        headers = {"X-Slack-Retry-Num": retry, "X-Slack-Retry-Reason": "http_timeout"}
        assert slack.post(event, headers=headers if retry else None).status == 200
    assert len(slack.core.audit.query(action="command.role.grant", limit=10)) == 1
    assert len(slack.fake.ephemerals(CHANNEL, ADMIN_A)) == 1


def test_claim_delivery_is_first_wins_and_prunable(core, clock) -> None:  # type: ignore[no-untyped-def]
    inbound = InboundDeliveries(core.db, core.clock)
    assert inbound.claim_delivery("event:Ev1") is True
    assert inbound.claim_delivery("event:Ev1") is False
    assert inbound.seen("event:Ev1")
    assert inbound.claim_delivery("x" * 400) is True  # long keys are clipped, not refused
    assert inbound.claim_delivery("x" * 300) is False
    clock.advance(timedelta(days=3).total_seconds())
    assert inbound.claim_delivery("event:Ev2") is True
    assert inbound.prune(timedelta(days=2)) == 2
    assert not inbound.seen("event:Ev1")
    assert inbound.seen("event:Ev2")
    assert inbound.claim_delivery("event:Ev1") is True  # forgotten after the retention
