"""A new user searches, inspects and sizes a model: from the shell, with `modelarium cmd`, and in
Slack, where the same cards must render within Block Kit's limits."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from slack_sdk import WebClient

from modelarium.bot.dispatch import CommandRunner
from modelarium.bot.shell.console import Console
from modelarium.bot.slack.blocks import render_message
from modelarium.core.app import Core
from tests.fakes.hf_hub import FakeHub
from tests.fakes.slack import FakeSlack, validate_blocks
from tests.integration.slack.conftest import CHANNEL, VIEWER, Harness, shown
from tests.unit.discovery.hubdata import GGUF, LLAMA_8B, LLAMA_70B, QWEN_7B

ROOT = Path(__file__).resolve().parents[3]


def test_shell_search_inspect_and_size(core: Core, hub: FakeHub) -> None:
    out = io.StringIO()
    console = Console(CommandRunner(core), "U_NEWBIE", out=out, ask=lambda _p: "y")
    console.handle("/model search tiny")
    page_one = out.getvalue()
    assert "filler/tiny-llama-00" in page_one and "page 1 of 3" in page_one
    assert "[1] Next ▶" in page_one
    console.handle("1")  # press Next
    assert "page 2 of 3" in out.getvalue()

    console.handle(f"/model info {QWEN_7B}")
    card = out.getvalue()
    for part in ("Config:", "vLLM: ✅", "Catalog:", "Fit per GPU type", "vllm serve"):
        assert part in card
    assert "[1] Fit details" in card  # buttons are numbered per answer
    console.handle("1")
    fit = out.getvalue()
    assert "Arithmetic (L4):" in fit and "KV per token per GPU" in fit


def _cmd(env: dict[str, str], *words: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "modelarium", "cmd", "--user", "newbie", "--json", "--", *words],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
        timeout=120,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return {"rc": done.returncode, **json.loads(done.stdout)}


@pytest.mark.slow  # five `modelarium cmd` processes
def test_modelarium_cmd_against_the_fake_hub(
    tmp_path: Path, database_url: str, hub: FakeHub
) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "MODELARIUM_DATA_DIR": str(tmp_path / "data"),
        "MODELARIUM_DATABASE_URL": database_url,
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",
    }
    found = _cmd(env, "search", "llama", "--max-params", "10B", "--fits", "L4")
    assert found["rc"] == 0 and found["ok"]
    assert found["data"]["results"][0]["id"] == LLAMA_8B
    again = _cmd(env, "search", "llama", "--max-params", "10B")
    assert again["data"]["cached"] is True  # the second process reads the database cache
    card = _cmd(env, "info", QWEN_7B)
    assert card["ok"] and card["data"]["vllm_supported"] is True
    assert card["data"]["recommended"]["command"].startswith(f"vllm serve {QWEN_7B}")
    sized = _cmd(env, "fit", LLAMA_70B, "--gpu", "H100", "--context", "32k")
    assert sized["ok"] and sized["data"]["fits"] is True
    assert any(line.startswith("KV per token") for line in sized["data"]["arithmetic"])
    bad = _cmd(env, "fit", LLAMA_70B, "--context", "lots")
    assert bad["rc"] == 1 and bad["data"]["error"].startswith("not a context length")
    assert "Usage:" in bad["text"]


@pytest.mark.parametrize(
    "text",
    [
        "search",
        "search tiny --page 3",
        "search qwen --fits L4",
        f"info {QWEN_7B}",
        f"info {LLAMA_8B}",
        f"info {GGUF}",
        f"fit {LLAMA_70B}",
        f"fit {LLAMA_8B} --gpu L4 --gpus 1 --context 128k",
        "archs",
        "archs qwen",
        "arch Qwen2ForCausalLM",
        "gpus",
        "search --quant int3",
    ],
)
def test_cards_render_within_block_kit_limits(core: Core, fake_slack: FakeSlack, text: str) -> None:
    reply = CommandRunner(core).execute(text, user=VIEWER, front="slack")
    rendered = render_message(reply.message)
    assert validate_blocks(rendered["blocks"], 50) == []
    client = WebClient(token=fake_slack.token, base_url=fake_slack.api_url)
    assert client.chat_postMessage(channel=CHANNEL, **rendered)["ok"]


def _repost(slack: Harness) -> None:
    """Store the last ephemeral answer as a channel message so its buttons can be clicked."""
    response = slack.last_response()
    client = WebClient(token=slack.fake.token, base_url=slack.fake.api_url)
    client.chat_postMessage(channel=CHANNEL, text=response.text or "", blocks=response.blocks)


def _button(slack: Harness, label: str) -> str:
    return slack.action_id(slack.fake.messages(CHANNEL)[-1], label)


def test_slack_search_page_info_fit_and_arithmetic(slack: Harness) -> None:
    slack.command("search tiny", user=VIEWER)
    first = slack.last_response()
    assert first.error is None and "page 1 of 3" in shown(first)
    _repost(slack)
    slack.click(_button(slack, "Next ▶"), VIEWER, channel_id=CHANNEL)
    assert "page 2 of 3" in shown(slack.last_response())

    slack.command(f"info {QWEN_7B}", user=VIEWER)
    card = slack.last_response()
    assert card.error is None
    text = shown(card)
    assert "Qwen2ForCausalLM" in text and "not in the catalog" in text
    _repost(slack)
    slack.click(_button(slack, "Fit details"), VIEWER, channel_id=CHANNEL)
    fit = slack.last_response()
    assert fit.error is None and "Fit: Qwen/Qwen2.5-7B-Instruct" in shown(fit)
    _repost(slack)
    slack.click("mdl.details", VIEWER, channel_id=CHANNEL)
    details = shown(slack.last_response())
    assert "Arithmetic (L4)" in details and "KV per token per GPU" in details
