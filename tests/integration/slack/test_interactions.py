"""Modals (forms), secret fields, details buttons, mentions and the App Home."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from modelarium.bot.commands.context import CommandContext
from modelarium.bot.commands.registry import Registry
from modelarium.bot.commands.spec import Flag
from modelarium.bot.dispatch import CommandRunner
from modelarium.bot.reply import Reply
from modelarium.bot.slack.app import Target
from modelarium.bot.slack.blocks import BUTTON_VALUE
from modelarium.core.app import Core
from modelarium.core.errors import UsageError
from modelarium.core.messages import Form, FormField, Message
from modelarium.core.rbac import Role
from tests.integration.slack.conftest import (
    ADMIN_A,
    ADMIN_B,
    CHANNEL,
    VIEWER,
    Harness,
    shown,
)

SECRET_VALUE = "s3cr3t-Value-that-must-not-leak"


class Vault:
    """A test-only command set: a form with a secret field, and a reply with details."""

    def __init__(self) -> None:
        self.stored: dict[str, str] = {}
        self.registry = Registry()
        reg = self.registry

        @reg.command(
            "vault put",
            help="store a secret",
            role=Role.OPERATOR,
            flags=[Flag("name"), Flag("token"), Flag("note")],
        )
        def put(
            ctx: CommandContext, name: str | None, token: str | None, note: str | None
        ) -> Reply:
            if not name:
                raise UsageError("--name is required")
            if token == "-":
                assert ctx.read_secret is not None
                token = ctx.read_secret("token: ")
            self.stored[name] = token or ""
            return Reply.say(f"Stored {name} ({len(token or '')} characters) by <@{ctx.user}>.")

        @reg.command("vault form", help="ask for a secret", audit=False)
        def form(ctx: CommandContext) -> Reply:
            return Reply(
                Message().text("Fill in the form."),
                form=Form(
                    "Store a secret",
                    "vault put",
                    (
                        FormField("name", "Name", placeholder="prod"),
                        FormField("token", "Token", secret=True),
                        FormField("note", "Note", multiline=True, optional=True),
                    ),
                    submit="Store",
                ),
            )

        @reg.command("explain", help="a reply with details", audit=False)
        def explain(ctx: CommandContext) -> Reply:
            reply = Reply(
                Message()
                .text("It fits on 2 GPUs.")
                .details("the arithmetic", [f"step {i}: {i * 7} GiB" for i in range(400)])
            )
            reply.visibility = "in_channel"
            return reply


@pytest.fixture
def vault() -> Vault:
    return Vault()


@pytest.fixture
def vault_slack(make_harness: Callable[..., Harness], core: Core, vault: Vault) -> Harness:
    return make_harness(CommandRunner(core, registry=vault.registry))


def _modal(slack: Harness) -> dict:
    (opened,) = [c for c in slack.fake.calls("views.open") if c.ok]
    view = opened.params["view"]
    return json.loads(view) if isinstance(view, str) else view


def test_reject_button_opens_a_modal_and_runs_as_the_submitter(slack: Harness) -> None:
    slack.command("role grant <@U0BOB|bob> admin", user=ADMIN_A)
    slack.deliver()
    card = slack.card()
    slack.click(slack.action_id(card, "Reject"), ADMIN_B)
    modal = _modal(slack)
    assert modal["callback_id"] == "mdl.form"
    assert modal["title"]["text"] == "Reject change"
    metadata = json.loads(modal["private_metadata"])
    assert metadata == {"command": "reject 1", "channel": CHANNEL, "secret": []}
    assert [b["block_id"] for b in modal["blocks"]] == ["f.note"]

    reply = slack.post(
        slack.fake.view_submission(values={"f.note": {"value": "too big for now"}}, user_id=ADMIN_B)
    )
    assert reply.status == 200 and reply.body == b""  # closes the modal
    view = slack.core.approvals.get(1)
    assert view.status == "rejected"
    assert view.result == "rejected by U0ADMINB: too big for now"
    (answer,) = slack.fake.ephemerals(CHANNEL, ADMIN_B)
    assert "rejected" in shown(answer)
    slack.deliver()
    assert "rejected" in slack.fake.message(CHANNEL, card.ts).blocks[0]["text"]["text"]


def test_modal_submission_checks_the_submitters_role(slack: Harness) -> None:
    slack.command("role grant <@U0BOB|bob> admin", user=ADMIN_A)
    slack.deliver()
    slack.click(slack.action_id(slack.card(), "Reject"), VIEWER)
    reply = slack.post(
        slack.fake.view_submission(values={"f.note": {"value": "no"}}, user_id=VIEWER)
    )
    assert reply.status == 200 and reply.body == b""  # a denial is not a form error
    assert slack.core.approvals.get(1).status == "pending"
    (answer,) = slack.fake.ephemerals(CHANNEL, VIEWER)
    assert "needs the operator role" in shown(answer)


def test_slash_command_form_with_a_secret_field(
    vault_slack: Harness, vault: Vault, capsys: pytest.CaptureFixture[str]
) -> None:
    slack = vault_slack
    slack.command("vault form", user=ADMIN_A)
    modal = _modal(slack)
    assert json.loads(modal["private_metadata"])["secret"] == ["token"]
    token_block = next(b for b in modal["blocks"] if b["block_id"] == "f.token")
    assert "initial_value" not in token_block["element"]
    assert "Fill in the form." in shown(slack.last_response())

    # a usage error is shown on the form's first field and keeps the modal open
    bad = slack.post(
        slack.fake.view_submission(
            values={"f.name": {"value": ""}, "f.token": {"value": SECRET_VALUE}}, user_id=ADMIN_A
        )
    )
    assert bad.json() == {"response_action": "errors", "errors": {"f.name": "--name is required"}}
    assert vault.stored == {}

    good = slack.post(
        slack.fake.view_submission(
            values={
                "f.name": {"value": "prod key"},
                "f.token": {"value": SECRET_VALUE},
                "f.note": {"value": "it's 'quoted'"},
            },
            user_id=ADMIN_A,
        )
    )
    assert good.status == 200 and good.body == b""
    assert vault.stored == {"prod key": SECRET_VALUE}
    (answer,) = [e for e in slack.fake.ephemerals(CHANNEL, ADMIN_A) if e.source != "response_url"]
    assert "Stored prod key (31 characters)" in shown(answer)

    # the secret went to the handler only: not in command text, audit, logs or Slack calls
    entries = slack.core.audit.query(action="command.vault.put", limit=5)
    (entry,) = [e for e in entries if e.result == "ok"]
    assert entry.params["text"].startswith("vault put --name 'prod key' --token - --note ")
    assert SECRET_VALUE.encode() not in slack.core.audit.export("json")
    assert all(SECRET_VALUE.encode() not in r.body for r in slack.fake.requests)
    captured = capsys.readouterr()
    assert SECRET_VALUE not in captured.out + captured.err


def test_expired_trigger_falls_back_to_the_text_command(vault_slack: Harness) -> None:
    slack = vault_slack
    runner = slack.bot.front.runner
    reply = runner.execute("vault form", user=ADMIN_A, channel=CHANNEL, front="slack")
    trigger = slack.fake.new_trigger_id()
    slack.fake.advance_time(4)
    slack.bot.front.deliver(
        reply,
        Target(ADMIN_A, CHANNEL, response_url=slack.fake.new_response_url(), trigger_id=trigger),
    )
    text = shown(slack.last_response())
    assert "Fill in the form." in text
    assert "/model vault put --name <name> --token - --note <note>" in text


def test_details_are_collapsed_behind_a_button(vault_slack: Harness) -> None:
    slack = vault_slack
    slack.command("explain", user=VIEWER)
    (message,) = slack.fake.messages(CHANNEL)  # in_channel: posted through the response_url
    context = next(b for b in message.blocks if b["type"] == "context")
    assert context["elements"][0]["text"] == "▸ the arithmetic"
    button = next(b for b in message.blocks if b["type"] == "actions")["elements"][0]
    assert button["action_id"] == "mdl.details"
    assert button["text"]["text"] == "Show the arithmetic"
    assert len(button["value"]) <= BUTTON_VALUE
    assert "step 0: 0 GiB" not in str(message.blocks[0])

    slack.click("mdl.details", ADMIN_B)
    shown_details = slack.last_response()
    assert shown_details.response_type == "ephemeral" and not shown_details.replace_original
    text = shown(shown_details)
    assert "the arithmetic" in text and "step 0: 0 GiB" in text
    assert "more lines)" in text  # 400 lines do not fit in a button value


def test_mention_runs_the_command_and_answers_in_the_thread(vault_slack: Harness) -> None:
    slack = vault_slack
    mention = {
        "type": "app_mention",
        "user": ADMIN_A,
        "channel": CHANNEL,
        "ts": "1700000000.000200",
        "text": "<@U0BOT> explain",
    }
    assert slack.post(slack.fake.event(mention)).status == 200
    (answer,) = slack.fake.messages(CHANNEL)
    assert answer.thread_ts == "1700000000.000200"
    assert "It fits on 2 GPUs." in shown(answer)

    # an ephemeral answer stays private, in the same thread
    private = {**mention, "ts": "1700000000.000300", "text": "<@U0BOT> vault put --name x"}
    slack.post(slack.fake.event(private))
    (private_answer,) = slack.fake.ephemerals(CHANNEL, ADMIN_A)
    assert private_answer.thread_ts == "1700000000.000300"
    assert "Stored x" in shown(private_answer)


def test_home_tab_shows_the_users_help(slack: Harness) -> None:
    opened = {"type": "app_home_opened", "user": VIEWER, "channel": "D0VIEWER", "tab": "home"}
    assert slack.post(slack.fake.event(opened)).status == 200
    home = slack.fake.home_view(VIEWER)
    assert home is not None and home["type"] == "home"
    text = shown(home)
    assert "/model help" in text and "role grant" not in text

    messages_tab = {**opened, "user": ADMIN_A, "tab": "messages"}
    slack.post(slack.fake.event(messages_tab))
    assert slack.fake.home_view(ADMIN_A) is None

    admin_home = {**opened, "user": ADMIN_A}
    slack.post(slack.fake.event(admin_home))
    assert "role grant" in shown(slack.fake.home_view(ADMIN_A))
