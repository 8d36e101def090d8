"""Slash commands and approval buttons end to end: signed HTTP in, Slack Web API calls out."""

from __future__ import annotations

import json
import threading
import time

import sqlalchemy as sa

from modelarium.core.db.models.approvals import ApprovalVote
from modelarium.core.db.models.rbac import RoleGrant
from modelarium.core.jobs import WorkerPool
from modelarium.core.rbac import Role
from tests.integration.slack.conftest import (
    ADMIN_A,
    ADMIN_B,
    ADMIN_C,
    BOB,
    CHANNEL,
    VIEWER,
    Harness,
    shown,
)

MAX_ACK_SECONDS = 0.5  # generous for CI; the benchmark measures the real latency


def test_help_acks_at_once_and_answers_on_the_response_url(slack: Harness) -> None:
    cmd = slack.fake.slash_command("/model", "help", user_id=VIEWER, channel_id=CHANNEL)
    started = time.perf_counter()
    reply = slack.post(cmd, wait=False)
    elapsed = time.perf_counter() - started
    assert reply.status == 200
    assert reply.body == b""  # an empty ack: the answer comes on the response_url
    assert elapsed < MAX_ACK_SECONDS
    slack.drain()
    (response,) = slack.fake.responses(cmd.response_url)
    assert response.status == 200 and response.error is None
    assert response.response_type == "ephemeral"
    assert response.blocks and response.blocks[0]["type"] == "header"
    text = " ".join(b.get("text", {}).get("text", "") for b in response.blocks)
    assert "/model help" in text
    assert "role grant" not in text  # viewers only see what they may run


def test_usage_error_is_one_line_plus_usage(slack: Harness) -> None:
    slack.command("role grant", user=ADMIN_A)
    response = slack.last_response()
    assert "missing <user>" in shown(response)
    assert "&lt;user&gt;" in response.blocks[0]["text"]["text"]  # escaped for mrkdwn
    assert "Usage:" in str(response.blocks)
    assert "Traceback" not in str(response.payload)


def test_in_channel_visibility_and_denial_for_viewers(slack: Harness) -> None:
    slack.command("role grant <@U0BOB|bob> operator", user=VIEWER)
    denied = slack.last_response()
    assert denied.response_type == "ephemeral"
    assert "needs the admin role" in shown(denied)
    assert slack.core.rbac.role_of(BOB) == Role.VIEWER


def test_grant_admin_needs_a_second_admin(slack: Harness) -> None:
    slack.command("role grant <@U0BOB|bob> admin", user=ADMIN_A)
    assert "needs 1 approval(s) from an admin" in shown(slack.last_response())

    # the outbox posts the change's card in the channel the command came from, naming who
    # can approve it (every admin but the requester)
    slack.deliver()
    (post,) = [c for c in slack.fake.calls("chat.postMessage") if c.ok]
    assert post.params["channel"] == CHANNEL
    card = slack.card()
    assert slack.action_id(card, "Approve").startswith("mdl.cmd.")
    assert slack.action_id(card, "Reject").startswith("mdl.form.")
    text = json.dumps(card.blocks)
    assert f"<@{ADMIN_B}>" in text and f"<@{ADMIN_C}>" in text and "Waiting for" in text

    # the requester cannot approve their own request: refused ephemerally, the card stays
    slack.click(slack.action_id(card, "Approve"), ADMIN_A)
    refusal = slack.last_response()
    assert refusal.response_type == "ephemeral" and not refusal.replace_original
    assert "someone else must approve" in shown(refusal)
    assert slack.fake.message(CHANNEL, card.ts).history == []
    assert slack.core.rbac.role_of(BOB) == Role.VIEWER

    # a viewer is refused by role
    slack.click(slack.action_id(card, "Approve"), VIEWER)
    assert "needs the operator role" in shown(slack.last_response())

    # another admin approves: the card is replaced in place; the grant is the daemon's job
    slack.click(slack.action_id(card, "Approve"), ADMIN_B)
    approved = slack.last_response()
    assert approved.replace_original and "queued" in shown(approved)
    assert slack.core.rbac.role_of(BOB) == Role.VIEWER
    assert WorkerPool(slack.core.jobs, size=0).run_one().status == "succeeded"
    assert slack.core.rbac.role_of(BOB) == Role.ADMIN
    slack.deliver()
    slack.deliver()  # the follow-up waits for its parent's ts
    updates = [c for c in slack.fake.calls("chat.update") if c.ok]
    assert updates and all(c.params["ts"] == card.ts for c in updates)
    edited = slack.fake.message(CHANNEL, card.ts)
    assert "succeeded" in edited.blocks[0]["text"]["text"]
    assert "Approve" not in json.dumps(edited.blocks)  # no approval buttons once decided
    top_level = [m for m in slack.fake.messages(CHANNEL) if not m.thread_ts]
    assert len(top_level) == 1  # edited, never re-posted
    # the outcome goes back to whoever asked, in the thread of the card
    (reply,) = [m for m in slack.fake.messages(CHANNEL) if m.thread_ts == card.ts]
    assert f"<@{ADMIN_A}>" in reply.text and "succeeded" in reply.text


