"""From Slack: `/model endpoint add` opens a modal; the key goes in a secret field, not chat."""

from __future__ import annotations

import json

import pytest

from tests.fakes.ollama import FakeOpenAI
from tests.integration.endpoints.conftest import KEY
from tests.integration.slack.conftest import ADMIN_A, CHANNEL, Harness, shown


def _modal(slack: Harness) -> dict:
    opened = [c for c in slack.fake.calls("views.open") if c.ok]
    view = opened[-1].params["view"]
    return json.loads(view) if isinstance(view, str) else view


def _values(**fields: str) -> dict:
    return {f"f.{name.replace('_', '-')}": {"value": value} for name, value in fields.items()}


def test_add_an_endpoint_in_a_modal_with_the_key_kept_out_of_chat(
    slack: Harness, fake_openai: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_openai.api_key = KEY
    fake_openai.set_models(["llama3.2"])
    slack.command(f"endpoint add vllm {fake_openai.url} --type openai-compatible", user=ADMIN_A)
    modal = _modal(slack)
    metadata = json.loads(modal["private_metadata"])
    assert metadata["command"] == "endpoint add" and metadata["secret"] == ["api-key"]
    blocks = {b["block_id"]: b for b in modal["blocks"]}
    assert blocks["f.endpoint-name"]["element"]["initial_value"] == "vllm"
    # type and sharing are select menus (issue 14 item 16), not free text
    for block_id, options, initial in (
        ("f.type", ["ollama", "openai-compatible", "custom"], "openai-compatible"),
        ("f.shared-with", ["owner", "everyone"], "owner"),
    ):
        element = blocks[block_id]["element"]
        assert element["type"] == "static_select", element
        assert [o["value"] for o in element["options"]] == options
        assert element["initial_option"]["value"] == initial
    assert "initial_value" not in blocks["f.api-key"]["element"]

    # a bad URL keeps the modal open, with the reason on the form
    bad = slack.post(
        slack.fake.view_submission(
            values=_values(
                endpoint_name="vllm",
                base_url="ftp://vllm",
                type="openai-compatible",
                shared_with="owner",
                api_key=KEY,
            ),
            user_id=ADMIN_A,
        )
    )
    assert bad.json()["response_action"] == "errors"
    assert "http:// or https://" in bad.json()["errors"]["f.endpoint-name"]
    assert slack.core.endpoints.list(ADMIN_A) == []

    good = slack.post(
        slack.fake.view_submission(
            values=_values(
                endpoint_name="vllm",
                base_url=fake_openai.url,
                type="openai-compatible",
                shared_with="owner",
                api_key=KEY,
            ),
            user_id=ADMIN_A,
        )
    )
    assert good.status == 200
    slack.drain()
    assert slack.core.endpoints.resolve("vllm", ADMIN_A).api_key == KEY
    assert slack.core.endpoints.resolve("vllm", ADMIN_A).type == "openai-compatible"
    (answer,) = [e for e in slack.fake.ephemerals(CHANNEL, ADMIN_A) if "Added endpoint" in shown(e)]
    assert "set (…cdef)" in shown(answer) and "healthy" in shown(answer)

    # the key reached the handler only: not the audit log, Slack calls or logs
    entries = slack.core.audit.query(action="command.endpoint.add", limit=5)
    assert any(e.params["text"].endswith("--api-key -") for e in entries)
    assert KEY.encode() not in slack.core.audit.export("json")
    assert all(KEY.encode() not in r.body for r in slack.fake.requests)
    captured = capsys.readouterr()
    assert KEY not in captured.out + captured.err


def test_an_export_sent_to_a_dm_says_so_in_the_channel(slack: Harness) -> None:
    """Issue 14 item 16: the file went to the DM without a word where the command was typed."""
    slack.command("endpoint export", user=ADMIN_A)
    (upload,) = slack.fake.files()
    assert upload.completed and upload.filename == "endpoints.json"
    assert CHANNEL not in (upload.channels or [])
    assert "`endpoints.json` sent to you in a DM" in shown(slack.last_response())
