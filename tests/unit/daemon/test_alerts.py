"""The alert engine, asserted on what the fake Slack Web API shows.

inactive -> pending -> firing -> (reminder) -> resolved; one message per firing group, edited in
place when alerts resolve or are acknowledged; silences; no duplicates across restarts and
replicas. Messages go out the production way: outbox -> SlackSender -> slack_sdk WebClient ->
FakeSlack.
"""

from __future__ import annotations

import html
import json
import threading
from typing import Any

import pytest
from slack_sdk import WebClient

from modelarium.bot.slack.sender import SlackSender
from modelarium.core.alerts import AlertRule, Observation
from modelarium.core.app import Core
from tests.conftest import make_settings

OPS = "C0OPS"
PAGER = "C0PAGER"
REPEAT = 3600.0

DISK = AlertRule(
    name="disk_usage",
    summary="{location} is {value:.0%} full",
    op=">",
    threshold=0.9,
    for_seconds=120,
)
GPU_DOWN = AlertRule(
    name="gpu_down", summary="{node} lost its GPUs", op=">=", threshold=1, severity="critical"
)


@pytest.fixture
def settings(tmp_path, database_url):
    return make_settings(
        tmp_path,
        database_url,
        notify_default_channel=OPS,
        notify_routes=[{"channel": PAGER, "severities": ["critical"]}],
        alert_repeat_interval=REPEAT,
    )


@pytest.fixture
def core(settings, clock, make_core):
    instance = make_core(settings, clock=clock)
    instance.alerts.register(DISK)
    instance.alerts.register(GPU_DOWN)
    return instance


@pytest.fixture
def slack(fake_slack):
    return SlackSender(WebClient(token=fake_slack.token, base_url=fake_slack.api_url))


def shown(message: Any) -> str:
    """What a person reads: the text and every text in the blocks, unescaped."""
    parts = [message.text or ""]
    for block in message.blocks or []:
        texts = [block.get("text"), *(block.get("fields") or []), *(block.get("elements") or [])]
        parts += [
            t["text"] for t in texts if isinstance(t, dict) and isinstance(t.get("text"), str)
        ]
        parts += [
            e["text"]["text"]
            for e in block.get("elements") or []
            if isinstance(e.get("text"), dict)
        ]
    return html.unescape("\n".join(parts))


def buttons(message: Any) -> dict[str, dict[str, Any]]:
    found = {}
    for block in message.blocks or []:
        for element in block.get("elements") or []:
            if element.get("type") == "button":
                found[element["text"]["text"]] = element
    return found


def disk(core: Core, **usage: float):
    return core.alerts.evaluate(
        "disk_usage", [Observation("disk_usage", v, {"location": k}) for k, v in usage.items()]
    )


def thread(fake, channel: str, ts: str) -> list:
    """Follow-ups posted in the thread of message ``ts``."""
    return [m for m in fake.messages(channel) if m.thread_ts == ts]


def top(fake, channel: str) -> list:
    """The channel's own messages (thread replies are follow-ups, not new messages)."""
    return [m for m in fake.messages(channel) if not m.thread_ts]


def posts(fake) -> int:
    """New messages in channels (follow-ups in threads are not counted)."""
    return len([c for c in fake.calls("chat.postMessage") if not c.params.get("thread_ts")])


def test_pending_then_firing_posts_one_message_with_ack_and_silence_buttons(
    core, clock, slack, fake_slack
):
    report = disk(core, shared=0.95)
    assert report.pending == ["disk_usage{location=shared}"]
    [alert] = core.alerts.active()
    assert alert.state == "pending"
    core.notify.deliver_pending(slack)
    assert top(fake_slack, OPS) == [], "pending is not announced"

    clock.advance(60)
    assert disk(core, shared=0.96).pending
    clock.advance(60)  # the condition has now held for the rule's `for` (120 s)
    report = disk(core, shared=0.97)
    assert report.fired == ["disk_usage{location=shared}"]
    core.notify.deliver_pending(slack)
    [message] = top(fake_slack, OPS)
    text = shown(message)
    assert "1 alert(s) firing" in text
    assert "shared is 97% full" in text
    found = buttons(message)
    assert set(found) == {"Acknowledge", "Silence 1h"}
    assert found["Silence 1h"]["value"] == "silence disk_usage{location=shared} 1h"

    # Still breached on later evaluations: no second message (edits of the same one at most).
    for _ in range(5):
        clock.advance(60)
        disk(core, shared=0.97)
        core.notify.deliver_pending(slack)
    assert posts(fake_slack) == 1
    assert [m.ts for m in top(fake_slack, OPS)] == [message.ts]