def test_concurrent_and_redelivered_clicks_decide_once(slack: Harness) -> None:
    slack.command("role grant <@U0BOB|bob> admin", user=ADMIN_A)
    slack.deliver()
    card = slack.card()
    approve = slack.action_id(card, "Approve")
    clicks = [
        slack.fake.block_actions(approve, user_id=ADMIN_B),
        slack.fake.block_actions(approve, user_id=ADMIN_C),
    ]
    replies: list[int] = []
    barrier = threading.Barrier(len(clicks))

    def click(request: object) -> None:
        barrier.wait()
        replies.append(slack.post(request, wait=False).status)  # type: ignore[arg-type]

    threads = [threading.Thread(target=click, args=(c,)) for c in clicks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Slack redelivers B's click (it thought the first delivery timed out)
    slack.post(clicks[0], headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "timeout"})
    slack.drain()
    assert replies == [200, 200]

    with slack.core.db.transaction() as session:
        votes = session.scalars(sa.select(ApprovalVote)).all()
    assert len(votes) == 1
    approved = slack.core.audit.query(action="approval.approved", limit=10)
    assert len(approved) == 1
    assert len(slack.core.jobs.list(kind="role.grant")) == 1
    answers = [slack.fake.responses(c.response_url) for c in clicks]
    assert [len(a) for a in answers] == [1, 1]  # the redelivery ran nothing
    winner, loser = sorted((a[0] for a in answers), key=lambda r: not r.replace_original)
    assert winner.replace_original and "queued" in shown(winner)
    assert not loser.replace_original and "is already" in shown(loser)


def test_changes_change_and_revert_from_slack(slack: Harness) -> None:
    slack.command("role grant <@U0BOB|bob> operator", user=ADMIN_A)
    granted = slack.last_response()
    assert "is now operator" in shown(granted) and "revert 1" in shown(granted)
    assert slack.core.rbac.role_of(BOB) == Role.OPERATOR
    slack.command("changes", user=VIEWER)
    listing = shown(slack.last_response())
    assert "role.grant" in listing and "role:U0BOB" in listing
    slack.command("change 1", user=ADMIN_A)
    card = slack.last_response()
    assert "succeeded" in shown(card)
    buttons = [
        e["text"]["text"]
        for b in card.payload["blocks"]
        for e in b.get("elements") or []
        if e.get("type") == "button"
    ]
    assert buttons == ["Revert"]
    slack.command("revert 1", user=ADMIN_A)  # the Revert button's text twin
    assert "Revoked operator from <@U0BOB>" in shown(slack.last_response())
    assert slack.core.rbac.role_of(BOB) == Role.VIEWER
    assert slack.core.changes.get(1).reverted_by_id == 2


def test_retried_command_runs_once(slack: Harness) -> None:
    cmd = slack.fake.slash_command("/model", "role grant <@U0BOB|bob> operator", user_id=ADMIN_A)
    assert slack.post(cmd).status == 200
    retry = slack.post(cmd, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "timeout"})
    assert retry.status == 200
    again = slack.post(cmd, headers={"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "timeout"})
    assert again.status == 200
    assert len(slack.fake.responses(cmd.response_url)) == 1
    grants = slack.core.audit.query(action="command.role.grant", limit=10)
    assert len(grants) == 1


def test_long_listing_stays_within_block_kit_limits(slack: Harness) -> None:
    with slack.core.db.transaction() as session:
        session.add_all(
            RoleGrant(
                user_id=f"U{i:08d}",
                role="operator",
                granted_by=ADMIN_A,
                granted_at=slack.core.clock.now(),
            )
            for i in range(5000)
        )
    slack.command("role list", user=VIEWER)
    response = slack.last_response()
    assert response.status == 200 and response.error is None  # the fake validates Block Kit
    assert len(response.blocks) == 50
    shown = "".join(b.get("text", {}).get("text", "") for b in response.blocks)
    # Slack shows no mentions inside code blocks: people by name (unknown ones by id)
    assert "@U00000000  operator  granted by @alice" in shown
    assert "<@" not in shown
    notes = [e["text"] for b in response.blocks if b["type"] == "context" for e in b["elements"]]
    assert any("more rows not shown" in n for n in notes), notes
    assert notes[-1] == "Everyone else: viewer."  # the end of the message is kept
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in response.blocks)


def test_audit_export_uploads_a_file_to_the_requester(slack: Harness) -> None:
    slack.command("role grant <@U0BOB|bob> operator", user=ADMIN_A)
    slack.command("audit export --format csv", user=ADMIN_A)
    assert "Audit log export" in shown(slack.last_response())
    (upload,) = slack.fake.files()
    assert upload.completed
    assert upload.filename.startswith("modelarium-audit-") and upload.filename.endswith(".csv")
    assert upload.content is not None and b"command.role.grant" in upload.content
    # an ephemeral answer's file goes to the requester's DM, not to everyone in the channel
    (dm,) = upload.channels
    assert dm.startswith("D")
    opened = slack.fake.calls("conversations.open")
    assert opened[-1].params["users"] == ADMIN_A
    assert [c.method for c in slack.fake.calls() if c.method.startswith("files.")] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]


def test_unknown_action_is_acknowledged(slack: Harness) -> None:
    slack.fake.add_channel(CHANNEL)
    slack.bot.sender.client.chat_postMessage(
        channel=CHANNEL,
        text="old",
        blocks=[
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "legacy_button",
                        "text": {"type": "plain_text", "text": "Old"},
                        "value": "x",
                    }
                ],
            }
        ],
    )
    assert slack.click("legacy_button", ADMIN_A).status == 200
    assert slack.fake.responses() == []
