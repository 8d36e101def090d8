"""The split strategy end to end: create, challenge, pick, eval against the fake Ollama and
OpenAI-compatible servers, compare, promote with two approvals, rollback, delete."""

from __future__ import annotations

import sqlalchemy as sa

from modelarium.core.jobs import WorkerPool
from tests.integration.groups.conftest import ADMIN, ADMIN2

CHAMPION = "gpu-1/llama3.2"
CHALLENGER = "vllm/mistral-7b"


def _table_exists(core, name: str) -> bool:
    return sa.inspect(core.db.engine).has_table(name)


def _group(runner) -> None:
    created = runner.execute(f"group create chat --champion {CHAMPION}", user=ADMIN)
    assert created.ok, created.text
    challenged = runner.execute(f"group challenge chat {CHALLENGER} --traffic 10", user=ADMIN)
    assert challenged.ok, challenged.text
    assert challenged.data["change"] and challenged.data["digest"]


def test_create_makes_the_groups_own_table_and_delete_drops_it(runner, core, endpoints):
    created = runner.execute(f"group create chat --champion {CHAMPION}", user=ADMIN)
    assert created.ok, created.text
    table = created.data["table"]
    assert table == f"group_inference_{created.data['id']}"
    assert _table_exists(core, table)
    assert created.data["members"] == [{"name": CHAMPION, "role": "champion", "traffic": 100}]

    deleted = runner.execute("group delete chat", user=ADMIN)
    assert deleted.ok, deleted.text
    assert deleted.data["approval"] is not None  # deleting drops records: approval needed
    approved = runner.execute(f"approve {deleted.data['approval']}", user=ADMIN2)
    assert approved.ok, approved.text
    WorkerPool(core.jobs, size=0).run_one()
    assert core.changes.get(deleted.data["change"]).status == "succeeded"
    assert not _table_exists(core, table)
    assert runner.execute("groups", user=ADMIN).data["groups"] == []


def test_bad_input_gets_one_line_and_usage(runner, endpoints):
    reply = runner.execute("group create Bad_Name! --champion gpu-1/llama3.2", user=ADMIN)
    assert not reply.ok and "lowercase letters" in reply.text and "Usage" in reply.text
    reply = runner.execute("group create chat --champion nothing-here", user=ADMIN)
    assert not reply.ok and "<endpoint>/<model>" in reply.text
    reply = runner.execute("group create chat --champion nope/llama3.2", user=ADMIN)
    assert not reply.ok and "Traceback" not in reply.text
    reply = runner.execute("group create chat --champion gpu-1/x --strategy canary", user=ADMIN)
    assert not reply.ok and "no deployment 'x' in gpu-1" in reply.text
    reply = runner.execute("group eval nope", user=ADMIN)
    assert not reply.ok and "no group named 'nope'" in reply.text