def test_a_pending_alert_that_clears_in_time_never_notifies(core, clock, slack, fake_slack):
    disk(core, shared=0.95)
    clock.advance(60)
    disk(core, shared=0.5)
    clock.advance(120)
    disk(core, shared=0.5)
    core.notify.deliver_pending(slack)
    assert fake_slack.calls("chat.postMessage") == []
    assert core.alerts.active() == []
    # It starts over: a new breach waits the full `for` again.
    disk(core, shared=0.95)
    clock.advance(119)
    assert disk(core, shared=0.95).pending


def _fire(core, clock, **usage):
    disk(core, **usage)
    clock.advance(DISK.for_seconds)
    return disk(core, **usage)


def test_a_reminder_after_the_repeat_interval_and_only_then(core, clock, slack, fake_slack):
    assert _fire(core, clock, shared=0.95).fired
    core.notify.deliver_pending(slack)
    assert posts(fake_slack) == 1

    clock.advance(REPEAT - 60)
    assert not disk(core, shared=0.95).reminded
    clock.advance(60)
    assert disk(core, shared=0.95).reminded == ["disk_usage{location=shared}"]
    clock.advance(60)
    assert not disk(core, shared=0.95).reminded, "one reminder per interval"
    core.notify.deliver_pending(slack)
    [card] = top(fake_slack, OPS)
    [reminder] = thread(fake_slack, OPS, card.ts)  # a follow-up, in the alert's thread
    assert "Still firing" in shown(reminder)
    assert "shared is 95% full" in shown(reminder)
    assert set(buttons(reminder)) == {"Acknowledge", "Silence 1h"}

    clock.advance(REPEAT)
    assert disk(core, shared=0.95).reminded
    core.notify.deliver_pending(slack)
    assert len(thread(fake_slack, OPS, card.ts)) == 2 and posts(fake_slack) == 1


def test_resolved_is_an_edit_of_the_message_that_fired(core, clock, slack, fake_slack):
    _fire(core, clock, shared=0.95)
    core.notify.deliver_pending(slack)
    [fired] = top(fake_slack, OPS)

    clock.advance(600)
    report = disk(core, shared=0.4)
    assert report.resolved == ["disk_usage{location=shared}"]
    core.notify.deliver_pending(slack)
    [resolved] = top(fake_slack, OPS)
    assert resolved.ts == fired.ts, "the same message, edited"
    assert posts(fake_slack) == 1
    [follow_up] = thread(fake_slack, OPS, fired.ts)  # and said in its thread
    assert "Resolved" in shown(follow_up)
    assert fake_slack.calls("chat.update")
    text = shown(resolved)
    assert "Resolved: disk_usage" in text
    # a Slack date: each reader sees their local time, the ISO form is the fallback
    assert (
        "resolved at <!date^1767226320^{date_short_pretty} {time}|2026-01-01T00:12Z> after 10m"
        in text
    )
    assert buttons(resolved) == {}, "nothing left to acknowledge or silence"
    assert "1 alert(s) firing" in shown(
        type(resolved)(**{**resolved.__dict__, **resolved.history[0]})
    )
    assert core.alerts.active() == []


def test_alerts_firing_together_share_one_message_per_channel(core, clock, slack, fake_slack):
    report = _fire(core, clock, a=0.95, b=0.97, c=0.99, d=0.2)
    assert sorted(report.fired) == [
        "disk_usage{location=a}",
        "disk_usage{location=b}",
        "disk_usage{location=c}",
    ]
    gpu = core.alerts.evaluate(
        "gpu_down",
        [Observation("gpu_down", 1, {"node": n}) for n in ("n1", "n2")],
    )
    assert len(gpu.fired) == 2
    core.notify.deliver_pending(slack)

    [group] = top(fake_slack, OPS)
    text = shown(group)
    assert "3 alert(s) firing" in text
    assert all(f"{loc} is" in text for loc in "abc")
    assert "d is" not in text
    assert len([label for label in _all_button_labels(group) if label == "Acknowledge"]) == 3
    [page] = top(fake_slack, PAGER)  # critical alerts are routed to the pager channel
    assert "2 alert(s) firing" in shown(page)
    assert "n1 lost its GPUs" in shown(page)

    # One of the three resolves: the shared message is edited, the others still show as firing.
    clock.advance(60)
    disk(core, a=0.95, b=0.5, c=0.99, d=0.2)
    core.notify.deliver_pending(slack)
    [group_now] = top(fake_slack, OPS)
    assert group_now.ts == group.ts
    text = shown(group_now)
    assert "2 alert(s) firing" in text
    assert "b is 50% full" in text
    assert "resolved" in text
    assert posts(fake_slack) == 2


def _all_button_labels(message: Any) -> list[str]:
    return [
        e["text"]["text"]
        for b in message.blocks or []
        for e in b.get("elements") or []
        if e.get("type") == "button"
    ]


