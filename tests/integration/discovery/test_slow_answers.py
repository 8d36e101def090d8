"""Issue 14 item 21: a command that takes longer than the front's threshold (a slow Hub) is
answered at once with a short "looking up" note, which the result then replaces."""

from __future__ import annotations

from tests.fakes.hf_hub import FakeHub
from tests.integration.slack.conftest import CHANNEL, VIEWER, Harness, shown
from tests.unit.discovery.hubdata import QWEN_7B


def test_a_slow_command_is_acknowledged_then_replaced_by_its_answer(
    slack: Harness, hub: FakeHub
) -> None:
    slack.bot.front.slow_answer = 0.3
    hub.delay(0.6)  # per request, within the Hub timeout (2 s)
    slack.command(f"info {QWEN_7B}", user=VIEWER)

    first, last = slack.fake.responses()[0], slack.fake.responses()[-1]
    assert "Looking up `info Qwen/Qwen2.5-7B-Instruct`" in shown(first.payload)
    assert last.replace_original and last.error is None
    assert "Qwen2.5-7B-Instruct" in shown(last.payload) and "Looking up" not in shown(last.payload)
    # what the user sees: one message, the note replaced by the answer
    [seen] = slack.fake.ephemerals(CHANNEL, VIEWER)
    assert "Looking up" not in shown(seen) and "Qwen2.5-7B-Instruct" in shown(seen)
    assert "Looking up" in str(seen.history[0]["text"])


def test_a_fast_command_gets_no_note(slack: Harness, hub: FakeHub) -> None:
    slack.bot.front.slow_answer = 2.0
    slack.command("whoami", user=VIEWER)
    assert len(slack.fake.responses()) == 1
    assert "Looking up" not in shown(slack.fake.responses()[0].payload)


def test_a_slow_mention_notes_in_the_thread_then_removes_the_note(
    slack: Harness, hub: FakeHub
) -> None:
    slack.bot.front.slow_answer = 0.3
    hub.delay(0.6)  # per request, within the Hub timeout (2 s)
    slack.post(
        slack.fake.event(
            {
                "type": "app_mention",
                "user": VIEWER,
                "text": f"<@{slack.fake.bot_user_id}> info {QWEN_7B}",
                "channel": CHANNEL,
                "ts": "1700000000.000100",
            }
        )
    )
    notes = [c for c in slack.fake.calls("chat.postMessage") if c.ok]
    assert len(notes) == 1 and "Looking up" in str(notes[0].params)
    assert [c for c in slack.fake.calls("chat.delete") if c.ok], "the note is taken away"
    [answer] = slack.fake.ephemerals(CHANNEL, VIEWER)
    assert "Qwen2.5-7B-Instruct" in shown(answer)
    assert answer.thread_ts == "1700000000.000100"
