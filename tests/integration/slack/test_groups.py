"""`/model group compare` in Slack: the comparison and its chart, uploaded as a PNG."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelarium.config import Settings
from tests.fakes.slack import FakeSlack
from tests.integration.slack.conftest import ADMIN_A, Harness, shown, slack_settings


@pytest.fixture
def settings(tmp_path: Path, database_url: str, fake_slack: FakeSlack) -> Settings:
    return slack_settings(tmp_path, database_url, fake_slack,
                          endpoint_allowlist=["127.0.0.0/8"], group_min_requests=20)  # fmt: skip


def test_compare_posts_its_chart(slack: Harness) -> None:
    core = slack.core
    core.endpoints.add(ADMIN_A, "gpu-1", "http://127.0.0.1:9", shared_with="everyone")
    group, _ = core.groups.create(ADMIN_A, "chat", "gpu-1/llama3.2")
    core.groups.apply_members(
        "chat",
        [{"name": "gpu-1/llama3.2", "role": "champion", "traffic": 90},
         {"name": "gpu-1/qwen3", "role": "challenger", "traffic": 10}],
        revision=group.revision, status="running", action="challenge", user=ADMIN_A,
        change_id=None,
    )  # fmt: skip
    now = core.clock.now().timestamp()
    rows = [
        {"ts": now - i, "member": member, "source": "eval", "ok": True,
         "latency_ms": base + i % 9, "completion_tokens": 12}
        for member, base in (("gpu-1/llama3.2", 120), ("gpu-1/qwen3", 90))
        for i in range(40)
    ]  # fmt: skip
    core.groups.record(group, rows)
    slack.command("group compare chat", user=ADMIN_A)
    text = shown(slack.last_response())
    assert "Group chat: comparison" in text and "challenger p95" in text
    (upload,) = slack.fake.files()
    assert upload.completed and upload.filename == "chat-compare.png"
    assert upload.content is not None and upload.content.startswith(b"\x89PNG\r\n\x1a\n")


def test_the_bot_port_takes_kserve_logger_events(slack: Harness) -> None:
    import httpx

    from tests.fakes import kserve_logger as kl

    core = slack.core
    core.endpoints.add(ADMIN_A, "gpu-1", "http://127.0.0.1:9", shared_with="everyone")
    core.groups.create(ADMIN_A, "chat", "gpu-1/llama3.2")
    token = core.groups.token("chat")
    url = f"{slack.bot.url}/inference/events/chat/gpu-1%2Fllama3.2?token={token}"
    t0 = core.clock.now().timestamp()
    with httpx.Client(timeout=10) as client:
        for kind, at, data in (
            (kl.REQUEST, t0, kl.chat_request("m", "hi")),
            (kl.RESPONSE, t0 + 0.25, kl.chat_response("m", "hello", 3, 5)),
        ):
            headers, body = kl.binary(kind, "e-1", at, data)
            assert client.post(url, headers=headers, content=body).status_code == 202
        assert client.post(url.replace(token, "nope"), headers=headers,
                           content=body).status_code == 401  # fmt: skip
        metrics = client.get(f"{slack.bot.url}/metrics").text
    assert 'modelarium_inference_events_total{type="response"}' in metrics
    compared = core.groups.compare("chat")
    [member] = compared.members
    assert (member.requests, member.p50) == (1, 250.0)
