"""How answers look in Slack (issue 14, Slack presentation): names in tables, dates, buttons,
slow answers. Through the real bolt app and slack_sdk, against FakeSlack."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta

from slack_sdk import WebClient

from modelarium.bot.dispatch import CommandRunner
from modelarium.bot.shell.oneshot import run_once
from modelarium.bot.slack.blocks import render_message
from modelarium.bot.slack.users import UserDirectory
from modelarium.core.alerts import AlertRule
from modelarium.core.app import Core
from modelarium.core.jobs.service import JobKind
from modelarium.core.messages import Message, shorten
from tests.fakes.slack import FakeSlack
from tests.integration.slack.conftest import ADMIN_A, BOB, CHANNEL, Harness


def _code(response) -> str:
    return "\n".join(
        b["text"]["text"]
        for b in response.blocks or []
        if b.get("type") == "section" and b["text"]["text"].startswith("```")
    )


def test_tables_show_people_by_name_not_raw_mentions(slack: Harness) -> None:
    """Slack resolves no mentions inside code blocks: ``<@U0BOB>`` and ``granted by U0ADMINA``
    were shown raw. The Slack renderer shows display names (users.info)."""
    slack.command(f"role grant <@{BOB}> operator", user=ADMIN_A)
    slack.command("role list", user=ADMIN_A)
    table = _code(slack.last_response())
    assert "@bob" in table and "granted by @alice" in table, table
    assert "<@" not in table and BOB not in table and ADMIN_A not in table, table


def test_names_are_cached_with_a_time_to_live(fake_slack: FakeSlack) -> None:
    fake_slack.add_user("U0CAROL", "carol", display_name="Carol C")
    now = [0.0]
    client = WebClient(token=fake_slack.token, base_url=fake_slack.api_url)
    names = UserDirectory(client, ttl=60, clock=lambda: now[0])
    message = Message().table(["who", "what"], [["<@U0CAROL>", "x"], ["<@daemon>", "y"]] * 3)

    rendered = render_message(message, names=names.limited())
    table = rendered["blocks"][0]["text"]["text"]
    assert "@Carol C" in table and "\ndaemon " in table and "<@" not in table, table
    assert len(fake_slack.calls("users.info")) == 1, "one look-up per person, not per row"

    render_message(message, names=names.limited())
    assert len(fake_slack.calls("users.info")) == 1, "cached"
    now[0] += 61
    render_message(message, names=names.limited())
    assert len(fake_slack.calls("users.info")) == 2, "looked up again after the TTL"


def test_one_message_makes_a_bounded_number_of_look_ups(fake_slack: FakeSlack) -> None:
    client = WebClient(token=fake_slack.token, base_url=fake_slack.api_url)
    names = UserDirectory(client)
    rows = [[f"<@U{i:07d}>", "x"] for i in range(300)]
    render_message(Message().table(["who", "what"], rows), names=names.limited(10))
    assert len(fake_slack.calls("users.info")) == 10


# -- item 15: cells cut at words, times each reader can read ------------------------------------
ISO_SECONDS = re.compile(r"\b20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ\b")


def test_shorten_cuts_at_a_word_boundary() -> None:
    text = "install the weights of meta-llama/Llama-3.1-8B-Instruct at main"
    cut = shorten(text, 40)
    assert cut == "install the weights of…", cut
    # a long model id: cut after one of its separators, never inside a part
    assert shorten("install meta-llama/Llama-3.1-8B-Instruct at main", 40) == (
        "install meta-llama/Llama-3.1-8B…"
    )
    assert shorten("x" * 50, 10) == "x" * 9 + "…"  # one long word: cut inside it
    assert shorten("short", 10) == "short"


def test_jobs_what_column_is_not_cut_mid_word(slack: Harness) -> None:
    long = "install meta-llama/Llama-3.1-8B-Instruct at main on shared storage"
    slack.core.jobs.register(JobKind("demo", ("run",), lambda ctx, stage: None, lambda p: long))
    slack.core.jobs.enqueue("demo", {}, created_by=ADMIN_A)
    slack.command("jobs", user=ADMIN_A)
    table = _code(slack.last_response())
    row = next(line for line in table.splitlines() if line.startswith("#1"))
    assert "install meta-llama/Llama-3.1-8B…  " in row, row
    assert "@alice" in row


def test_times_are_slack_dates_in_text_and_iso_with_year_in_tables(slack: Harness) -> None:
    slack.core.notify.default_channel = CHANNEL
    slack.core.alerts.register(AlertRule("disk_usage", "{location} full", ">", 0.9))
    slack.command("silence disk_usage 2h", user=ADMIN_A)
    text = slack.last_response().blocks[0]["text"]["text"]
    end = slack.core.clock.now() + timedelta(hours=2)
    stamp = int(end.timestamp())
    assert f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{end:%Y-%m-%dT%H:%M}Z>" in text, text

    slack.command("audit", user=ADMIN_A)  # a table: ISO 8601 with the year, the zone, seconds
    table = _code(slack.last_response())
    assert ISO_SECONDS.search(table), table
    assert "<!date" not in table and "<time:" not in table


def test_the_shell_and_json_show_iso_8601_with_the_zone(core: Core) -> None:
    core.alerts.register(AlertRule("disk_usage", "{location} full", ">", 0.9))
    runner = CommandRunner(core)
    out = io.StringIO()
    assert run_once(runner, "silence disk_usage 2h", user=ADMIN_A, as_json=False, out=out) == 0
    end = core.clock.now() + timedelta(hours=2)
    assert f"(until {end:%Y-%m-%dT%H:%M}Z)" in out.getvalue(), out.getvalue()
    out = io.StringIO()
    run_once(runner, "audit", user=ADMIN_A, as_json=False, out=out)
    assert ISO_SECONDS.search(out.getvalue()), out.getvalue()
    out = io.StringIO()
    run_once(runner, "silences", user=ADMIN_A, as_json=True, out=out)
    doc = json.loads(out.getvalue())
    assert "<time:" not in doc["text"] and f"{end:%Y-%m-%dT%H:%M}Z" in doc["text"]
    [silence] = doc["data"]["silences"]
    assert datetime.fromisoformat(silence["ends_at"]).utcoffset() is not None
