"""A finished promotion or rollback is recorded in the catalog's history of the members'
models (through the catalog_history port) and shown by `catalog show`."""

from __future__ import annotations

from modelarium.core.db.models.catalog import CatalogEntryRow
from modelarium.core.jobs import WorkerPool
from tests.integration.groups.conftest import ADMIN, ADMIN2
from tests.unit.catalog.helpers import COMMIT, entry_json

QWEN = "Qwen/Qwen2.5-7B-Instruct"
CHAMPION = "gpu-1/llama3.2"
CHALLENGER = f"vllm/{QWEN}"


def _catalog_entry(core) -> None:
    with core.db.transaction() as session:
        session.add(
            CatalogEntryRow(
                entry_id="qwen2.5-7b-instruct", path="models/qwen2.5-7b-instruct.json",
                blob_sha="0" * 40, data=entry_json(), status="approved", repo_id=QWEN,
                commit=COMMIT, git_commit="1" * 40,
            )
        )  # fmt: skip


def _rows(core, member: str, n: int) -> list[dict]:
    now = core.clock.now().timestamp()
    return [
        {"ts": now, "member": member, "source": "eval", "ok": True, "latency_ms": 50.0 + i % 5,
         "completion_tokens": 10}
        for i in range(n)
    ]  # fmt: skip


def _challenged(runner, core, endpoints) -> None:
    _, openai = endpoints
    openai.set_models([QWEN])
    _catalog_entry(core)
    assert runner.execute(f"group create chat --champion {CHAMPION}", user=ADMIN).ok
    reply = runner.execute(f"group challenge chat {CHALLENGER} --traffic 10", user=ADMIN)
    assert reply.ok, reply.text
    group = core.groups.get("chat")
    core.groups.record(group, _rows(core, CHAMPION, 30) + _rows(core, CHALLENGER, 30))


def _approve_and_run(runner, core, reply, approvers=(ADMIN2, "U_OP")) -> None:
    assert runner.execute("role grant U_OP operator", user=ADMIN).ok
    for approver in approvers:
        if reply.data.get("approval"):
            runner.execute(f"approve {reply.data['approval']}", user=approver)
    WorkerPool(core.jobs, size=0).run_one()


def test_a_promotion_is_recorded_in_the_catalog_entrys_history(runner, core, endpoints):
    _challenged(runner, core, endpoints)
    assert runner.execute("catalog show qwen2.5-7b-instruct", user=ADMIN).data["history"] == []

    proposed = runner.execute("group promote chat", user=ADMIN)
    assert proposed.ok, proposed.text
    _approve_and_run(runner, core, proposed)
    change = core.changes.get(proposed.data["change"])
    assert change.status == "succeeded", change.outcome

    shown = runner.execute("catalog show qwen2.5-7b-instruct", user=ADMIN)
    assert shown.ok, shown.text
    [event] = shown.data["history"]
    assert event["action"] == "group.promoted"
    assert event["text"] == (
        f"{CHALLENGER}: promoted to champion of group chat, replacing {CHAMPION}"
    )
    assert event["user"] == ADMIN and event["detail"]["change"] == change.id
    assert "History" in shown.text and "promoted to champion of group chat" in shown.text
    # the change's record says where it went; a model the catalog does not list records nothing
    assert core.catalog.history("qwen2.5-7b-instruct") == shown.data["history"]


def test_a_rollback_is_recorded_too_and_once(runner, core, endpoints):
    _challenged(runner, core, endpoints)
    proposed = runner.execute("group rollback chat", user=ADMIN)
    assert proposed.ok, proposed.text
    _approve_and_run(runner, core, proposed)
    change = core.changes.get(proposed.data["change"])
    assert change.status == "succeeded", change.outcome
    [event] = core.catalog.history("qwen2.5-7b-instruct")
    assert event["action"] == "group.rolled_back"
    assert "all traffic back to gpu-1/llama3.2" in event["text"]
    # a resumed job records the same change once
    again = core.groups.record_in_catalog(
        "chat", change.params["before"], "rollback", user=ADMIN, change_id=change.id
    )
    assert again == [] and len(core.catalog.history("qwen2.5-7b-instruct")) == 1
