"""Message -> Block Kit: never over a Slack limit, whatever the content (checked by the fake)."""

from __future__ import annotations

import json
import random

import pytest
from slack_sdk import WebClient

from modelarium.bot.slack.blocks import (
    BUTTON_VALUE,
    details_value,
    escape,
    form_value,
    form_view,
    home_view,
    parse_details_value,
    parse_form_value,
    render_blocks,
    render_message,
    split_mrkdwn,
)
from modelarium.core.messages import Button, Form, FormField, Message
from tests.fakes.slack import FakeSlack, validate_blocks


def _ok(blocks: list[dict], limit: int = 50) -> list[dict]:
    errors = validate_blocks(blocks, limit)
    assert errors == [], errors[:5]
    return blocks


def _texts(blocks: list[dict]) -> list[str]:
    out = []
    for block in blocks:
        if isinstance(block.get("text"), dict):
            out.append(block["text"]["text"])
        out += [e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return out


def _notes(blocks: list[dict]) -> list[str]:
    return [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]


def test_long_text_is_split_into_sections() -> None:
    text = "\n".join(f"line {i} " + "x" * 80 for i in range(2000))
    blocks = _ok(render_blocks(Message().text(text)))
    assert len(blocks) == 50
    assert all(len(t) <= 3000 for t in _texts(blocks))
    assert "line 0 " in blocks[0]["text"]["text"]
    assert any("more lines not shown" in n for n in _notes(blocks))


def test_a_single_enormous_line_is_wrapped() -> None:
    blocks = _ok(render_blocks(Message().text("y" * 20_000)))
    assert len(blocks) == 7
    assert "".join(_texts(blocks)) == "y" * 20_000


def test_code_fences_are_closed_and_reopened_across_sections() -> None:
    code = "\n".join(f"    step {i}: {'z' * 60}" for i in range(200))
    text = f"Intro\n```\n{code}\n```\nOutro"
    chunks = split_mrkdwn(text)
    assert len(chunks) > 1
    for chunk in chunks:
        assert len(chunk) <= 3000
        assert chunk.count("```") % 2 == 0, chunk[:80]
    assert chunks[1].startswith("```\n")


def test_entities_and_mentions_are_not_split() -> None:
    text = "<@U123ABC|bob> & " * 400
    for chunk in split_mrkdwn(escape(text), 1000):
        assert not chunk.rstrip().endswith("&amp")
        assert chunk.count("<") == chunk.count(">")


def test_escaping_keeps_slack_sequences() -> None:
    raw = "a < b && c > d <@U1|bob> <#C1|general> <https://x.io|docs> vector<int>"
    assert escape(raw) == (
        "a &lt; b &amp;&amp; c &gt; d <@U1|bob> <#C1|general> <https://x.io|docs> vector&lt;int&gt;"
    )


BROADCASTS = [
    "<!channel>",
    "<!here>",
    "<!here|here>",
    "<!everyone>",
    "<!group>",
    "<!subteam^S0123ABC>",
    "<!subteam^S0123ABC|@oncall>",
    "<!date^1392734382^{date}|x>",
]


def test_broadcast_mentions_are_escaped_wherever_text_is_rendered() -> None:
    """No text of ours is a broadcast, so every ``<!…>`` comes from what a user typed."""
    for raw in BROADCASTS:
        typed = f"please look {raw} now"
        message = (
            Message(fallback=typed)
            .header(typed)
            .text(typed)
            .context(f"Rejected by <@U1>: {typed}")
            .fields(("Note", typed))
            .table(["model", "note"], [[typed, typed]], title=typed)
            .code(typed)
            .details(typed, [typed])
            .progress(0.5, typed)
            .buttons(Button("Go", "whoami", confirm=typed))
        )
        payload = render_message(message)
        shown = "\n".join(_texts(payload))  # what Slack reads as text (not button values)
        assert "<!" not in shown, (raw, shown)
        assert "<@U1>" in shown  # our own mentions still work
        assert "&lt;!" in payload["text"]


def _texts(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["text"]] if isinstance(node.get("text"), str) else []
        return found + [t for k, v in node.items() if k != "value" for t in _texts(v)]
    if isinstance(node, list):
        return [t for item in node for t in _texts(item)]
    return []


def test_plain_broadcast_words_cannot_be_parsed_as_mentions() -> None:
    out = escape("@here @channel @everyone ping; mail a@here.io")
    for word in ("@here", "@channel", "@everyone"):
        assert word not in out.replace("a@here.io", "")
    assert "a@here.io" in out


def test_huge_table_becomes_code_blocks_with_a_note() -> None:
    rows = [[f"<@U{i:06d}>", "operator", "granted by U0ADMIN" * 2] for i in range(5000)]
    message = Message().header("Roles").table(["user", "role", "source"], rows, title="All")
    message.context("Everyone else: viewer.")
    blocks = _ok(render_blocks(message))
    assert len(blocks) == 50
    assert blocks[0]["type"] == "header"
    assert blocks[1]["text"]["text"] == "*All*"
    code = [b["text"]["text"] for b in blocks if b["type"] == "section"][1:]
    assert all(t.startswith("```\nuser") and t.endswith("\n```") for t in code)  # header per chunk
    notes = _notes(blocks)
    assert notes[-1] == "Everyone else: viewer."
    (note,) = [n for n in notes if "not shown" in n]
    shown_rows = sum(t.count("\n") - 3 for t in code)
    assert note == f"… {5000 - shown_rows} more rows not shown (Slack's size limit)."


def test_wide_cells_are_clipped() -> None:
    blocks = _ok(render_blocks(Message().table(["a"], [["w" * 10_000]] * 3)))
    assert all(len(t) <= 3000 for t in _texts(blocks))


def test_fields_headers_and_empty_tables() -> None:
    pairs = [(f"key {i}", "v" * 5000) for i in range(25)]
    message = Message().header("H" * 500).fields(*pairs).table(["a", "b"], [])
    blocks = _ok(render_blocks(message))
    assert len(blocks[0]["text"]["text"]) == 150 and blocks[0]["text"]["text"].endswith("…")
    assert [len(b["fields"]) for b in blocks if "fields" in b] == [10, 10, 5]
    assert blocks[-1]["text"]["text"] == "_(none)_"


def test_buttons_split_across_actions_blocks_with_unique_ids() -> None:
    buttons = [Button(f"Button number {i} " + "L" * 100, f"approve {i}") for i in range(30)]
    blocks = _ok(render_blocks(Message().text("pick").buttons(*buttons)))
    actions = [b for b in blocks if b["type"] == "actions"]
    assert [len(a["elements"]) for a in actions] == [25, 5]
    elements = [e for a in actions for e in a["elements"]]
    assert [e["action_id"] for e in elements] == [f"mdl.cmd.{i}" for i in range(1, 31)]
    assert [e["value"] for e in elements] == [f"approve {i}" for i in range(30)]
    assert all(len(e["text"]["text"]) <= 75 for e in elements)


def test_confirm_style_and_form_buttons() -> None:
    form = Form(
        "Reject request with a long title",
        "reject 7",
        (FormField("note", "Reason", multiline=True, optional=True, hint="shown on the card"),),
        submit="Reject",
    )
    message = Message().buttons(
        Button("Approve", "approve 7 --digest abc", style="primary", confirm="Approve? " * 100),
        Button("Reject", "reject 7", style="danger", form=form),
    )
    approve, reject = _ok(render_blocks(message))[0]["elements"]
    assert approve["style"] == "primary"
    assert len(approve["confirm"]["text"]["text"]) <= 300
    assert approve["confirm"]["confirm"]["text"] == "Approve"
    assert reject["action_id"] == "mdl.form.2" and reject["style"] == "danger"
    assert parse_form_value(reject["value"]) == form


def test_big_forms_shed_optional_parts_or_fall_back_to_text() -> None:
    fields = tuple(
        FormField(f"field{i}", f"Label {i}", hint="h" * 200, placeholder="p" * 100, initial="i")
        for i in range(10)
    )
    value = form_value(Form("Big", "deploy x", fields))
    assert value is not None and len(value) <= BUTTON_VALUE
    decoded = parse_form_value(value)
    assert decoded.fields[0].hint is None and decoded.fields[0].name == "field0"

    huge = tuple(FormField(f"field{i}", "L" * 100) for i in range(40))
    message = Message().buttons(
        Button("Configure", "deploy x", form=Form("Huge", "deploy x", huge))
    )
    message.buttons(Button("Run", "x " * 1500))
    blocks = _ok(render_blocks(message))
    assert not any(b["type"] == "actions" for b in blocks)
    assert any("type `deploy x` instead" in n for n in _notes(blocks))


def test_details_value_fits_and_round_trips() -> None:
    small = details_value("arithmetic", ["a", "b"])
    assert parse_details_value(small) == ("arithmetic", "a\nb")
    big = details_value("arithmetic", [f'line {i} ✓ "quoted"' for i in range(1000)])
    assert len(big) <= BUTTON_VALUE
    _title, text = parse_details_value(big)
    assert text.startswith("line 0") and text.endswith("more lines)")
    one_long_line = details_value("t", ["q" * 5000, "second"])
    assert len(one_long_line) <= BUTTON_VALUE
    assert parse_details_value(one_long_line)[1].endswith("(1 more line)")


def test_cutting_keeps_header_and_buttons() -> None:
    message = Message().header("Card")
    for i in range(200):
        message.text(f"paragraph {i}")
    message.buttons(Button("Approve", "approve 1"), Button("Reject", "reject 1"))
    blocks = _ok(render_blocks(message))
    assert len(blocks) == 50
    assert blocks[0]["type"] == "header"
    assert blocks[-1]["type"] == "actions"
    assert blocks[-2]["elements"][0]["text"].startswith("… 153 more lines not shown")


def test_only_buttons_still_fit() -> None:
    message = Message()
    for i in range(80):
        message.buttons(Button(f"B{i}", f"x {i}"))
    blocks = _ok(render_blocks(message))
    assert len(blocks) == 50
    assert "not shown" in blocks[-1]["elements"][0]["text"]


def test_home_view_allows_100_blocks() -> None:
    message = Message()
    for i in range(150):
        message.text(f"entry {i}")
    view = home_view(message)
    assert view["type"] == "home" and len(view["blocks"]) == 100
    _ok(view["blocks"], 100)


@pytest.mark.parametrize("seed", range(60))
def test_random_messages_always_fit(seed: int) -> None:
    rng = random.Random(seed)
    message = Message()

    def text(n: int) -> str:
        alphabet = "ab <>&*_`\n@✓"
        return "".join(rng.choice(alphabet) for _ in range(n))

    for _ in range(rng.randint(1, 80)):
        kind = rng.choice(
            [
                "header",
                "text",
                "fields",
                "table",
                "code",
                "context",
                "details",
                "buttons",
                "divider",
                "progress",
            ]
        )
        size = rng.choice([1, 10, 200, 3100, 9000])
        if kind == "header":
            message.header(text(size))
        elif kind == "text":
            message.text(text(size))
        elif kind == "fields":
            message.fields(*[(text(10), text(size)) for _ in range(rng.randint(1, 25))])
        elif kind == "table":
            rows = [[text(rng.randint(0, 40)) for _ in range(3)] for _ in range(size // 10)]
            message.table(["a", "b", "c"], rows, title=rng.choice([None, text(20)]))
        elif kind == "code":
            message.code(text(size))
        elif kind == "context":
            message.context(text(size))
        elif kind == "details":
            message.details(text(30), [text(50) for _ in range(size // 20)])
        elif kind == "buttons":
            message.buttons(
                *[Button(text(90), text(size % 2100)) for _ in range(rng.randint(1, 30))]
            )
        elif kind == "divider":
            message.divider()
        else:
            message.progress(rng.random(), text(size))
    payload = render_message(message)
    _ok(payload["blocks"])
    assert len(payload["text"]) <= 3000
    ids = [
        e["action_id"]
        for b in payload["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] != "mdl.details"
    ]
    assert len(ids) == len(set(ids))


def test_rendered_messages_and_modals_are_accepted_by_slack(fake_slack: FakeSlack) -> None:
    client = WebClient(token=fake_slack.token, base_url=fake_slack.api_url)
    message = (
        Message()
        .header("x" * 300)
        .table(["a"], [["r" * 50]] * 3000)
        .buttons(
            Button("Go", "go"),
            Button("Form", "f", form=Form("T" * 40, "f", (FormField("a", "A"),))),
        )
    )
    assert client.chat_postMessage(channel="C1", **render_message(message))["ok"]

    form = Form(
        "A title much longer than twenty-four",
        "vault put",
        tuple(
            FormField(f"f{i}", "L" * 3000, secret=i == 0, initial="v" * 4000, placeholder="p" * 300)
            for i in range(120)
        ),
        submit="S" * 40,
    )
    view = form_view(form, channel="C1")
    assert json.loads(view["private_metadata"]) == {
        "command": "vault put",
        "channel": "C1",
        "secret": ["f0"],
    }
    opened = client.views_open(trigger_id=fake_slack.new_trigger_id(), view=view)["view"]
    assert len(opened["blocks"]) == 100
    assert opened["title"]["text"].endswith("…") and len(opened["title"]["text"]) == 24