def test_challenge_pick_eval_compare_promote(runner, core, endpoints):
    ollama, openai = endpoints
    ollama.set_chat(latency=0.03, jitter=0.01)
    openai.set_chat(latency=0.01, jitter=0.005)
    _group(runner)
    shown = runner.execute("group show chat", user=ADMIN)
    assert [(m["name"], m["role"], m["traffic"]) for m in shown.data["members"]] == [
        (CHAMPION, "champion", 90),
        (CHALLENGER, "challenger", 10),
    ]
    url = shown.data["logger_urls"][CHAMPION]
    assert url.startswith(
        "https://modelarium.example.com/inference/events/chat/gpu-1%2Fllama3.2?token="
    )

    core.groups._random = lambda: 0.95  # the draw lands in the challenger's 10%
    picked = runner.execute("group pick chat", user=ADMIN)
    assert picked.ok and picked.data["member"] == CHALLENGER
    assert "traffic share" in picked.data["reason"] and "90%" in picked.data["reason"]
    core.groups._random = lambda: 0.5
    assert runner.execute("group pick chat", user=ADMIN).data["member"] == CHAMPION
    # `/model pick <group>` (the spelling) is the same choice
    assert runner.execute("pick chat", user=ADMIN).data["member"] == CHAMPION

    too_early = runner.execute("group promote chat", user=ADMIN)
    assert not too_early.ok
    assert "too few requests" in too_early.text and "20 more" in too_early.text

    evaluated = runner.execute("group eval chat --n 30", user=ADMIN)
    assert evaluated.ok, evaluated.text
    assert evaluated.data["rows"] == 60
    assert ollama.chats == 30 and openai.chats == 30

    compared = runner.execute("group compare chat", user=ADMIN)
    assert compared.ok, compared.text
    members = compared.data["members"]
    assert set(members) == {CHAMPION, CHALLENGER}
    for name in (CHAMPION, CHALLENGER):
        figures = members[name]
        assert figures["requests"] == 30 and figures["errors"] == 0
        assert figures["error_rate"] == 0.0
        assert set(figures["latency_ms"]) == {"p50", "p95", "p99"}
        assert figures["latency_ms"]["p50"] <= figures["latency_ms"]["p95"]
        assert figures["tokens_per_s"] > 0
    assert members[CHAMPION]["role"] == "champion" and members[CHALLENGER]["role"] == "challenger"
    assert members[CHALLENGER]["verdict"] == "better"  # 10 ms vs 30 ms, significant
    assert "challenger p95" in compared.text and "lower" in compared.text
    assert compared.files and compared.files[0].content[:8] == b"\x89PNG\r\n\x1a\n"

    proposed = runner.execute("group promote chat", user=ADMIN)
    assert proposed.ok, proposed.text
    change = core.changes.get(proposed.data["change"])
    assert change.plan["approvals_required"] == 2
    assert any("— evidence —" in line for line in change.diff)
    assert any("30 requests" in line for line in change.diff)
    assert runner.execute("role grant U_OP operator", user=ADMIN).ok
    assert runner.execute(f"approve {proposed.data['approval']}", user=ADMIN2).ok
    assert core.changes.get(change.id).status == "pending_approval"  # one of two
    assert runner.execute(f"approve {proposed.data['approval']}", user="U_OP").ok
    WorkerPool(core.jobs, size=0).run_one()
    assert core.changes.get(change.id).status == "succeeded"
    group = core.groups.get("chat")
    assert group.status == "promoted"
    assert [(m.name, m.role, m.traffic) for m in group.members] == [
        (CHALLENGER, "champion", 100),
        (CHAMPION, "retired", 0),
    ]
    actions = [e.action for e in core.groups.history("chat")]
    assert actions == ["create", "challenge", "promote"]


def test_traffic_and_rollback_are_changes_and_revertible(runner, core, endpoints):
    _group(runner)
    moved = runner.execute("group traffic chat 25", user=ADMIN)
    assert moved.ok, moved.text
    assert core.changes.get(moved.data["change"]).status == "succeeded"
    assert core.groups.get("chat").member(CHALLENGER).traffic == 25
    assert runner.execute("group traffic chat 150", user=ADMIN).ok is False

    reverted = runner.execute(f"revert {moved.data['change']}", user=ADMIN)
    assert reverted.ok, reverted.text
    assert core.groups.get("chat").member(CHALLENGER).traffic == 10

    rolled = runner.execute("group rollback chat", user=ADMIN)
    assert rolled.ok, rolled.text
    group = core.groups.get("chat")
    assert group.status == "rolled_back"
    assert group.member(CHAMPION).traffic == 100 and group.member(CHALLENGER).role == "retired"


def test_a_viewer_cannot_change_a_group(runner, endpoints):
    _group(runner)
    reply = runner.execute("group traffic chat 50", user="U_VIEWER")
    assert not reply.ok and reply.outcome == "denied"


def test_retention_drops_old_records_and_waiting_halves(runner, core, endpoints, clock):
    from modelarium.automation.tasks import groups as group_tasks
    from modelarium.core.db.models.groups import PendingEvent

    assert runner.execute(f"group create chat --champion {CHAMPION} --retention 1d", user=ADMIN).ok
    group = core.groups.get("chat")
    now = clock.now().timestamp()
    row = {"member": CHAMPION, "source": "eval", "ok": True, "latency_ms": 5.0}
    core.groups.record(group, [{**row, "ts": now - 2 * 86400}, {**row, "ts": now - 3600}])
    with core.db.transaction() as session:
        session.add(PendingEvent(group_id=group.id, event_id="old", kind="request",
                                 member=CHAMPION, ts=now - 2 * 86400, data={}))  # fmt: skip
    group_tasks.register(core)
    outcome = core.tasks.run_tick("group_retention", None, None, manual=True)
    assert outcome.status == "ok" and outcome.summary.startswith("1 record(s)")
    table = core.groups.table(group)
    with core.db.engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(table)) == 1
        assert connection.scalar(sa.select(sa.func.count()).select_from(PendingEvent)) == 0