def test_a_silence_holds_back_the_notification_until_it_expires(
    core, clock, slack, fake_slack, runner
):
    reply = runner.execute("silence disk_usage 30m --comment 'migrating'", user="U_ADMIN")
    assert reply.ok, reply.text
    report = _fire(core, clock, shared=0.95)
    assert report.silenced == ["disk_usage{location=shared}"]
    assert report.fired == []
    core.notify.deliver_pending(slack)
    assert top(fake_slack, OPS) == []
    [alert] = core.alerts.active()
    assert alert.state == "firing", "silences hide notifications, not state"
    assert alert.silenced_by == reply.data["silence_id"]
    assert [s.matcher for s in core.alerts.silences()] == ["disk_usage"]

    clock.advance(30 * 60 - 121)  # one second before the silence ends
    disk(core, shared=0.95)
    core.notify.deliver_pending(slack)
    assert top(fake_slack, OPS) == []
    clock.advance(1)
    assert core.alerts.silences() == [], "expired"
    assert disk(core, shared=0.95).fired == ["disk_usage{location=shared}"]
    core.notify.deliver_pending(slack)
    [message] = top(fake_slack, OPS)
    assert "shared is 95% full" in shown(message)


def test_the_silence_button_command_silences_reminders_for_an_hour(
    core, clock, slack, fake_slack, runner
):
    _fire(core, clock, shared=0.95)
    core.notify.deliver_pending(slack)
    [message] = top(fake_slack, OPS)
    command = buttons(message)["Silence 1h"]["value"]

    viewer = runner.execute(command, user="U_VIEWER")
    assert not viewer.ok, "silencing needs the operator role"
    reply = runner.execute(command, user="U_ADMIN")  # what the click runs, as the clicker
    assert reply.ok, reply.text

    clock.advance(REPEAT)  # a reminder would be due, but the silence (1 h) is still on
    clock.advance(-1)
    assert disk(core, shared=0.95).reminded == []
    clock.advance(2)  # silence over, reminder overdue
    assert disk(core, shared=0.95).reminded == ["disk_usage{location=shared}"]
    core.notify.deliver_pending(slack)
    assert len(thread(fake_slack, OPS, message.ts)) == 1


def test_acknowledge_edits_the_message_and_stops_reminders(core, clock, slack, fake_slack, runner):
    _fire(core, clock, shared=0.95, scratch=0.99)
    core.notify.deliver_pending(slack)
    [message] = top(fake_slack, OPS)
    [shared] = [a for a in core.alerts.active() if a.labels == {"location": "shared"}]
    acks = [
        e
        for b in message.blocks or []
        for e in b.get("elements") or []
        if e.get("type") == "button" and e["text"]["text"] == "Acknowledge"
    ]
    assert all(a["action_id"].startswith("mdl.form.") for a in acks), "a modal asks for a note"
    assert f"alert ack {shared.id}" in [json.loads(a["value"])["c"] for a in acks]

    reply = runner.execute(f"alert ack {shared.id} --note 'moving weights'", user="U_ADMIN")
    assert reply.ok, reply.text
    core.notify.deliver_pending(slack)
    [edited] = top(fake_slack, OPS)
    assert edited.ts == message.ts
    text = shown(edited)
    assert "acknowledged by <@U_ADMIN>: moving weights" in text
    assert _all_button_labels(edited).count("Acknowledge") == 1, "only the other alert's buttons"

    clock.advance(REPEAT)
    report = disk(core, shared=0.95, scratch=0.99)
    assert report.reminded == ["disk_usage{location=scratch}"], "no reminder for the acked one"


def test_a_restarted_daemon_does_not_notify_again(settings, clock, slack, fake_slack, make_core):
    first = make_core(settings, clock=clock)
    first.alerts.register(DISK)
    _fire(first, clock, shared=0.95)
    first.notify.deliver_pending(slack)
    first.close()

    restarted = make_core(settings, clock=clock, migrate=False)  # same database, new process
    restarted.alerts.register(DISK)
    for _ in range(3):
        clock.advance(60)
        assert not disk(restarted, shared=0.95).fired
        restarted.notify.deliver_pending(slack)
    assert posts(fake_slack) == 1
    disk(restarted, shared=0.1)
    restarted.notify.deliver_pending(slack)
    [message] = top(fake_slack, OPS)
    assert "Resolved" in shown(message)


def test_replicas_evaluating_and_delivering_at_once_post_one_message(
    settings, clock, slack, fake_slack
):
    replicas = []
    for _ in range(3):
        replica = Core(settings, clock=clock)
        replica.alerts.register(DISK)
        replicas.append(replica)
    replicas[0].migrate()
    try:
        disk(replicas[0], a=0.95, b=0.95)  # pending everywhere (shared state)
        clock.advance(DISK.for_seconds)
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(replicas))

        def tick(replica: Core) -> None:
            try:
                barrier.wait()
                disk(replica, a=0.95, b=0.95)
                barrier.wait()
                replica.notify.deliver_pending(slack)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=tick, args=(r,)) for r in replicas]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        [message] = top(fake_slack, OPS)
        assert "2 alert(s) firing" in shown(message)
        assert posts(fake_slack) == 1
    finally:
        for replica in replicas:
            replica.close()


