"""Issue 14 item 20: action buttons where the next step is obvious, each a command twin run as
the presser, with a link to the model's Hub page. Through the real Slack front."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from modelarium.core.alerts import AlertRule, Observation
from modelarium.core.db.models.weights import WeightRecord
from tests.fakes.hf_hub import FakeHub
from tests.integration.slack.conftest import ADMIN_A, CHANNEL, VIEWER, Harness, shown
from tests.unit.discovery.hubdata import QWEN_7B


def _buttons(blocks: list[dict]) -> dict[str, dict]:
    return {
        e["value"]: e
        for b in blocks
        if b.get("type") == "actions"
        for e in b["elements"]
        if e.get("type") == "button"
    }


def test_search_results_offer_info_fit_install_and_a_hub_link(slack: Harness, hub: FakeHub) -> None:
    slack.command("search qwen", user=VIEWER)
    response = slack.last_response()
    buttons = _buttons(response.blocks)
    for verb in ("info", "fit", "install"):
        assert f"{verb} {QWEN_7B}" in buttons, sorted(buttons)
    assert f"<{hub.url}/{QWEN_7B}|Hub page>" in json.dumps(response.blocks)

    # each button is the text twin of a command, run with the presser's role (the click path
    # itself is the one approval and alert cards use): Info for a viewer, Install refused
    slack.command(buttons[f"info {QWEN_7B}"]["value"], user=VIEWER)
    assert "Qwen2.5-7B-Instruct" in shown(slack.last_response())
    slack.command(buttons[f"install {QWEN_7B}"]["value"], user=VIEWER)
    assert "operator" in shown(slack.last_response())


def test_weights_table_offers_pin_and_verify(slack: Harness, hub: FakeHub) -> None:
    commit = hub.repo(QWEN_7B).head.sha
    location = slack.core.settings.locations[0]
    with slack.core.db.transaction() as session:
        session.add(
            WeightRecord(
                repo_id=QWEN_7B,
                revision="main",
                commit=commit,
                location=location.name,
                status="installed",
                created_by=ADMIN_A,
                installed_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
    slack.command("weights", user=ADMIN_A)
    response = slack.last_response()
    target = f"{QWEN_7B}@{commit} --location {location.name}"
    buttons = _buttons(response.blocks)
    assert f"pin {target}" in buttons and f"verify {target}" in buttons, sorted(buttons)
    assert f"<{hub.url}/{QWEN_7B}|Hub page>" in json.dumps(response.blocks)

    slack.command(buttons[f"pin {target}"]["value"], user=ADMIN_A)
    assert "Pinned" in shown(slack.last_response())
    slack.command("weights", user=ADMIN_A)
    assert f"unpin {target}" in _buttons(slack.last_response().blocks)


def test_alert_cards_offer_show_endpoint_and_the_runbook(slack: Harness) -> None:
    slack.core.notify.default_channel = CHANNEL
    slack.core.alerts.register(AlertRule("endpoint_down", "{endpoint} is down", ">=", 1.0))
    slack.core.alerts.runbooks["endpoint_down"] = "https://wiki.example/runbooks/endpoint-down"
    slack.core.alerts.evaluate(
        "endpoint_down", [Observation("endpoint_down", 1.0, {"endpoint": "gpu-1"})]
    )
    slack.deliver()
    card = slack.card(CHANNEL)
    buttons = _buttons(card.blocks)
    assert (
        "endpoint show gpu-1" in buttons and "silence endpoint_down{endpoint=gpu-1} 1h" in buttons
    )
    assert "<https://wiki.example/runbooks/endpoint-down|📖 runbook>" in json.dumps(
        card.blocks, ensure_ascii=False
    )
    slack.click(slack.action_id(card, "Show endpoint"), VIEWER)
    assert "gpu-1" in shown(slack.last_response())
