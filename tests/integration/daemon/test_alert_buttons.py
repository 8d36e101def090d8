"""The buttons on an alert message, clicked through the real Slack front (bolt app on a port,
signed requests from FakeSlack): Silence 1h silences as the clicker, Acknowledge asks for a note
in a modal and edits the alert message."""

from __future__ import annotations

import json

from modelarium.core.alerts import AlertRule, Observation
from tests.integration.slack.conftest import (  # noqa: F401  (fixtures used by name)
    ADMIN_A,
    ADMIN_B,
    CHANNEL,
    VIEWER,
    Harness,
    _workspace_users,
    make_harness,
    settings,
    shown,
    slack,
)

RULE = AlertRule("disk_usage", "{location} is {value:.0%} full", ">", 0.9)


def _fire(slack: Harness):  # noqa: F811
    slack.core.notify.default_channel = CHANNEL
    slack.core.alerts.register(RULE)
    slack.core.alerts.evaluate(
        "disk_usage", [Observation("disk_usage", 0.97, {"location": "shared"})]
    )
    slack.deliver()
    card = slack.card(CHANNEL)
    assert "shared is 97% full" in shown(card)
    return card


def test_silence_1h_button_silences_as_the_clicker(slack: Harness, clock) -> None:  # noqa: F811
    card = _fire(slack)
    button = slack.action_id(card, "Silence 1h")

    slack.click(button, VIEWER)
    assert slack.core.alerts.silences() == [], "a viewer may not silence"
    assert "operator" in shown(slack.fake.ephemerals(CHANNEL, VIEWER)[-1])

    slack.click(button, ADMIN_A)
    [silence] = slack.core.alerts.silences()
    assert silence.matcher == "disk_usage{location=shared}"
    assert silence.created_by == ADMIN_A
    assert (silence.ends_at - clock.now()).total_seconds() == 3600
    [alert] = slack.core.alerts.active()
    assert alert.silenced_by == silence.id


def test_acknowledge_button_opens_a_modal_and_edits_the_alert_message(
    slack: Harness,  # noqa: F811
    clock,
) -> None:
    card = _fire(slack)
    slack.click(slack.action_id(card, "Acknowledge"), ADMIN_B)
    [opened] = [c for c in slack.fake.calls("views.open") if c.ok]
    view = opened.params["view"]
    modal = json.loads(view) if isinstance(view, str) else view
    assert modal["title"]["text"] == "Acknowledge alert"

    reply = slack.post(
        slack.fake.view_submission(values={"f.note": {"value": "on it"}}, user_id=ADMIN_B)
    )
    assert reply.status == 200
    [alert] = slack.core.alerts.active()
    assert alert.acked_by == ADMIN_B
    assert alert.ack_note == "on it"
    slack.deliver()
    edited = slack.fake.message(CHANNEL, card.ts)
    assert f"acknowledged by <@{ADMIN_B}>: on it" in shown(edited)
    assert all(
        e.get("type") != "button" for b in edited.blocks or [] for e in b.get("elements") or []
    ), "an acknowledged alert keeps no buttons"
    assert len([m for m in slack.fake.messages(CHANNEL) if "alert(s) firing" in shown(m)]) == 1


def _buttons(message) -> list[str]:
    return [
        e["text"]["text"]
        for b in message.blocks or []
        for e in b.get("elements") or []
        if e.get("type") == "button"
    ]


def test_an_alert_firing_for_many_cycles_is_posted_once_and_never_edited_unchanged(
    slack: Harness,  # noqa: F811
    clock,
) -> None:
    """Issue 14 item 13: every evaluation re-publishes the card; the outbox sends it only when
    its content changed (14 identical chat.update calls in two minutes before)."""
    _fire(slack)
    for _ in range(12):
        clock.advance(10)
        slack.core.alerts.evaluate(
            "disk_usage", [Observation("disk_usage", 0.97, {"location": "shared"})]
        )
        slack.deliver()
    posts = [c for c in slack.fake.calls("chat.postMessage") if c.ok]
    updates = [c for c in slack.fake.calls("chat.update") if c.ok]
    assert len(posts) == 1
    assert updates == [], "an unchanged card must not be edited"

    # a real change (the value) is still shown, once
    clock.advance(10)
    slack.core.alerts.evaluate(
        "disk_usage", [Observation("disk_usage", 0.99, {"location": "shared"})]
    )
    slack.deliver()
    assert len([c for c in slack.fake.calls("chat.update") if c.ok]) == 1
    assert "shared is 99% full" in shown(slack.card(CHANNEL))


def test_a_silence_pressed_on_the_card_shows_on_the_card(slack: Harness, clock) -> None:  # noqa: F811
    card = _fire(slack)
    slack.click(slack.action_id(card, "Silence 1h"), ADMIN_A)
    [silence] = slack.core.alerts.silences()
    slack.deliver()
    edited = slack.fake.message(CHANNEL, card.ts)
    text = shown(edited)
    assert f"silenced by <@{ADMIN_A}>" in text
    assert f"silence #{silence.id}" in text
    assert "<!date^" in (edited.blocks[1]["text"]["text"]), "the end shown in local time"
    assert _buttons(edited) == ["Acknowledge", "Unsilence"]

    slack.click(slack.action_id(edited, "Unsilence"), ADMIN_A)
    assert slack.core.alerts.silences() == []
    slack.deliver()
    again = slack.fake.message(CHANNEL, card.ts)
    assert "silenced by" not in shown(again)
    assert _buttons(again) == ["Acknowledge", "Silence 1h"]