def test_the_task_failing_rule_reaches_slack(core, clock, slack, fake_slack):
    from modelarium.automation.scheduler import Scheduler
    from modelarium.core.scheduling import PeriodicTask

    def broken():
        raise ConnectionError("hub unreachable")

    core.tasks.register(PeriodicTask("cache_refresh", 60, broken))
    scheduler = Scheduler(core, "d1")
    for _ in range(core.settings.task_failure_threshold):
        scheduler.renew_lease()
        scheduler.fire("cache_refresh")
        clock.advance(60)
    core.notify.deliver_pending(slack)
    [message] = top(fake_slack, OPS)
    text = shown(message)
    assert "Daemon task cache_refresh failed 3 times in a row" in text
    assert buttons(message)["Silence 1h"]["value"] == "silence task_failing{task=cache_refresh} 1h"


def test_replicas_racing_on_a_new_alert_instance_neither_fail_nor_duplicate(
    settings, clock, slack, fake_slack
):
    """Nobody has seen this fingerprint yet: several replicas create it at the same moment."""
    rule = AlertRule(name="fresh", summary="{x} breached", op=">", threshold=0)
    replicas = []
    for _ in range(4):
        replica = Core(settings, clock=clock)
        replica.alerts.register(rule)
        replicas.append(replica)
    replicas[0].migrate()
    try:
        errors: list[BaseException] = []
        reports = []
        for attempt in range(5):
            barrier = threading.Barrier(len(replicas))
            observation = [Observation("fresh", 1, {"x": f"n{attempt}"})]

            def tick(replica: Core, observation=observation, barrier=barrier) -> None:
                try:
                    barrier.wait()
                    reports.append(replica.alerts.evaluate("fresh", observation, complete=False))
                except BaseException as exc:  # surfaced below
                    errors.append(exc)

            threads = [threading.Thread(target=tick, args=(r,)) for r in replicas]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        assert errors == []
        assert sum(len(r.fired) for r in reports) == 5, "each instance fired exactly once"
        replicas[0].notify.deliver_pending(slack)
        assert posts(fake_slack) == 5
    finally:
        for replica in replicas:
            replica.close()


def test_a_silence_that_could_match_nothing_is_refused_with_why(core, settings, clock):
    from modelarium.bot.dispatch import CommandRunner
    from modelarium.core.scheduling import PeriodicTask

    core.tasks.register(PeriodicTask("hub_cache_refresh", 60, lambda: None))
    core.tasks.sync()  # as the daemon does at start
    # the bot is another process: it registers no task itself, it reads the daemon's
    bot = Core(settings, clock=clock)
    bot.alerts.register(DISK)
    runner = CommandRunner(bot)
    wrong = runner.execute("silence 'task_failing{task=cache_refresh}' 1d", user="U_ADMIN")
    assert not wrong.ok and wrong.outcome == "not_found"
    assert "matches no task_failing alert that can occur" in wrong.text
    assert "hub_cache_refresh" in wrong.text  # says what it could be
    typo = runner.execute("silence disk_usgae 1h", user="U_ADMIN")
    assert not typo.ok and "matches no alert rule and no alert" in typo.text
    assert "disk_usage" in typo.text
    assert core.alerts.silences() == []
    # the help's own example, a rule, a pattern of a rule, and an instance that exists all work
    for text in (
        "silence 'task_failing{task=hub_cache_refresh}' 1d",
        "silence disk_usage 1h",
        "silence 'disk_usage{location=*}' 1h",
        "silence 'task_failing*' 1h",
    ):
        assert runner.execute(text, user="U_ADMIN").ok, text
    assert runner.execute("help silence", user="U_ADMIN").text.count("task=hub_cache_refresh")
    bot.close()


def test_unsilence_twice_says_there_is_nothing_to_do(core, runner, clock):
    made = runner.execute("silence disk_usage 1h", user="U_ADMIN")
    first = runner.execute(f"unsilence {made.data['silence_id']}", user="U_ADMIN")
    assert first.ok and first.data["changed"] is True
    clock.advance(1)
    second = runner.execute(f"unsilence {made.data['silence_id']}", user="U_ADMIN")
    assert second.ok and second.data["changed"] is False
    assert second.text.startswith("Nothing to do: silence #")
    entries = [e for e in core.audit.iter_all() if e.action == "alert.unsilence"]
    assert len(entries) == 1
