"""group_guard through the daemon's task ledger: a worse challenger is cut to 0% by an automatic
change and fires an alert; one that passes every rule is announced ready, with a Promote button."""

from __future__ import annotations

from modelarium.automation.tasks import groups as group_tasks
from modelarium.core.messages import Actions, render_plain
from tests.integration.groups.conftest import ADMIN
from tests.integration.groups.test_split import CHALLENGER, CHAMPION, _group


def test_guard_cuts_a_challenger_with_significantly_more_errors(runner, core, endpoints, clock):
    _, openai = endpoints
    openai.set_chat(error_rate=0.5, seed=1)
    _group(runner)
    assert runner.execute("group eval chat --n 60", user=ADMIN).ok
    group_tasks.register(core)
    outcome = core.tasks.run_tick("group_guard", None, None, manual=True)
    assert outcome.status == "ok", outcome.summary
    assert "cut to 0%: chat/vllm/mistral-7b" in outcome.summary
    group = core.groups.get("chat")
    assert group.member(CHALLENGER).traffic == 0 and group.member(CHAMPION).traffic == 100
    history = core.groups.history("chat")
    assert history[-1].action == "guard" and history[-1].user == "system"
    alerts = [a for a in core.alerts.active() if a.rule == "group_challenger_breach"]
    assert alerts and alerts[0].labels["member"] == CHALLENGER
    # a second pass finds nothing to judge: the challenger has no traffic now
    clock.advance(600)
    again = core.tasks.run_tick("group_guard", None, None, manual=True)
    assert "0 challenger(s) judged" in again.summary


def test_guard_says_ready_to_promote_when_every_rule_passed(runner, core, endpoints):
    ollama, openai = endpoints
    ollama.set_chat(latency=0.04)
    openai.set_chat(latency=0.01)  # clearly faster, whatever the machine's load
    _group(runner)
    assert runner.execute("group eval chat --n 25", user=ADMIN).ok
    group_tasks.register(core)
    outcome = core.tasks.run_tick("group_guard", None, None, manual=True)
    assert "ready to promote: chat" in outcome.summary, outcome.summary
    revision = core.groups.get("chat").revision
    message, _, _ = core.notify.get(f"group-ready:chat:{revision}")
    text = render_plain(message)
    assert "ready to promote" in text
    assert core.groups.get("chat").member(CHALLENGER).traffic == 10  # untouched
    buttons = [b for block in message.blocks if isinstance(block, Actions) for b in block.buttons]
    assert [b.command for b in buttons] == ["group promote chat"]