def _rows(core, member: str, n: int, errors: int, latency: float) -> list[dict]:
    now = core.clock.now().timestamp()
    return [
        {"ts": now, "member": member, "source": "eval", "ok": i >= errors,
         "latency_ms": latency + i % 5, "completion_tokens": 10}
        for i in range(n)
    ]  # fmt: skip


def _approve_and_run(runner, core, reply) -> None:
    assert runner.execute("role grant U_OP operator", user=ADMIN).ok
    for approver in (ADMIN2, "U_OP"):
        assert runner.execute(f"approve {reply.data['approval']}", user=approver).ok
    WorkerPool(core.jobs, size=0).run_one()


def test_progressive_promotion_moves_in_steps(runner, core, endpoints):
    core.settings = core.settings.model_copy(update={"group_step_interval": 0.05})
    _group(runner)
    group = core.groups.get("chat")
    core.groups.record(
        group, _rows(core, CHAMPION, 30, 0, 100) + _rows(core, CHALLENGER, 30, 0, 80)
    )
    proposed = runner.execute("group promote chat --steps 25,50", user=ADMIN)
    assert proposed.ok, proposed.text
    assert proposed.data["digest"] and "in steps 25% → 50% → 100%" in proposed.text
    assert not runner.execute("group promote chat --steps 5,50", user=ADMIN).ok  # below 10%
    _approve_and_run(runner, core, proposed)
    change = core.changes.get(proposed.data["change"])
    assert change.status == "succeeded", change.outcome
    assert [e.action for e in core.groups.history("chat")] == [
        "create", "challenge", "promote step 25%", "promote step 50%", "promote",
    ]  # fmt: skip
    assert core.groups.get("chat").member(CHALLENGER).role == "champion"


def test_progressive_promotion_stops_and_restores_on_a_breach(runner, core, endpoints):
    core.settings = core.settings.model_copy(update={"group_step_interval": 0.05})
    _group(runner)
    group = core.groups.get("chat")
    core.groups.record(
        group, _rows(core, CHAMPION, 40, 0, 100) + _rows(core, CHALLENGER, 40, 20, 100)
    )
    proposed = runner.execute("group promote chat --steps 50", user=ADMIN)
    assert proposed.ok, proposed.text
    _approve_and_run(runner, core, proposed)
    change = core.changes.get(proposed.data["change"])
    assert change.status == "failed" and "step 50%: a rule was breached" in change.outcome
    group = core.groups.get("chat")
    assert group.member(CHALLENGER).traffic == 10 and group.member(CHAMPION).traffic == 90
    assert [e.action for e in core.groups.history("chat")][-2:] == [
        "promote step 50%", "promote aborted",
    ]  # fmt: skip


def test_eval_is_concurrent_but_bounded(runner, core, endpoints):
    import time

    ollama, openai = endpoints
    ollama.set_chat(latency=0.1)
    openai.set_chat(latency=0.1)
    _group(runner)
    core.settings = core.settings.model_copy(update={"group_eval_concurrency": 2})
    started = time.perf_counter()
    assert runner.execute("group eval chat --n 6", user=ADMIN).ok
    took = time.perf_counter() - started
    assert took >= 0.6  # 12 requests of 0.1 s, two at a time: never faster than 6 rounds
    assert ollama.chats_peak <= 2 and openai.chats_peak <= 2
    ollama.chats_peak = openai.chats_peak = 0
    core.settings = core.settings.model_copy(update={"group_eval_concurrency": 12})
    assert runner.execute("group eval chat --n 6", user=ADMIN).ok
    assert max(ollama.chats_peak, openai.chats_peak) > 2  # the bound is the setting's


def test_the_logger_token_is_encrypted_and_survives_key_rotation(runner, core, endpoints):
    from modelarium.core.db.models.groups import ModelGroup
    from modelarium.core.keys import rotate_all

    assert runner.execute(f"group create chat --champion {CHAMPION}", user=ADMIN).ok
    token = core.groups.token("chat")
    with core.db.engine.connect() as connection:
        stored = connection.execute(sa.select(ModelGroup.token, ModelGroup.token_hash)).one()
    assert token not in stored.token and token not in stored.token_hash
    assert ModelGroup.token in core.secret_columns
    assert "re-encrypted 1 secret(s)" in rotate_all(core)
    assert core.groups.token("chat") == token
    assert core.groups.authenticate("chat", token).name == "chat"
